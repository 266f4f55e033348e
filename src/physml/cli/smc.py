"""CLI verb ``smc``: sequential Monte Carlo in beta from a U(1) ensemble at beta_0.

``physml lattice smc ENSEMBLE --beta 7 --replicas 8 --n-particles 256 --seed 1 --out OUT.nc``
draws ``replicas`` x ``n-particles`` configurations without replacement from
ENSEMBLE (any U(1) ensemble artifact; its ``beta`` attribute is beta_0; default: all
of them, split evenly) and carries each replica's particles from beta_0 to
``--beta`` (:mod:`physml.mc.smc`: adaptive ladder at a conditional ESS fraction,
systematic resampling, HMC trajectories each followed by global flux moves).

The output's ``source`` is ``smc`` for a model-free input (``hmc``, ``hmc_flux``,
``training``, ``exact``: equally weighted draws at beta_0) and ``dm_smc`` for the
diffusion model's samples with their density (an ensemble with ``log_weight`` = -S -
log q at its beta, from ``physml diffusion sample --density jacobian``: sources ``dm``,
``dm_q``, ``dm_rw``): their importance weights p_beta_0 / q make the start exact, so
beta_0 may be the target itself.  A model's samples without ``log_weight`` are refused:
taken as exact draws they were SMC from a start whose error only the moves reduce
(before this rule, ``dm_smc`` meant that unweighted start; it is gone).
``input_source`` records the input's source.

Artifact: ``theta`` over ``(config, mu, x, y)`` with ``config = replica * N + i``;
per configuration ``replica``, ``weight`` (normalised within each replica) and
``action`` (S at beta); over ``(replica_id, smc_ladder)`` the ladder ``smc_beta``;
over ``(replica_id, smc_step)`` ``smc_ess``, ``smc_hmc_acceptance``,
``smc_flux_acceptance``; the resampling events (``resample_replica``,
``resample_step``, ``resample_ess``, attribute ``resampling_reasons``);
per replica ``smc_start_ess``, ``smc_min_distinct``, ``smc_collapsed`` and over
``(replica_id, smc_step)`` ``smc_distinct`` (:mod:`physml.mc.smc`, collapse);
attributes ``wall_time_s`` (the SMC alone, all replicas), ``input_wall_time_s``
(the input's generation time, the model's density included, pro rata of the
configurations used), ``collapsed_replicas``,
``n_hmc_trajectories`` and ``n_flux_moves`` (totals over all particles of all
replicas), and the settings.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from physml.cli.common import add_runtime_options, save, setup_runtime
from physml.io.artifacts import read_input
from physml.lattice.u1 import U1
from physml.mc.smc import run_replicas, smc_ensemble

MODEL_FREE = ("hmc", "hmc_flux", "training", "exact")
MODEL = ("dm", "dm_q", "dm_rw", "dm_mala", "dm_authors")


def output_source(path: str, ds) -> str:
    """``smc`` or ``dm_smc`` for the input's source (module docstring); a clear error for
    anything else."""
    source = ds.attrs.get("source")
    if ds.attrs.get("theory") != "u1" or "theta" not in ds:
        raise ValueError(f"{path}: SMC in beta needs a U(1) ensemble (theory 'u1', variable 'theta'), "
                         f"got theory {ds.attrs.get('theory')!r}")
    if "beta" not in ds.attrs:
        raise ValueError(f"{path}: U(1) ensemble has no 'beta' attribute (beta_0 of the SMC)")
    if source in MODEL and "log_weight" in ds:
        return "dm_smc"
    if source in MODEL:
        raise ValueError(f"{path}: the model's samples (source {source!r}) carry no log_weight; SMC "
                         "from a model needs its density (physml diffusion sample --density jacobian)")
    if "weight" in ds:
        raise ValueError(f"{path}: the input holds weighted configurations (source {source!r}); "
                         "SMC needs equally weighted draws at beta_0")
    if source in MODEL_FREE:
        return "smc"
    raise ValueError(f"{path}: source {source!r} is not a start of SMC in beta; "
                     f"known: {', '.join(MODEL_FREE + MODEL)}")


def cmd_smc(args: argparse.Namespace) -> None:
    device = setup_runtime(args)
    ds = read_input(args.ensemble, "a U(1) ensemble (links theta) at beta_0", kinds=("ensemble",),
                    theories=("u1",), variables=("theta",))
    source = output_source(args.ensemble, ds)
    beta0 = float(ds.attrs["beta"])
    if not args.beta >= beta0:
        raise ValueError(f"{args.ensemble}: --beta {args.beta:g} is below the ensemble's beta_0 = {beta0:g}")
    n_pool = ds.sizes["config"]
    if args.replicas < 1:
        raise ValueError(f"--replicas must be >= 1, got {args.replicas}")
    n_particles = args.n_particles or n_pool // args.replicas
    if n_particles < 1 or args.replicas * n_particles > n_pool:
        raise ValueError(f"{args.ensemble}: {args.replicas} replicas x {n_particles} particles need "
                         f"{args.replicas * max(n_particles, 1)} configurations, the file holds {n_pool}")
    pool = torch.from_numpy(ds["theta"].values.astype(np.float64)).to(device)
    pool_log_w = (torch.from_numpy(ds["log_weight"].values.astype(np.float64)).to(device)
                  if source == "dm_smc" else None)
    options = dict(ess_fraction=args.ess_fraction, resample_below=args.resample_below,
                   n_moves=args.n_moves, flux_moves=args.flux_moves, step_size=args.step_size,
                   n_steps=args.n_steps, min_distinct=args.min_distinct)
    runs, _ = run_replicas(U1, pool, beta0, args.beta, replicas=args.replicas, n_particles=n_particles,
                           seed=args.seed, pool_log_w=pool_log_w, show_progress=args.progress, **options)
    used = args.replicas * n_particles
    steps = sum(len(r.betas) - 1 for r in runs) * n_particles
    out = smc_ensemble(U1, runs, beta0, args.beta, source=source, input_source=str(ds.attrs.get("source")),
                       input_path=str(args.ensemble),
                       input_wall_time_s=float(ds.attrs.get("wall_time_s", np.nan)) * used / n_pool,
                       n_hmc_trajectories=int(steps * args.n_moves),
                       n_flux_moves=int(steps * args.n_moves * args.flux_moves), **options)
    for i, r in enumerate(runs):
        print(f"replica {i}: start ESS/N {r.start_ess:.3f}, {len(r.betas) - 1} steps, {len(r.resampled)} "
              f"resamplings, distinct particles >= {r.min_distinct:.3f} N{' (collapsed)' if r.collapsed else ''}, "
              f"{r.wall_time_s:.1f} s")
    save(out, args, "smc", inputs=[args.ensemble], beta0=beta0)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


# numeric options of the verb: (flag, type, default, help)
OPTIONS = (
    ("--replicas", int, 4, "independent SMC runs (errors from their scatter)"),
    ("--n-particles", _count, 0, "particles per replica, drawn without replacement "
                                 "(0: all configurations, split evenly)"),
    ("--ess-fraction", _fraction, 0.9, "conditional ESS fraction that sets each step of the beta ladder"),
    ("--resample-below", _fraction, 0.5, "resample (systematic) when the Kish ESS falls below this fraction of N"),
    ("--n-moves", _count, 3, "HMC trajectories after every step"),
    ("--flux-moves", _count, 1, "flux moves after every HMC trajectory"),
    ("--step-size", float, 0.05, "leapfrog step size of the HMC moves"),
    ("--n-steps", int, 20, "leapfrog steps per HMC trajectory"),
    ("--min-distinct", _fraction, 0.1, "a replica whose effective distinct particles fall below this "
                                       "fraction of N has collapsed and is flagged"),
)


def verb_smc(p: argparse.ArgumentParser) -> None:
    p.add_argument("ensemble", help="U(1) ensemble .nc at beta_0 (its 'beta' attribute)")
    p.add_argument("--beta", type=float, required=True, help="target beta (>= beta_0)")
    for flag, kind, default, text in OPTIONS:
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument("--seed", type=int, required=True, help="random seed (draws and every replica)")
    p.add_argument("--out", required=True, help="output ensemble .nc (source smc or dm_smc)")
    add_runtime_options(p, device=True)
    p.set_defaults(func=cmd_smc)
