"""Throughput of U(1) HMC batched over chains against one chain at a time, side by side.

Both use the same code (``physml.mc.hmc.sample_hmc`` with the Wilson action, leapfrog
with the same step size and number of steps, one trajectory per configuration) at
the same L and beta; the single-chain rate runs ``n_chains = 1`` repeatedly.  The exact
sampler's rate of independent configurations is printed for reference.
Usage: python benchmarks/hmc_u1.py [--L 16] [--beta 7] [--chains 256] [--traj 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from physml.device import select_device
from physml.lattice.u1 import U1
from physml.lattice.u1_exact import sample_exact
from physml.mc.hmc import sample_hmc


def hmc_rate(theory, L, n_chains, n_traj, step_size, n_steps, device) -> tuple[float, float]:
    """(configurations per second, acceptance) of ``n_traj`` trajectories of ``n_chains`` chains."""
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = theory.cold_start(n_chains, L, device=device)
    sample_hmc(theory, x0, n_meas=1, step_size=step_size, n_steps=n_steps, generator=gen,
               show_progress=False)   # warm-up (allocations, CUDA kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = sample_hmc(theory, x0, n_meas=n_traj, step_size=step_size, n_steps=n_steps, generator=gen,
                     show_progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n_chains * n_traj / (time.perf_counter() - t0), float(res.accepted.double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--beta", type=float, default=7.0)
    ap.add_argument("--chains", type=int, default=256)
    ap.add_argument("--traj", type=int, default=20, help="trajectories per chain (batched)")
    ap.add_argument("--single-traj", type=int, default=200, help="trajectories of the single chain")
    ap.add_argument("--step-size", type=float, default=0.05)
    ap.add_argument("--n-steps", type=int, default=20)
    ap.add_argument("--exact-configs", type=int, default=2000)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = ap.parse_args()
    torch.set_num_threads(1)
    device = select_device(args.device)
    theory = U1(args.beta)
    batched, acc_b = hmc_rate(theory, args.L, args.chains, args.traj, args.step_size, args.n_steps, device)
    single, acc_s = hmc_rate(theory, args.L, 1, args.single_traj, args.step_size, args.n_steps, device)
    t0 = time.perf_counter()
    _, acc_exact = sample_exact(args.beta, args.L, args.exact_configs, seed=0)
    exact = args.exact_configs / (time.perf_counter() - t0)
    print(f"U(1) HMC, L={args.L}, beta={args.beta}, dt={args.step_size}, {args.n_steps} leapfrog steps, "
          f"device {device}, one CPU thread")
    print(f"batched ({args.chains} chains)   : {batched:10.1f} configs/s  (acceptance {acc_b:.3f})")
    print(f"one chain at a time    : {single:10.1f} configs/s  (acceptance {acc_s:.3f})")
    print(f"ratio batched / single : {batched / single:10.1f}x")
    print(f"exact sampler (CPU)    : {exact:10.1f} independent configs/s  "
          f"(plaquette accept step {acc_exact:.3f})")


if __name__ == "__main__":
    main()
