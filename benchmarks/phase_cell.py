"""Run-steps per second of a phase-diagram cell: batched vs one run at a time with torch autograd.

    .venv/bin/python benchmarks/phase_cell.py [--runs 100] [--steps 20000] [--seq-runs 2] [--seq-steps 2000]

All on one core (one BLAS / torch thread), measured side by side in one run.  "Batched" is
physml.phases.teacher_student.train_sgd on all runs of a cell at once, float32, hand-written
gradient: with its C kernel (engine "native", the default where a C compiler exists) and
with the numpy twin (engine "reference": one batched numpy computation with preallocated
buffers).  "One at a time" is the authors' style: a plain torch loop per run (forward
through all three layers, loss.backward(), SGD update).  Prints the rates, the ratios to
one-at-a-time, and the time of a paper-scale cell (100 runs x 10^8 steps) at each rate.
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

from physml.phases import teacher_student as ts  # noqa: E402

PAPER_RUNS, PAPER_STEPS = 100, 10 ** 8


def batched_rate(n_runs: int, n_steps: int, engine: str, seed: int = 1) -> float:
    runs = ts.draw_runs(n_runs, 1.0, seed)
    data = ts.draw_data(runs, 4, 1000, 10)
    ts.train_sgd(runs, data, 0.5, 200, engine=engine)  # warm-up (and kernel compilation)
    t0 = time.perf_counter()
    res = ts.train_sgd(runs, data, 0.5, n_steps, engine=engine)
    assert not res.diverged.any()
    return n_runs * n_steps / (time.perf_counter() - t0)


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
    t0 = time.perf_counter()
    for r in range(n_runs):
        autograd_one_run(runs.select(slice(r, r + 1)), data.select(slice(r, r + 1)), 0.5, n_steps)
    return n_runs * n_steps / (time.perf_counter() - t0)


def _duration(seconds: float) -> str:
    if seconds < 3600 * 2:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100, help="runs of the batched cell")
    p.add_argument("--steps", type=int, default=20000, help="SGD steps of the batched cell (native)")
    p.add_argument("--ref-steps", type=int, default=3000, help="SGD steps of the batched cell (numpy)")
    p.add_argument("--seq-runs", type=int, default=2, help="runs trained one at a time")
    p.add_argument("--seq-steps", type=int, default=2000, help="SGD steps per sequential run")
    args = p.parse_args()
    torch.set_num_threads(1)
    rates = {
        f"batched C kernel, {args.runs} runs": batched_rate(args.runs, args.steps, "native"),
        f"batched numpy, {args.runs} runs": batched_rate(args.runs, args.ref_steps, "reference"),
        "one run at a time, torch autograd": sequential_rate(args.seq_runs, args.seq_steps),
    }
    sequential = rates["one run at a time, torch autograd"]
    work = PAPER_RUNS * PAPER_STEPS
    print(f"{'one core':36s}{'run-steps/s':>12s}{'/ one-at-a-time':>17s}{'paper cell (100 runs x 1e8 steps)':>36s}")
    for name, rate in rates.items():
        print(f"{name:36s}{rate:12.3g}{rate / sequential:16.0f}x{_duration(work / rate):>36s}")


if __name__ == "__main__":
    main()
