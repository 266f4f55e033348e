"""U(1) topology at strong coupling on one CPU core, against the exact torus results: HMC
with global flux moves (hmc_flux) and sequential Monte Carlo in beta from exact samples
at beta_0 (smc); with ``--model`` (a U(1) score model trained at beta_0) also SMC from
the model's proposals at beta_0 weighted by p_beta_0 / q with their density (dm_smc: the
deterministic sampler, steps and dtype of ``diffusion.u1.exact`` in ``--config``, as the
pipeline draws them; the model's generation and log-det time counted in its cost) and the
authors' annealed-Langevin sampler (dm_authors, physml.diffusion.samplers.AuthorsLangevin)
at every beta.

For each beta: chi_t with its error (hmc_flux: Gamma method over chains; smc: scatter
of independent replicas / sqrt(R)), the exact chi_t, the pull, the relative error, the
plaquette pull, the P(Q) p-value (Hotelling's T^2 over chains or replicas against the
exact P(Q)) and the cost per independent Q (hmc_flux: wall time per trajectory x
2 tau_int(Q); smc: wall time x (err(Q^2) / std(Q^2))^2, the exact start's time included),
all from :func:`physml.observables.u1.measure_u1`.  Targets: |pull| < 2, error <= 10%,
p-value > 0.01.

Usage: python benchmarks/u1_topology_cpu.py [--L 16] [--betas 7 9] [--replicas 16]
       [--particles 128] [--chains 64] [--configs-per-chain 128]
       [--model results/u1/models/L16_beta1/model.pt --methods dm_smc dm_authors
        --authors-configs 128 --authors-steps-per-level 400]
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import torch

from physml.config import load_config
from physml.diffusion.model import load_score_model
from physml.diffusion.samplers import make_sampler
from physml.lattice import u1_exact as ex
from physml.lattice.u1 import U1
from physml.mc.ensembles import hmc_ensemble, independent_ensemble
from physml.mc.importance import log_weights
from physml.mc.smc import run_replicas, smc_ensemble
from physml.observables.u1 import measure_u1


def hmc_flux(args, beta: float):
    ds = hmc_ensemble(U1(beta), L=args.L, n_configs=args.chains * args.configs_per_chain,
                      n_chains=args.chains, n_therm=args.n_therm, meas_interval=args.meas_interval,
                      step_size=0.05, n_steps=20, therm_step_size=0.02, seed=int(10 * beta) + 1,
                      start="cold", show_progress=False, flux_moves=args.flux_moves)
    note = (f"{args.chains} chains x {args.configs_per_chain}, flux acceptance "
            f"{ds.attrs['flux_acceptance_rate']:.2f}")
    return ds, note


@functools.cache
def _model(path: str, beta0: float):
    """The score model, loaded once for every beta."""
    model, record = load_score_model(path)
    if float(record["ensemble"].get("beta", float("nan"))) != beta0:
        raise SystemExit(f"{path} was trained at beta {record['ensemble'].get('beta')}, "
                         f"not at --beta0 {beta0}")
    return model


@functools.cache
def _proposals(path: str, beta0: float, config: str, n: int, L: int, seed: int):
    """The model's proposals at beta0 with log w = -S - log q: the sampler of
    diffusion.u1.exact of ``config`` with the Jacobian density, as `physml diffusion sample
    --density jacobian` draws them (the same start for every target beta)."""
    schema = Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    exact = load_config(config, schema)["diffusion"]["u1"]["exact"]
    model = _model(path, beta0).to(getattr(torch, exact["density_dtype"]))
    res = make_sampler(exact["sampler"], n_steps=exact["n_steps"]).sample(
        model, n, (2, L, L), seed=seed, beta=beta0, show_progress=False, density="jacobian")
    return res.x.double(), log_weights(U1(beta0).action(res.x.double()).numpy(), res.log_q.numpy()), res.wall_time


def smc(args, beta: float, source: str = "smc"):
    n = args.replicas * args.particles
    log_w = None
    if source == "smc":
        start = ex.exact_ensemble(beta=args.beta0, L=args.L, n_configs=n, seed=int(10 * beta) + 2)
        pool, wall = torch.from_numpy(start["theta"].values), float(start.attrs["wall_time_s"])
    else:   # the model's proposals at beta_0, weighted by p / q
        pool, log_w, wall = _proposals(args.model, args.beta0, args.config, n, args.L, 2)
        log_w = torch.from_numpy(log_w)
    runs, _ = run_replicas(U1, pool, args.beta0, beta, replicas=args.replicas, n_particles=args.particles,
                           seed=int(10 * beta) + 3, pool_log_w=log_w, n_moves=args.n_moves,
                           flux_moves=args.flux_moves)
    ds = smc_ensemble(U1, runs, args.beta0, beta, source=source, min_distinct=0.1,
                      input_source="exact" if source == "smc" else "dm_q", input_wall_time_s=wall)
    steps = [len(r.betas) - 1 for r in runs]
    note = (f"{args.replicas} x {args.particles} particles, {min(steps)}-{max(steps)} steps, "
            f"{sum(len(r.resampled) for r in runs) / len(runs):.1f} resamplings/replica, start ESS/N "
            f"{min(r.start_ess for r in runs):.3f}-{max(r.start_ess for r in runs):.3f}, "
            f"{sum(r.collapsed for r in runs)} collapsed, start generation {wall:.0f} s")
    return ds, note


def dm_smc(args, beta: float):
    return smc(args, beta, source="dm_smc")


def dm_authors(args, beta: float):
    sampler = make_sampler("authors", steps_per_level=args.authors_steps_per_level)
    res = sampler.sample(_model(args.model, args.beta0), args.authors_configs, (2, args.L, args.L), seed=int(10 * beta) + 4,
                         beta=beta, target=U1(beta).action, show_progress=False)
    ds = independent_ensemble(U1(beta), res.x, "dm_authors", wall_time_s=res.wall_time)
    note = (f"{args.authors_configs} samples, {res.nfe} score evaluations each, MH acceptance "
            f"{res.stats['mh_acceptance']:.2f}")
    return ds, note


METHODS = {"hmc_flux": hmc_flux, "smc": smc, "dm_smc": dm_smc, "dm_authors": dm_authors}

# (flag, type, default, help)
OPTIONS = (
    ("--L", int, 16, "lattice extent"),
    ("--beta0", float, 1.0, "SMC start: exact samples at this beta"),
    ("--replicas", int, 16, "independent SMC runs"),
    ("--particles", int, 128, "particles per SMC replica"),
    ("--n-moves", int, 3, "SMC: HMC trajectories per step"),
    ("--flux-moves", int, 1, "flux moves after every HMC trajectory (both methods)"),
    ("--chains", int, 64, "hmc_flux chains"),
    ("--configs-per-chain", int, 128, "hmc_flux stored configurations per chain"),
    ("--n-therm", int, 200, "hmc_flux thermalisation trajectories (cold start)"),
    ("--meas-interval", int, 2, "hmc_flux trajectories between stored configurations"),
    ("--model", str, None, "dm_smc, dm_authors: U(1) score model trained at beta0 and --L"),
    ("--config", str, "config/config.yaml", "dm_smc: its diffusion.u1.exact draws the start"),
    ("--authors-configs", int, 128, "dm_authors: samples per beta"),
    ("--authors-steps-per-level", int, 400, "dm_authors: Langevin steps per level (the authors' 400)"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--betas", type=float, nargs="+", default=[7.0, 9.0])
    ap.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=["hmc_flux", "smc"])
    for flag, kind, default, text in OPTIONS:
        ap.add_argument(flag, type=kind, default=default, help=text)
    args = ap.parse_args()
    if {"dm_smc", "dm_authors"} & set(args.methods) and not args.model:
        ap.error("dm_smc and dm_authors need --model")
    torch.set_num_threads(1)
    rows = []
    for beta in args.betas:
        for name in args.methods:
            t0 = time.perf_counter()
            ds, note = METHODS[name](args, beta)
            obs = measure_u1(ds)
            rows.append((name, beta, obs, time.perf_counter() - t0, note))
            print(f"done {name} beta={beta:g} in {rows[-1][3]:.0f} s ({note})", flush=True)
    print(f"\nU(1), L = {args.L}, one CPU thread; exact = finite-volume torus values")
    head = (f"{'method':9} {'beta':>4} {'chi_t':>10} {'err':>9} {'exact':>10} {'pull':>6} {'err%':>5} "
            f"{'plaq pull':>9} {'P(Q) p':>7} {'cost/indep Q [s]':>16} {'wall [s]':>8}")
    print(head, flush=True)
    print("-" * len(head))
    for name, beta, obs, wall, _ in rows:
        if obs.attrs.get("flag"):
            print(f"{name} beta={beta:g} flagged: {obs.attrs['flag']}")
        chi, err, exact = float(obs["chi_t"]), float(obs["chi_t_err"]), ex.chi_t(beta, args.L)
        plaq_pull = (float(obs["plaquette"]) - ex.plaquette(beta, args.L)) / float(obs["plaquette_err"])
        print(f"{name:9} {beta:4g} {chi:10.6f} {err:9.6f} {exact:10.6f} {(chi - exact) / err:6.2f} "
              f"{100 * err / chi:5.1f} {plaq_pull:9.2f} {float(obs.get('P_Q_pvalue', float('nan'))):7.3f} "
              f"{float(obs['cost_per_independent_Q']):16.4g} {wall:8.0f}")


if __name__ == "__main__":
    main()
