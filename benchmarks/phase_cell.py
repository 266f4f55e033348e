"""Run-steps per second of a phase-diagram cell: every C kernel clone, its numpy twin, and
one run at a time with torch autograd.

    .venv/bin/python benchmarks/phase_cell.py [--runs 100] [--steps 20000] [--ref-steps 3000]
                                              [--seq-runs 2] [--seq-steps 2000] [--repeats 3]

All on one core (one BLAS / torch thread), measured side by side in one run, the codes
interleaved ``--repeats`` times; the table gives the median rate (and the range).  Rates
are per second of the thread's CPU time (time.thread_time), so that other jobs on a shared
machine slow them less than wall-clock rates.  A batched rate leaves out the fixed cost of
a train_sgd call (the first-layer features of every mini-batch, about 0.15 s for 100 runs,
measured by a call with no steps), which a paper-scale cell spends once.
"Batched" is physml.phases.teacher_student.train_sgd on all runs of a cell at once,
float32, hand-written gradient: engine "native" with each kernel clone this CPU runs
(forced through $PHYSML_KERNEL_CLONE) and engine "reference", the numpy twin (one batched
numpy computation with preallocated buffers).  "One at a time" is the authors' style: a
plain torch loop per run (forward through all three layers, loss.backward(), SGD update).
Prints the CPU, the clone that engine "native" picks here and the code that "auto" picks
(its calibration), then the rates, the ratios to the numpy twin and the time of a
paper-scale cell (100 runs x 10^8 steps) at each rate.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from physml import native  # noqa: E402
from physml.phases import teacher_student as ts  # noqa: E402

PAPER_RUNS, PAPER_STEPS = 100, 10 ** 8


def batched_rate(n_runs: int, n_steps: int, engine: str, clone: str | None = None, seed: int = 1) -> float:
    """Run-steps/s of train_sgd with ``engine`` (and kernel clone ``clone``, forced)."""
    if clone is None:
        os.environ.pop(native.CLONE_ENV, None)
    else:
        os.environ[native.CLONE_ENV] = clone
    try:
        runs = ts.draw_runs(n_runs, 1.0, seed)
        data = ts.draw_data(runs, 4, 1000, 10)
        ts.train_sgd(runs, data, 0.5, 200, engine=engine)  # warm-up (and kernel compilation)
        t0 = time.thread_time()
        ts.train_sgd(runs, data, 0.5, 0, engine=engine)    # the fixed cost of a call
        t1 = time.thread_time()
        res = ts.train_sgd(runs, data, 0.5, n_steps, engine=engine)
        elapsed = time.thread_time() - t1 - (t1 - t0)
    finally:
        os.environ.pop(native.CLONE_ENV, None)
    assert not res.diverged.any() and res.clone == (clone or "none")
    return n_runs * n_steps / elapsed


def auto_choice(n_runs: int) -> str:
    """The code engine "auto" trains a cell of ``n_runs`` runs with (after its calibration)."""
    runs = ts.draw_runs(n_runs, 1.0, 1)
    res = ts.train_sgd(runs, ts.draw_data(runs, 4, 10, 1), 0.5, 1, engine="auto")
    return res.clone if res.engine == "native" else "numpy twin"


def autograd_one_run(runs: ts.Runs, data: ts.Dataset, lr: float, n_steps: int) -> np.ndarray:
    """Plain torch autograd SGD of one run (``runs`` holds one run); returns the final W."""
    M = torch.from_numpy(runs.M[0])
    Z = torch.from_numpy(runs.Z[0])
    W = torch.from_numpy(runs.W0[0].copy()).requires_grad_(True)
    x = torch.from_numpy(data.x_train[0])
    y = torch.from_numpy(data.y_train[0])
    B, nb = data.batch_size, data.n_batches
    for step in range(n_steps):
        b = step % nb
        xb, yb = x[b * B:(b + 1) * B], y[b * B:(b + 1) * B]
        out = torch.tanh(torch.tanh(xb @ M.T) @ W.T) @ Z
        loss = 0.5 * ((out - yb) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            W -= lr * W.grad
        W.grad = None
    return W.detach().numpy()


def sequential_rate(n_runs: int, n_steps: int, seed: int = 1) -> float:
    runs = ts.draw_runs(n_runs, 1.0, seed)
    data = ts.draw_data(runs, 4, 1000, 10)
    autograd_one_run(runs.select(slice(0, 1)), data.select(slice(0, 1)), 0.5, 50)  # warm-up
    t0 = time.thread_time()
    for r in range(n_runs):
        autograd_one_run(runs.select(slice(r, r + 1)), data.select(slice(r, r + 1)), 0.5, n_steps)
    return n_runs * n_steps / (time.thread_time() - t0)


def _duration(seconds: float) -> str:
    if seconds < 3600 * 2:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100, help="runs of the batched cell")
    p.add_argument("--steps", type=int, default=20000, help="SGD steps of the batched cell (C kernel)")
    p.add_argument("--ref-steps", type=int, default=3000, help="SGD steps of the batched cell (numpy)")
    p.add_argument("--seq-runs", type=int, default=2, help="runs trained one at a time")
    p.add_argument("--seq-steps", type=int, default=2000, help="SGD steps per sequential run")
    p.add_argument("--repeats", type=int, default=3, help="measurements of each code, interleaved")
    args = p.parse_args()
    torch.set_num_threads(1)
    os.environ.pop(native.CLONE_ENV, None)
    clones = native.runnable_clones(ts.SGD_KERNEL)
    print(f"CPU: {native.cpu_id()}; kernel clones it runs: {', '.join(clones)}; "
          f"engine native picks {native.pick_clone(ts.SGD_KERNEL)}, "
          f"engine auto picks {auto_choice(args.runs)}")
    twin = f"batched numpy twin, {args.runs} runs"
    codes = {f"batched C kernel {c}, {args.runs} runs":
             lambda c=c: batched_rate(args.runs, args.steps, "native", c) for c in clones}
    codes[twin] = lambda: batched_rate(args.runs, args.ref_steps, "reference")
    codes["one run at a time, torch autograd"] = lambda: sequential_rate(args.seq_runs, args.seq_steps)
    rates = {name: [] for name in codes}
    for _ in range(args.repeats):
        for name, measure in codes.items():
            rates[name].append(measure())
    median = {name: float(np.median(r)) for name, r in rates.items()}
    work = PAPER_RUNS * PAPER_STEPS
    print(f"{'one core':38s}{'run-steps/s (range)':>24s}{'/ numpy twin':>14s}{'paper cell (100 x 1e8)':>25s}")
    for name, rate in median.items():
        spread = f"{rate:.3g} ({min(rates[name]):.3g}-{max(rates[name]):.3g})"
        print(f"{name:38s}{spread:>24s}{rate / median[twin]:13.3g}x{_duration(work / rate):>25s}")


if __name__ == "__main__":
    main()
