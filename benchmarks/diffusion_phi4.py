"""Diffusion model vs HMC for phi^4 near criticality: cost per configuration against L.

Side by side in one run, at kappa = 0.27 (near-critical, where HMC slows down) for
L = 16, 32 and 64, one thread:

- DM: seconds per generated configuration of the default sampler (the multistep ODE
  solver with 64 score evaluations, odd score, edm preconditioning), measured over a
  batch; DM samples are independent by construction.  The network is untrained: its
  cost does not depend on its weights.  The cost grows like V (a convolutional network).
- HMC: seconds per trajectory of --chains batched chains (C kernel), times 2 tau_int
  (Gamma method, in trajectories, the largest of |phibar|, phibar^2 and S) of a
  measured run: the cost of one independent configuration, t_traj / chains * 2 tau_int.
  Near the critical point tau_int grows with L (critical slowing down).

Usage: python benchmarks/diffusion_phi4.py [--L 16 32 64] [--kappa 0.27]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from physml.diffusion.model import build_score_model
from physml.diffusion.samplers import make_sampler
from physml.lattice.phi4 import Phi4
from physml.mc.hmc import sample_hmc
from physml.stats.gamma import gamma_error


def dm_seconds_per_config(model, L: int, batch: int) -> float:
    sampler = make_sampler("ode2m", n_steps=64)
    sampler.sample(model, 2, (L, L), seed=0, batch_size=2, show_progress=False)   # warm-up
    res = sampler.sample(model, batch, (L, L), seed=1, batch_size=batch, show_progress=False)
    return res.wall_time / batch


def hmc_seconds_per_independent(kappa: float, lam: float, L: int, chains: int, n_traj: int):
    """Trajectories of length 1 with ceil(8 sqrt(L / 16)) leapfrog steps, so that the
    acceptance stays high as the energy error grows with the volume."""
    n_steps = math.ceil(8 * math.sqrt(L / 16))
    dt = 1.0 / n_steps
    theory = Phi4(kappa, lam)
    gen = torch.Generator().manual_seed(1)
    therm = sample_hmc(theory, theory.cold_start(chains, L), n_meas=1, n_therm=500, step_size=dt,
                       n_steps=n_steps, generator=gen, show_progress=False).samples[-1]
    t0 = time.perf_counter()
    res = sample_hmc(theory, therm, n_meas=n_traj, step_size=dt, n_steps=n_steps, generator=gen,
                     show_progress=False)
    t_traj = (time.perf_counter() - t0) / n_traj
    phibar = res.samples.mean(dim=(-2, -1)).T.numpy()  # (chains, n_traj)
    series = {"|phibar|": np.abs(phibar), "phibar^2": phibar ** 2, "S": res.action.T.numpy()}
    tau = max(gamma_error(v).tau_int for v in series.values())
    return t_traj / chains * 2 * tau, tau, float(res.accepted.double().mean()), n_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--kappa", type=float, default=0.27)
    ap.add_argument("--lam", type=float, default=0.022)
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--batch", type=int, default=32, help="DM configurations timed per L")
    ap.add_argument("--chains", type=int, default=64, help="batched HMC chains")
    ap.add_argument("--hmc-traj", type=int, default=1000, help="measured HMC trajectories per chain")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_score_model({"channels": args.channels, "field_stats": True, "adaptive_norm": True},
                              {"recipe": "edm", "sigma_data": 0.5,
                               "zero_mode": {"mu": 0.5, "width": 0.3, "volume": 256}}, 2e-3, 80.0).eval()
    print(f"phi^4 at kappa={args.kappa}, lambda={args.lam}, one thread; U-Net {args.channels}, "
          "sampler ode2m with 64 score evaluations; HMC C kernel, "
          f"{args.chains} chains x {args.hmc_traj} trajectories")
    print(f"{'L':>4} {'DM s/config':>12} {'leapfrog':>9} {'HMC acc':>8} {'tau_int':>8} {'HMC s/indep':>12} "
          f"{'DM/HMC':>8}")
    for L in args.L:
        dm = dm_seconds_per_config(model, L, args.batch)
        hmc, tau, acc, n_steps = hmc_seconds_per_independent(args.kappa, args.lam, L, args.chains,
                                                             args.hmc_traj)
        print(f"{L:4d} {dm:12.4f} {n_steps:9d} {acc:8.3f} {tau:8.2f} {hmc:12.5f} {dm / hmc:8.0f}x")
    print("(tau_int in trajectories, the largest of |phibar|, phibar^2, S; "
          "HMC s/indep = t_traj / chains * 2 tau_int)")


if __name__ == "__main__":
    main()
