"""Seeds per second of the linear teacher-student SGD: batched tensor against one seed at a time.

Both call :func:`physml.rmt.linear_sgd.train_linear_sgd` with the same teacher, lr, B, steps and
snapshots on one thread; the batched run trains all seeds as one (seeds, n, n) tensor, the
other loops over seeds with n_seeds = 1.  Seeds per second and their ratio are printed side by
side, with the stationary entry variance of both against the closed form as a sanity check.
Usage: OMP_NUM_THREADS=1 python benchmarks/rmt_linear.py [--seeds 256] [--single 16] [--steps 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physml.rmt.linear_sgd import make_teacher, stationary_variance, train_linear_sgd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=256, help="seeds of the batched run")
    ap.add_argument("--single", type=int, default=16, help="seeds run one at a time")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    s = [1, 1, 2, 2, 3, 3]
    teacher = make_teacher(s, 0)
    kw = dict(lr=args.lr, batch=args.batch, sigma=0.5, n_steps=args.steps, snapshot_every=10,
              burn_in=args.steps // 3)
    c = stationary_variance(args.lr, args.batch, len(s), 0.5)

    t0 = time.perf_counter()
    batched = train_linear_sgd(teacher, n_seeds=args.seeds, seed=1, **kw)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [train_linear_sgd(teacher, n_seeds=1, seed=100 + i, **kw) for i in range(args.single)]
    t_single = time.perf_counter() - t0

    rate_b, rate_s = args.seeds / t_batched, args.single / t_single
    var_s = np.concatenate([r.delta_sq for r in single])
    print(f"linear teacher-student n=6, lr={args.lr:g}, B={args.batch}, {args.steps} steps, 1 thread")
    print(f"{'':24s}{'batched':>14s}{'one at a time':>16s}")
    print(f"{'seeds':24s}{args.seeds:>14d}{args.single:>16d}")
    print(f"{'seconds':24s}{t_batched:>14.2f}{t_single:>16.2f}")
    print(f"{'seeds / s':24s}{rate_b:>14.1f}{rate_s:>16.1f}")
    print(f"{'entry variance / exact':24s}{batched.delta_sq.mean() / c:>14.4f}{var_s.mean() / c:>16.4f}")
    print(f"speed-up of the batched run: {rate_b / rate_s:.1f}x")


if __name__ == "__main__":
    main()
