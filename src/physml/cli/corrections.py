"""CLI verbs of the exact corrections: ``mala`` (the MALA-only control) and ``reweight``.

- ``physml lattice mala u1 --L 16 --beta 7 --n-configs 256 --mala-steps 500 --start hot --out ...``:
  the control of a DM + MALA run: the same number of MALA steps from a trivial
  start (``source = mala_only``).  phi^4 starts: ``noise`` (iid N(0, scale^2)) or
  ``constant`` (a constant field of random sign and size ``scale``), with the scale
  the RMS of a data ensemble (``--scale-from``); U(1) starts: ``hot`` (uniform
  link angles, the distribution of gauge-augmented data) or ``cold`` (all links 1).
- ``physml lattice reweight ENSEMBLE --beta 1.5 --out ...``: a U(1) ensemble drawn at beta_0
  reweighted to beta (``source = dm_reweighted``, variable ``weight``, attribute
  ``ess``; :mod:`physml.stats.reweighting`).

The MALA stage shared with ``physml diffusion sample`` (:func:`add_mala_options`,
:class:`physml.mc.mala.MALAStage`) tunes the step size on separate pilot chains, which
are never measured, replays their step-size schedule as a warm-up of the measured
chains, then runs them at the tuned step size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physml.cli.common import add_runtime_options, save, setup_runtime
from physml.cli.options import lattice_extent, old_spelling
from physml.io.artifacts import read_input
from physml.lattice.phi4 import Phi4
from physml.lattice.u1 import U1
from physml.mc.ensembles import independent_ensemble
from physml.mc.mala import TARGET_ACCEPTANCE, MALAStage
from physml.seeds import derive_seed
from physml.stats.reweighting import MIN_ESS, kish_ess, reweighting_weights

STARTS = {"phi4": ("noise", "constant"), "u1": ("hot", "cold")}


def add_mala_options(p: argparse.ArgumentParser, default_steps: int) -> None:
    p.add_argument("--mala-steps", type=int, default=default_steps,
                   help="MALA steps at the tuned step size on the exact action, after the warm-up "
                        "(0: no MALA stage)")
    p.add_argument("--mala-target-acceptance", type=float, default=TARGET_ACCEPTANCE,
                   help="acceptance rate the step size is tuned for")
    old_spelling(p, "--mala-target", "--mala-target-acceptance")
    p.add_argument("--mala-tune-steps", type=int, default=100,
                   help="Robbins-Monro tuning steps on the pilot chains (replayed as warm-up)")
    p.add_argument("--mala-pilot", type=int, default=64,
                   help="pilot configurations for tuning (drawn like the others, never measured; >= 64)")
    p.add_argument("--mala-global-moves", type=int, default=0,
                   help="phi4: global moves after every MALA step, each a uniform shift of the field "
                        "(width tuned on the pilot, exact accept on Delta S) and a Z2 flip (0: none)")
    p.add_argument("--mala-fourier", action=argparse.BooleanOptionalAction, default=False,
                   help="phi4: Fourier-accelerated MALA, the steps and global moves preconditioned by "
                        "K(p) ~ 1 / (mu^2 + p_hat^2) so that the long modes relax as fast as the short")


def trivial_start(theory, start: str, n: int, L: int, scale: float, generator: torch.Generator,
                  device) -> torch.Tensor:
    """Control starts (see the module docstring), float64."""
    if start not in STARTS[theory.name]:
        raise ValueError(f"--start for {theory.name} must be one of {STARTS[theory.name]}, got {start!r}")
    if start == "hot":
        return theory.random_start(n, L, generator, device=device)
    if start == "cold":
        return theory.cold_start(n, L, device=device)
    if start == "noise":
        return scale * torch.randn((n, L, L), generator=generator, dtype=torch.float64, device=device)
    sign = torch.randint(0, 2, (n, 1, 1), generator=generator, device=device).double() * 2 - 1
    return (scale * sign).expand(n, L, L).contiguous()


def cmd_mala(args: argparse.Namespace) -> None:
    device = setup_runtime(args)
    if args.mala_steps < 1:
        raise ValueError(f"--mala-steps must be >= 1, got {args.mala_steps}")
    theory = Phi4(args.kappa, args.lam) if args.theory == "phi4" else U1(args.beta)
    scale, inputs = 1.0, []
    if args.theory == "phi4":
        if args.scale_from is None:
            raise ValueError("phi4 controls need --scale-from ENSEMBLE (the data RMS sets the start's scale)")
        ds = read_input(args.scale_from, "a phi4 ensemble (field phi)", kinds=("ensemble",),
                        theories=("phi4",), variables=("phi",))
        scale = float(np.sqrt(np.mean(np.square(ds["phi"].values))))
        inputs.append(args.scale_from)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    pilot_gen = torch.Generator(device=device).manual_seed(derive_seed(args.seed, "mala-pilot"))
    stage = MALAStage(args.mala_steps, args.mala_tune_steps, args.mala_target_acceptance,
                      shift_moves=args.mala_global_moves, fourier=args.mala_fourier)
    stage.check(theory)
    t0 = time.perf_counter()
    pilot = trivial_start(theory, args.start, args.mala_pilot, args.L, scale, pilot_gen, device)
    x = trivial_start(theory, args.start, args.n_configs, args.L, scale, gen, device)
    x, mala_vars, attrs = stage.run(theory, x, pilot, gen, pilot_gen, show_progress=args.progress,
                                    desc=f"mala_only {theory.name} L={args.L}")
    ds = independent_ensemble(theory, x, "mala_only", start=args.start, start_scale=scale,
                              wall_time_s=time.perf_counter() - t0, **attrs)
    save(ds.merge(mala_vars), args, f"mala {theory.name}", inputs=inputs)


def cmd_reweight(args: argparse.Namespace) -> None:
    setup_runtime(args)
    ds = read_input(args.ensemble, "a U(1) ensemble (links theta, action) to reweight in beta",
                    kinds=("ensemble",), theories=("u1",), variables=("theta", "action"))
    U1(args.beta)   # its constructor checks the range of beta
    beta0 = float(ds.attrs["beta"])
    action0 = ds["action"].values / beta0          # S_0 = -sum_P cos theta_P
    weights = reweighting_weights(action0, args.beta - beta0)
    ess = kish_ess(weights)
    status = "" if ess >= MIN_ESS else f"  (below {MIN_ESS:g}: flagged)"
    print(f"reweighting beta {beta0:g} -> {args.beta:g}: Kish ESS {ess:.1f} of {len(weights)}{status}")
    keep = [v for v in ("theta", "chain") if v in ds]
    out = ds[keep].assign(
        weight=("config", weights, {"long_name": "normalised weight exp(-(beta - beta0) S_0)"}),
        action=("config", args.beta * action0, {"long_name": "action S at the target beta"}))
    out.attrs = {k: ds.attrs[k] for k in ("theory", "L", "wall_time_s") if k in ds.attrs}
    out.attrs.update({"source": "dm_reweighted", "beta": float(args.beta), "beta0": beta0,
                      "ess": ess, "reweighted_from": str(args.ensemble),
                      "reweighted_from_source": str(ds.attrs.get("source", ""))})
    save(out, args, "reweight", inputs=[args.ensemble], seed=int(ds.attrs.get("seed", -1)))


def verb_mala(m: argparse.ArgumentParser) -> None:
    theories = m.add_subparsers(dest="theory", required=True, metavar="THEORY")
    for name in ("phi4", "u1"):
        p = theories.add_parser(name,
                                help=f"{name}: starts {', '.join(STARTS[name])}")
        if name == "phi4":
            p.add_argument("--kappa", type=float, required=True, help="hopping parameter kappa")
            p.add_argument("--lam", type=float, default=0.022, help="quartic coupling lambda")
            p.add_argument("--scale-from", default=None, help="data ensemble whose RMS sets the start's scale")
        else:
            p.add_argument("--beta", type=float, required=True, help="inverse coupling beta")
        p.add_argument("--L", type=lattice_extent, required=True, help="lattice extent (even)")
        p.add_argument("--n-configs", type=int, required=True, help="independent chains (one config each)")
        p.add_argument("--start", choices=STARTS[name], default=STARTS[name][0], help="trivial start")
        add_mala_options(p, default_steps=200)
        p.add_argument("--seed", type=int, required=True, help="random seed")
        p.add_argument("--out", required=True, help="output ensemble .nc (source = mala_only)")
        add_runtime_options(p, device=True)
        p.set_defaults(func=cmd_mala)


def verb_reweight(r: argparse.ArgumentParser) -> None:
    r.description = "Reweight a U(1) ensemble from its beta_0 to --beta (Kish ESS reported)."
    r.add_argument("ensemble", help="U(1) ensemble .nc of independent configurations at beta_0")
    r.add_argument("--beta", type=float, required=True, help="target beta")
    r.add_argument("--out", required=True, help="output ensemble .nc (source = dm_reweighted)")
    add_runtime_options(r)
    r.set_defaults(func=cmd_reweight)
