"""Topological freezing of U(1) HMC: tau_int(Q) and the chi_t bias of hot and cold starts.

For each beta, runs HMC from a cold (Q = 0) and a hot (uniform links) start with the
same leapfrog, measures every ``--meas-interval`` trajectories, and prints chi_t
against the exact torus value (in units of its Gamma-method error), tau_int(Q) from
the rate of Q changes, and the reliability flag of ``physml.observables.u1``.
Usage: python benchmarks/u1_freezing.py [--L 16] [--beta 7 9] [--chains 64] [--traj 2000]
"""

from __future__ import annotations

import argparse
import time

import torch

from physml.lattice import u1_exact
from physml.lattice.u1 import U1
from physml.mc.ensembles import hmc_ensemble
from physml.observables.u1 import measure_u1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--beta", type=float, nargs="+", default=[7.0, 9.0])
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--traj", type=int, default=2000, help="trajectories per chain after thermalisation")
    ap.add_argument("--n-therm", type=int, default=100)
    ap.add_argument("--meas-interval", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n_meas = args.traj // args.meas_interval
    print(f"U(1) HMC, L={args.L}, {args.chains} chains x {args.traj} trajectories after {args.n_therm} "
          f"thermalisation trajectories (step 0.02 while thermalising, then 20 x 0.05)")
    for beta in args.beta:
        chi_exact = u1_exact.chi_t(beta, args.L)
        for start in ("cold", "hot"):
            t0 = time.perf_counter()
            ds = hmc_ensemble(U1(beta), L=args.L, n_configs=n_meas * args.chains, n_chains=args.chains,
                              n_therm=args.n_therm, meas_interval=args.meas_interval, step_size=0.05,
                              n_steps=20, therm_step_size=0.02, seed=args.seed, start=start,
                              show_progress=False)
            obs = measure_u1(ds)
            chi, err = float(obs["chi_t"]), float(obs["chi_t_err"])
            z = (chi - chi_exact) / err if err > 0 else float("inf") * (chi - chi_exact)
            bound = ">=" if int(obs["tau_int_Q_rate_is_lower_bound"]) else "~"
            print(f"beta={beta:g} {start:6s}: chi_t = {chi:.3e} +- {err:.1e} (exact {chi_exact:.3e}, "
                  f"{z:+.1f} sigma); tau_int(Q) {bound} {float(obs['tau_int_Q_rate']):.3g} "
                  f"+- {float(obs['tau_int_Q_rate_err']):.2g} trajectories from {int(obs['q_changes'])} "
                  f"changes; Gamma tau_int(Q) = {float(obs['tau_int_top_charge']) * args.meas_interval:.3g} "
                  f"trajectories; plaquette {float(obs['plaquette']):.5f}({float(obs['plaquette_err']):.5f}) "
                  f"exact {u1_exact.plaquette(beta, args.L):.5f}; reliable={int(obs['chi_t_reliable'])} "
                  f"[{time.perf_counter() - t0:.0f} s]")
            print(f"    flag: {obs['chi_t_reliable'].attrs['reason']}")


if __name__ == "__main__":
    main()
