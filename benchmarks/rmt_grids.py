"""CPU cost of the (lr, B) grids of the RMT study, the quick config beside the paper config.

For every grid (``rmt.linear``, ``rmt.mlp_online``, ``rmt.rbm``) and config, the step cost of
its trainer (:func:`physml.rmt.linear_sgd.train_linear_sgd`, :func:`physml.rmt.mlp.
train_mlp_online`, :func:`physml.rmt.rbm.train_rbm`) is measured at each batch size with the
config's number of runs (a short run of ``--steps`` steps, one thread), and the grid's CPU time
is the sum over its points of steps x step cost plus one start-up of a job (the import of
``physml.cli.rmt`` in a fresh interpreter, measured) per point.  Printed side by side, with the
core-hours of the paper grids.
Usage: OMP_NUM_THREADS=1 python benchmarks/rmt_grids.py [--steps 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from physml.config import load_yaml, validate_config
from physml.phases.teacher_student import Architecture, draw_runs
from physml.rmt.linear_sgd import make_teacher, train_linear_sgd
from physml.rmt.mlp import train_mlp_online
from physml.rmt.rbm import GaussianRBM, train_rbm

ROOT = Path(__file__).parents[1]


def step_cost(grid: str, block: dict, batch: int, steps: int) -> float:
    """CPU seconds per step of one point of ``grid`` at mini-batch ``batch``."""
    t0 = time.process_time()
    if grid == "linear":
        train_linear_sgd(make_teacher(block["singular_values"], 0), lr=0.05, batch=batch, sigma=block["sigma"],
                         n_steps=steps, n_seeds=block["n_runs"], snapshot_every=block["snapshot_every"],
                         burn_in=0, seed=1)
    elif grid == "mlp_online":
        runs = draw_runs(block["n_runs"], block["sigma_w"], 1, arch=Architecture(3, 32, 16, "tanh"))
        train_mlp_online(runs, lr=0.05, batch=batch, label_noise=block["label_noise"], n_steps=steps,
                         snapshot_every=steps, seed=1)
    else:
        model = GaussianRBM(L=block["L"], m2=block["m2"], mu2=block["mu2"], sigma_h=block["sigma_h"])
        train_rbm(model, lr=0.01, batch=batch, n_runs=block["n_runs"], n_steps=steps, snapshot_every=steps, seed=1)
    return (time.process_time() - t0) / steps


def point_steps(grid: str, block: dict, lr: float) -> int:
    return block["n_steps"] if grid == "linear" else round(block["time"] / lr)


def startup(grid: str) -> float:
    """CPU seconds of a job's start: a fresh interpreter importing physml.cli.rmt (and torch,
    which the linear trainer runs on)."""
    code = f"import time; import physml.cli.rmt{'; import torch' * (grid == 'linear')}; print(time.process_time())"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="steps of each timing run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    configs = {name: validate_config(load_yaml(ROOT / "config" / f"{file}.yaml"), schema)["rmt"]
               for name, file in (("quick", "config"), ("paper", "paper"))}
    print(f"RMT grids, one thread ({args.steps} steps per timing run)")
    print(f"{'grid':12s}{'config':>8s}{'points':>8s}{'runs':>6s}{'steps':>11s}{'start s':>9s}{'CPU s':>10s}"
          f"{'core-h':>9s}")
    for grid in ("linear", "mlp_online", "rbm"):
        start = float(np.median([startup(grid) for _ in range(3)]))
        for name, rmt in configs.items():
            block = rmt[grid]
            cost = {b: step_cost(grid, block, b, args.steps) for b in block["batch_size"]}
            steps = [(point_steps(grid, block, lr), b) for lr in block["lr"] for b in block["batch_size"]]
            total = sum(n * cost[b] for n, b in steps) + start * len(steps)
            print(f"{grid:12s}{name:>8s}{len(steps):>8d}{block['n_runs']:>6d}{sum(n for n, _ in steps):>11d}"
                  f"{start:>9.2f}{total:>10.0f}{total / 3600:>9.2f}")


if __name__ == "__main__":
    main()
