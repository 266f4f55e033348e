"""Throughput of the batched torch HMC against a single-chain numpy loop, side by side.

Both run the same algorithm (phi^4 hopping action, leapfrog with the same step
size and number of steps, Metropolis, one trajectory per configuration) at the
same L on one thread; configurations per second and their ratio are printed.
Usage: python benchmarks/hmc_phi4.py [--L 32] [--chains 512] [--traj 40]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physml.device import set_threads
from physml.lattice.phi4 import Phi4
from physml.mc.hmc import sample_hmc


def numpy_single_chain(phi, kappa, lam, n_traj, dt, n_steps, rng):
    """Reference: one chain, np.roll stencils, the textbook HMC loop."""
    def action(f):
        return np.sum(-2 * kappa * f * (np.roll(f, -1, 0) + np.roll(f, -1, 1))
                      + (1 - 2 * lam) * f ** 2 + lam * f ** 4)

    def force(f):
        nn = np.roll(f, 1, 0) + np.roll(f, -1, 0) + np.roll(f, 1, 1) + np.roll(f, -1, 1)
        return 2 * kappa * nn + 2 * f * (2 * lam * (1 - f ** 2) - 1)

    accepted = 0
    for _ in range(n_traj):
        p = rng.normal(size=phi.shape)
        h0 = 0.5 * np.sum(p ** 2) + action(phi)
        x = phi.copy()
        p = p + 0.5 * dt * force(x)
        for i in range(n_steps):
            x = x + dt * p
            p = p + (dt if i < n_steps - 1 else 0.5 * dt) * force(x)
        if rng.random() < np.exp(-(0.5 * np.sum(p ** 2) + action(x) - h0)):
            phi, accepted = x, accepted + 1
    return phi, accepted / n_traj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=32)
    ap.add_argument("--chains", type=int, default=512)
    ap.add_argument("--traj", type=int, default=40, help="trajectories per chain (batched)")
    ap.add_argument("--single-traj", type=int, default=400, help="trajectories of the numpy chain")
    ap.add_argument("--kappa", type=float, default=0.27)
    ap.add_argument("--lam", type=float, default=0.022)
    ap.add_argument("--dt", type=float, default=0.125)
    ap.add_argument("--n-steps", type=int, default=8)
    args = ap.parse_args()
    set_threads(1)  # one thread, as the physml CLI sets it
    theory = Phi4(args.kappa, args.lam)
    gen = torch.Generator().manual_seed(0)
    x0 = theory.cold_start(args.chains, args.L)
    t0 = time.perf_counter()
    res = sample_hmc(theory, x0, n_meas=args.traj, step_size=args.dt, n_steps=args.n_steps,
                     generator=gen, show_progress=False)
    t_batched = time.perf_counter() - t0
    rate_batched = args.chains * args.traj / t_batched

    rng = np.random.default_rng(0)
    phi = np.full((args.L, args.L), theory.mean_field_value())
    t0 = time.perf_counter()
    _, acc_single = numpy_single_chain(phi, args.kappa, args.lam, args.single_traj, args.dt,
                                       args.n_steps, rng)
    t_single = time.perf_counter() - t0
    rate_single = args.single_traj / t_single

    print(f"phi^4 HMC, L={args.L}, kappa={args.kappa}, lambda={args.lam}, dt={args.dt}, "
          f"{args.n_steps} leapfrog steps, one thread")
    print(f"batched torch ({args.chains} chains): {rate_batched:10.1f} configs/s  "
          f"(acceptance {res.accepted.double().mean():.3f})")
    print(f"numpy single chain          : {rate_single:10.1f} configs/s  (acceptance {acc_single:.3f})")
    print(f"ratio batched / single      : {rate_batched / rate_single:10.1f}x")


if __name__ == "__main__":
    main()
