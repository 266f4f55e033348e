"""Diffusion model vs HMC for phi^4: training and sampling throughput, and the cost of 1024
independent configurations side by side.

- training: configurations per second of denoising score matching (forward + backward,
  odd symmetrisation, augmentation), measured over a few optimiser steps;
- sampling: configurations per second of the Euler-Maruyama sampler with --dm-steps
  steps (one score evaluation per step, two network passes with the odd score),
  measured over a few steps of one batch and scaled to the full step count;
- HMC: seconds per trajectory of --chains batched chains, times the integrated
  autocorrelation time (Gamma method, in trajectories, the largest of |phibar|,
  phibar^2 and S) of a measured run: cost of one independent configuration is
  t_traj / chains * 2 tau_int.  DM samples are independent by construction.

The network is untrained: its cost does not depend on its weights.  Every number is
measured in this run, on one thread.
Usage: python benchmarks/diffusion_phi4.py [--L 16] [--kappa 0.21 0.27 0.5] [--dm-steps 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physml.diffusion.model import build_score_model
from physml.diffusion.samplers import make_sampler
from physml.diffusion.training import augment, dsm_loss
from physml.lattice.phi4 import Phi4
from physml.mc.hmc import sample_hmc
from physml.stats.gamma import gamma_error


def train_rate(model, L: int, batch: int, steps: int) -> float:
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, L, L, generator=gen)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            t0 = time.perf_counter()
        loss = dsm_loss(model, augment(x, gen), gen, 1e-5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t0)


def sample_rate(model, L: int, batch: int, steps: int, timed_steps: int) -> float:
    sampler = make_sampler("em", n_steps=timed_steps)
    gen = torch.Generator().manual_seed(0)
    sampler.sample(model, 8, (L, L), generator=gen, batch_size=8, show_progress=False)  # warm-up
    res = sampler.sample(model, batch, (L, L), generator=gen, batch_size=batch, show_progress=False)
    return batch / (res.wall_time * steps / timed_steps)


def hmc_cost(kappa: float, lam: float, L: int, chains: int, n_traj: int, dt: float, n_steps: int):
    theory = Phi4(kappa, lam)
    gen = torch.Generator().manual_seed(1)
    x0 = theory.cold_start(chains, L)
    therm = sample_hmc(theory, x0, n_meas=1, n_therm=200, step_size=dt, n_steps=n_steps,
                       generator=gen, show_progress=False).samples[-1]
    t0 = time.perf_counter()
    res = sample_hmc(theory, therm, n_meas=n_traj, step_size=dt, n_steps=n_steps, generator=gen,
                     show_progress=False)
    t_traj = (time.perf_counter() - t0) / n_traj
    phibar = res.samples.mean(dim=(-2, -1)).T.numpy()  # (chains, n_traj)
    taus = {"|phibar|": np.abs(phibar), "phibar^2": phibar ** 2, "S": res.action.T.numpy()}
    tau = max(gamma_error(v).tau_int for v in taus.values())
    return t_traj, tau, float(res.accepted.double().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--kappa", type=float, nargs="+", default=[0.21, 0.27, 0.5])
    ap.add_argument("--lam", type=float, default=0.022)
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--dm-steps", type=int, default=500, help="Euler-Maruyama steps per sample")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--sample-batch", type=int, default=256)
    ap.add_argument("--chains", type=int, default=64, help="batched HMC chains")
    ap.add_argument("--hmc-traj", type=int, default=400, help="measured HMC trajectories per chain")
    ap.add_argument("--dt", type=float, default=0.125)
    ap.add_argument("--n-steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_score_model({"name": "ve", "sigma": 25.0}, {"channels": args.channels})
    n_par = sum(p.numel() for p in model.parameters())
    r_train = train_rate(model.train(), args.L, args.train_batch, steps=10)
    r_sample = sample_rate(model.eval(), args.L, args.sample_batch, args.dm_steps, timed_steps=10)
    print(f"phi^4 at L={args.L}, lambda={args.lam}, one thread; U-Net {args.channels} ({n_par} parameters), "
          f"odd score")
    print(f"DM training : {r_train:9.1f} configs/s (batch {args.train_batch})")
    print(f"DM sampling : {r_sample:9.2f} configs/s (Euler-Maruyama, {args.dm_steps} steps, "
          f"batch {args.sample_batch})")
    print(f"1024 DM samples: {1024 / r_sample:8.1f} s, plus one-off training (e.g. 40 epochs of 1024 "
          f"configs: {40 * 1024 / r_train:.0f} s)")
    print()
    print(f"{'kappa':>6} {'acc':>6} {'tau_int':>8} {'HMC s/1024 indep':>17} {'DM s/1024':>10} {'DM/HMC':>8}")
    for kappa in args.kappa:
        t_traj, tau, acc = hmc_cost(kappa, args.lam, args.L, args.chains, args.hmc_traj, args.dt,
                                    args.n_steps)
        hmc_1024 = 1024 * t_traj / args.chains * 2 * tau
        dm_1024 = 1024 / r_sample
        print(f"{kappa:6g} {acc:6.3f} {tau:8.2f} {hmc_1024:17.3f} {dm_1024:10.1f} {dm_1024 / hmc_1024:8.0f}x")
    print("(tau_int in trajectories, the largest of |phibar|, phibar^2, S; "
          "HMC cost = 1024 * t_traj / chains * 2 tau_int)")


if __name__ == "__main__":
    main()
