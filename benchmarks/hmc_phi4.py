"""Throughput of the batched HMC against a single-chain numpy loop, side by side.

The batched sampler runs twice: with its trajectories in the C kernel (engine "native",
the default for float64 CPU fields) and in torch (engine "reference").  All run the
same algorithm (phi^4 hopping action, leapfrog with the same step size and number of
steps, Metropolis, one trajectory per configuration) at the same L on one thread, each
after a short warm-up; configurations per second and the ratios are printed.
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
    rates, acceptance = {}, {}
    for engine in ("native", "reference"):
        run = lambda n: sample_hmc(theory, x0, n_meas=n, step_size=args.dt,  # noqa: E731
                                   n_steps=args.n_steps, generator=gen, show_progress=False,
                                   engine=engine)
        run(2)  # warm-up: kernel compilation, allocator
        t0 = time.perf_counter()
        res = run(args.traj)
        rates[engine] = args.chains * args.traj / (time.perf_counter() - t0)
        acceptance[engine] = float(res.accepted.double().mean())

    rng = np.random.default_rng(0)
    phi = np.full((args.L, args.L), theory.mean_field_value())
    numpy_single_chain(phi, args.kappa, args.lam, 5, args.dt, args.n_steps, rng)  # warm-up
    t0 = time.perf_counter()
    _, acc_single = numpy_single_chain(phi, args.kappa, args.lam, args.single_traj, args.dt,
                                       args.n_steps, rng)
    t_single = time.perf_counter() - t0
    rate_single = args.single_traj / t_single

    print(f"phi^4 HMC, L={args.L}, kappa={args.kappa}, lambda={args.lam}, dt={args.dt}, "
          f"{args.n_steps} leapfrog steps, one thread, cold start")
    names = {"native": f"batched, C leapfrog ({args.chains} chains)",
             "reference": f"batched, torch ({args.chains} chains)"}
    for engine, name in names.items():
        print(f"{name:34s}: {rates[engine]:10.1f} configs/s  (acceptance {acceptance[engine]:.3f})  "
              f"ratio to single chain {rates[engine] / rate_single:6.1f}x")
    print(f"{'numpy single chain':34s}: {rate_single:10.1f} configs/s  (acceptance {acc_single:.3f})")


if __name__ == "__main__":
    main()
