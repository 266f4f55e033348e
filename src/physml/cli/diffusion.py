"""CLI verbs of the diffusion model: ``physml diffusion train`` and ``sample``.

- ``physml diffusion train ENSEMBLE --out model.pt --history training.nc``: denoising score
  matching on an ensemble artifact; checkpoints after every epoch and resumes.
- ``physml diffusion sample MODEL --L 32 --n-configs 1024 --out ensemble.nc``: a generated
  ensemble artifact (``source = dm``), measurable like an HMC ensemble; with
  ``--mala-steps K --mala-out dm_mala.nc`` the same configurations after a warm-up and
  K MALA steps on the exact action (``source = dm_mala``, :class:`physml.mc.mala.MALAStage`);
  ``--beta`` generates U(1) at any beta from the beta_0 model (score times
  beta / beta_0), ``--L`` any volume.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from physml.cli.common import Output, add_runtime_options, resolved_config, save, setup_runtime
from physml.cli.corrections import add_mala_options
from physml.cli.options import old_spelling
from physml.diffusion.model import load_score_model, save_score_model
from physml.diffusion.precond import RECIPES
from physml.diffusion.samplers import GRIDS, SAMPLERS, make_sampler
from physml.diffusion.training import (SIGMA_DISTRIBUTIONS, T_SAMPLING, TrainConfig,
                                       train_score_model)
from physml.io.artifacts import (locate_input, provenance_attrs, read_input,
                                 sha256_file)
from physml.lattice.phi4 import Phi4
from physml.lattice.u1 import U1
from physml.mc.ensembles import independent_ensemble
from physml.mc.importance import density_summary, imh_ensemble, log_weights, weighted_ensemble
from physml.mc.mala import MALAStage
from physml.seeds import derive_seed

THEORIES = {"phi4": lambda attrs: Phi4(float(attrs["kappa"]), float(attrs["lam"])),
            "u1": lambda attrs: U1(float(attrs["beta"]))}
COUPLINGS = {"phi4": ("kappa", "lam"), "u1": ("beta",)}


def _field(ds: xr.Dataset) -> str:
    for name in ("phi", "theta"):
        if name in ds:
            return name
    raise ValueError("ensemble has no field variable ('phi' or 'theta')")


def cmd_train(args: argparse.Namespace) -> None:
    device = setup_runtime(args)
    ens = read_input(args.ensemble, "a training ensemble (field phi or theta) of theory phi4 or u1",
                     kinds=("ensemble",), theories=("phi4", "u1"))
    field = _field(ens)
    periodic = field == "theta"
    if periodic and args.recipe != "song":
        raise ValueError(f"{args.ensemble}: U(1) link angles train with --recipe song only")
    data = torch.from_numpy(np.asarray(ens[field].values))
    cfg = TrainConfig(recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      lr_schedule=args.lr_schedule, lr_final_factor=args.lr_final_factor,
                      ema_halflife=args.ema_halflife, sigma_min=args.sigma_min,
                      sigma_distribution=args.sigma_distribution, generate_L=args.generate_L,
                      t_min=args.t_min, t_sampling=args.t_sampling,
                      zero_mode_weight=0.0 if periodic else args.zero_mode_weight, spectral=args.spectral,
                      normalisation="none" if periodic else args.normalisation, periodic=periodic,
                      augment=args.augment, odd=args.odd, grad_clip=args.grad_clip,
                      plaquette_law=periodic and args.plaquette_law)
    sde = {"name": args.sde_name, "sigma": args.sde_sigma}
    in_channels = 1 if data.dim() == 3 else int(data.shape[1])
    flags = {k: getattr(args, k) for k in ("field_stats", "adaptive_norm", "fourier_scale")
             if getattr(args, k) is not None}
    net = {"in_channels": in_channels, "channels": args.channels, "embed_dim": args.embed_dim,
           "groups": args.groups,
           "blocks_per_level": args.blocks_per_level, "global_pool": args.global_pool,
           "gauge": args.gauge_covariant, **flags}
    beta0 = float(ens.attrs["beta"]) if periodic and "beta" in ens.attrs else None
    ens_sha = sha256_file(args.ensemble)
    checkpoint = args.checkpoint or f"{args.out}.ckpt"
    res = train_score_model(data, sde=sde, net=net, cfg=cfg, seed=args.seed, device=device, beta0=beta0,
                            checkpoint=checkpoint, data_sha256=ens_sha, show_progress=args.progress)
    config = resolved_config(args, checkpoint=None,
                             **{k: res.model.net.hparams[k] for k in ("field_stats", "adaptive_norm", "fourier_scale")})
    ensemble = {"path": str(args.ensemble), "sha256": ens_sha, "field": field,
                **{k: ens.attrs[k] for k in ("theory", "source", "L", "kappa", "lam", "beta")
                   if k in ens.attrs}}
    for k, v in ensemble.items():
        if isinstance(v, np.generic):
            ensemble[k] = v.item()
    noise = {k: float(v) for k, v in res.meta.items()
             if k not in ("fingerprint", "n_train", "scale", "ema_decay")}
    print("noise range: " + ", ".join(f"{k} {v:.4g}" for k, v in noise.items()))
    prov = provenance_attrs(config, args.rule or "train", args.seed, [args.ensemble], out=args.out)
    save_score_model(args.out, res.model, config=config, train_config=asdict(cfg),
                     ensemble=ensemble, provenance=prov, noise_sizing=noise, history_summary={
                         "final_loss": float(res.history["loss"][-1]),
                         "wall_time_s": float(res.history["wall_time"][-1]),
                         "resumed_from_epoch": res.resumed_from_epoch})
    print(f"wrote {args.out}")
    hist = res.history
    hist.attrs.update({"theory": ensemble.get("theory", ""), "scale": res.model.scale,
                       "recipe": args.recipe, "ema_decay_per_step": float(res.meta["ema_decay"]),
                       "n_parameters": int(sum(p.numel() for p in res.model.net.parameters())),
                       **{f"noise_{k}": v for k, v in noise.items()}})
    for k in ("L", "kappa", "lam", "beta"):
        if k in ensemble:
            hist.attrs[k] = ensemble[k]
    args.out, model_out = args.history, args.out
    save(hist, args, "train", inputs=[args.ensemble], checkpoint=None, model=str(model_out))
    if not args.keep_checkpoint:
        Path(checkpoint).unlink(missing_ok=True)


def _theory_from_record(record: dict, args: argparse.Namespace):
    """The theory at the requested couplings (default: the training ensemble's)."""
    ens = dict(record["ensemble"])
    theory = ens.get("theory")
    if theory not in THEORIES:
        raise ValueError(f"model was trained on theory {theory!r}; samplers know {sorted(THEORIES)}")
    for name in ("kappa", "lam", "beta"):
        if getattr(args, name, None) is not None:
            if name not in COUPLINGS[theory]:
                raise ValueError(f"--{name} does not apply to a {theory} model")
            ens[name] = getattr(args, name)
    return THEORIES[theory](ens), ens


def _training_inputs(args: argparse.Namespace, ens_rec: dict, record: dict) -> list[str]:
    """The model file, and the training ensemble if it is still there (it must be unchanged;
    found as :func:`physml.io.lineage.lineage` finds it, from the model's provenance)."""
    prov = record["provenance"]
    recs = [r for r in json.loads(prov["inputs"]) if r["sha256"] == ens_rec["sha256"]]
    train_ens = locate_input(recs[0], prov, args.model) if recs else Path(ens_rec["path"])
    inputs = [args.model]
    if train_ens.is_file():
        if sha256_file(train_ens) != ens_rec["sha256"]:
            raise ValueError(f"{train_ens} changed since {args.model} was trained on it "
                             f"(recorded sha256 {ens_rec['sha256'][:12]}...): retrain the model")
        inputs.append(str(train_ens))
    return inputs


def sampler_from_args(args: argparse.Namespace):
    """The sampler the options describe: each sampler takes the options its constructor
    names; an option not given (absent or None) keeps the sampler's own default."""
    names = set(inspect.signature(SAMPLERS[args.sampler].__init__).parameters) - {"self"}
    return make_sampler(args.sampler, **{k: getattr(args, k) for k in names
                                         if getattr(args, k, None) is not None})


def cmd_sample(args: argparse.Namespace) -> None:
    device = setup_runtime(args)
    model, record = load_score_model(args.model, device)
    if args.L % model.downsampling:
        raise ValueError(f"--L {args.L} is not a multiple of the model's downsampling factor "
                         f"{model.downsampling}")
    if args.mala_steps and not args.mala_out:
        raise ValueError("--mala-steps needs --mala-out (the ensemble after MALA)")
    if (args.imh_out or args.rw_out) and not args.density:
        raise ValueError("--imh-out and --rw-out need --density (jacobian or path): the model's "
                         "density of each sample")
    theory, ens_rec = _theory_from_record(record, args)
    beta = theory.beta if theory.name == "u1" else None   # physics conditioning: score x beta / beta0
    inputs = _training_inputs(args, ens_rec, record)
    sampler = sampler_from_args(args)
    sampler.check_density(args.density, args.anneal_steps)
    if args.density:   # the density of the map actually run, in this dtype
        model = model.to(getattr(torch, args.density_dtype))
    mala = MALAStage(args.mala_steps, args.mala_tune_steps, args.mala_target_acceptance,
                      shift_moves=args.mala_global_moves, fourier=args.mala_fourier) if args.mala_steps else None
    if mala:
        mala.check(theory)
    site_shape = tuple(theory.cold_start(1, args.L).shape[1:])
    options = {"batch_size": args.batch_size, "anneal_steps": args.anneal_steps, "beta": beta,
               "anneal_snr": args.anneal_snr, "show_progress": args.progress,
               "target": theory.action if sampler.needs_target else None}
    res = sampler.sample(model, args.n_configs, site_shape, seed=args.seed,
                         snapshot_taus=args.snapshot_taus, n_snapshots=args.n_snapshots,
                         desc=f"{sampler.name} L={args.L}", density=args.density, **options)
    rate = args.n_configs / res.wall_time
    print(f"sampled {args.n_configs} configurations in {res.wall_time:.1f} s ({rate:.2f} configs/s, "
          f"{res.nfe} score evaluations each)")
    model_sha = sha256_file(args.model)
    attrs = {
        "sampler_json": json.dumps(sampler.config(), sort_keys=True), "nfe": int(res.nfe),
        "recipe": model.precond.recipe,
        "sigma_max": float(res.sigma_grid[0]), "sigma_min": float(res.sigma_grid[-1]),
        "anneal_steps": int(args.anneal_steps), "anneal_snr": float(args.anneal_snr),
        "score_factor": float(model.score_factor(beta)),
        "sample_wall_time_s": float(res.wall_time), "configs_per_s": float(rate),
        **{k: float(v) for k, v in res.stats.items()},
        "wall_time_s": float(res.wall_time),
        "model_path": str(args.model), "model_sha256": model_sha,
        "model_config_sha256": record["provenance"]["config_sha256"],
        "train_ensemble_path": str(ens_rec["path"]), "train_ensemble_sha256": ens_rec["sha256"],
        "train_L": int(record["ensemble"].get("L", -1)),
        **{f"train_{k}": float(record["ensemble"][k]) for k in COUPLINGS[theory.name]},
    }
    log_w, dm_attrs = None, dict(attrs)
    if res.log_q is not None:
        log_w = log_weights(theory.action(res.x.double()).numpy(), res.log_q.numpy())
        attrs.update(density=args.density, density_dtype=args.density_dtype)
        dm_attrs = {**attrs, **density_summary(log_w)}
        print(f"density ({args.density}): Kish ESS/N {dm_attrs['ess_fraction']:.4g}, log Z "
              f"{dm_attrs['log_Z']:.6g} +- {dm_attrs['log_Z_err']:.2g}, {dm_attrs['n_nonfinite']} of "
              f"{len(log_w)} log q not finite")
    ds = independent_ensemble(theory, res.x, args.source or sampler.source, **dm_attrs)
    if log_w is not None:
        ds["log_q"] = ("config", res.log_q.numpy(), {"long_name": "log q of the configuration (physical "
                       "units, measure prod dphi; path route: the path's log q)"})
        ds["log_weight"] = ("config", log_w, {"long_name": "log w = -S - log q (NaN: not finite)"})
    ds["sigma_grid"] = ("sigma_level", np.asarray(res.sigma_grid),
                        {"long_name": "noise levels of the sampler (normalised units)"})
    if res.snapshots is not None:
        dims = ("tau", "snapshot_config", *theory.site_dims)
        ds["snapshot"] = (dims, res.snapshots.double().numpy(),
                          {"long_name": "field along the backward process (tau = 0: prior, 1: sample)"})
        ds = ds.assign_coords(tau=res.snapshot_taus,
                              snapshot_sigma=("tau", res.snapshot_sigma,
                                              {"long_name": "noise level (normalised units)"}))
    save(ds, args, "sample", inputs=inputs, model_sha256=model_sha)
    dm_out = args.out
    if args.law_out:   # the same draws through the preconditioner's law alone
        law = sampler.sample(model.without_network(), args.n_configs, site_shape, seed=args.seed,
                             desc=f"law only L={args.L}", **options)
        args.out = args.law_out
        save(independent_ensemble(theory, law.x, "law_only", **{**attrs, "density": "", "law_only": 1}),
             args, "sample", inputs=inputs, model_sha256=model_sha, dm_ensemble=str(dm_out))
    corrections = ((args.imh_out, lambda: imh_ensemble(
                       theory, res.x, log_w, torch.Generator().manual_seed(derive_seed(args.seed, "imh")), **attrs)),
                   (args.rw_out, lambda: weighted_ensemble(theory, res.x, log_w, **attrs)))
    for out, build in corrections:
        if out:
            args.out = out
            save(build(), args, "sample", inputs=inputs, model_sha256=model_sha, dm_ensemble=str(dm_out))
    if mala is None:
        return
    t0 = time.perf_counter()
    pilot = sampler.sample(model, args.mala_pilot, site_shape, seed=derive_seed(args.seed, "mala-pilot"),
                           desc=f"pilot L={args.L}", **options).x.to(device)
    gen = torch.Generator(device=device).manual_seed(derive_seed(args.seed, "mala"))
    pilot_gen = torch.Generator(device=device).manual_seed(derive_seed(args.seed, "mala-pilot"))
    x, mala_vars, mala_attrs = mala.run(theory, res.x.to(device), pilot, gen, pilot_gen,
                                        show_progress=args.progress, desc=f"mala L={args.L}")
    attrs["wall_time_s"] = res.wall_time + time.perf_counter() - t0
    out = independent_ensemble(theory, x, "dm_mala", **attrs, **mala_attrs).merge(mala_vars)
    args.out = args.mala_out
    save(out, args, "sample", inputs=inputs, model_sha256=model_sha, dm_ensemble=str(dm_out))


def verb_train(t: argparse.ArgumentParser) -> None:
    t.description = "Train a score model on an ensemble (denoising score matching)."
    t.add_argument("ensemble", help="training ensemble .nc (phi^4 field 'phi' or U(1) links 'theta')")
    t.add_argument("--out", required=True, type=Output(".pt", beside=(".pt.ckpt",)),
                   help="model file to write (.pt)")
    t.add_argument("--history", required=True, type=Output(".nc"),
                   help="training history artifact to write (.nc)")
    t.add_argument("--checkpoint", default=None, type=Output(None), help="checkpoint file (default: OUT.ckpt)")
    t.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint after success")
    d = TrainConfig()
    t.add_argument("--recipe", choices=RECIPES, default=d.recipe,
                   help="edm: preconditioned denoiser, noise sized from the data; song: the papers' "
                        "VE SDE recipe (U(1) links: song only)")
    t.add_argument("--sde-name", choices=("ve",), default="ve", help="song: forward SDE")
    t.add_argument("--sde-sigma", type=float, default=25.0, help="song: VE SDE g(t) = sigma^t")
    old_spelling(t, "--sde", "--sde-name")
    old_spelling(t, "--sigma", "--sde-sigma")
    t.add_argument("--sigma-min", type=float, default=d.sigma_min,
                   help="edm: smallest training noise (normalised units)")
    t.add_argument("--sigma-distribution", choices=SIGMA_DISTRIBUTIONS, default=d.sigma_distribution,
                   help="edm: distribution of the training noise between sigma_min and sigma_max")
    t.add_argument("--generate-L", type=int, default=d.generate_L,
                   help="edm: largest L to be generated; sizes sigma_max (0: the training L)")
    t.add_argument("--zero-mode-weight", type=float, default=d.zero_mode_weight,
                   help="weight of the zero mode's error in the loss (1: as much as all other modes)")
    t.add_argument("--spectral", action=argparse.BooleanOptionalAction, default=d.spectral,
                   help="edm, scalar fields: scalings of the fluctuations per momentum, from the "
                        "propagator law 1 / (a + b p^2) fitted to the data (ignored otherwise)")
    t.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64], help="U-Net widths per level")
    t.add_argument("--embed-dim", type=int, default=64, help="noise-label embedding size")
    t.add_argument("--fourier-scale", type=float, default=None,
                   help="std of the Fourier frequencies of the noise label (default: 1 for edm, "
                        "16 for song)")
    t.add_argument("--groups", type=int, default=4, help="GroupNorm groups (at most)")
    t.add_argument("--blocks-per-level", type=int, default=0, help="extra residual blocks per level")
    t.add_argument("--global-pool", action=argparse.BooleanOptionalAction, default=False,
                   help="mix the lattice average of the deepest features back in")
    for flag, what in (("field-stats", "the input's mean and RMS into the conditioning and a "
                                       "uniform output head"),
                       ("adaptive-norm", "conditioning as scale and shift after each GroupNorm")):
        t.add_argument(f"--{flag}", dest=flag.replace("-", "_"), action=argparse.BooleanOptionalAction,
                       default=None, help=f"{what} (default: on for edm, off for song and U(1))")
    old_spelling(t, "--zero-mode", "--field-stats")
    old_spelling(t, "--no-zero-mode", "--no-field-stats")
    t.add_argument("--gauge-covariant", action=argparse.BooleanOptionalAction, default=False,
                   help="U(1): score = B^T g(cos theta_P, sin theta_P), exactly gauge covariant "
                        "(see physml.diffusion.unet)")
    t.add_argument("--plaquette-law", action=argparse.BooleanOptionalAction, default=False,
                   help="U(1): the denoiser carries the noised law of independent plaquettes at beta_0, "
                        "the network learns the rest (physml.diffusion.precond.PlaquetteLaw)")
    t.add_argument("--epochs", type=int, default=d.epochs, help="passes over the ensemble")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="configurations per step")
    t.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    t.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d.lr_schedule,
                   help="learning-rate schedule over epochs")
    t.add_argument("--lr-final-factor", type=float, default=d.lr_final_factor,
                   help="cosine: final lr = lr * this")
    t.add_argument("--ema-halflife", type=float, default=d.ema_halflife,
                   help="half-life of the weights' moving average, as a fraction of all steps")
    t.add_argument("--t-min", type=float, default=d.t_min, help="song: smallest training time")
    t.add_argument("--t-sampling", choices=T_SAMPLING, default=d.t_sampling,
                   help="song: training times uniform in [t_min, 1], or log-uniform noise level")
    t.add_argument("--normalisation", choices=("rms", "minmax"), default=d.normalisation,
                   help="divide the data by its RMS or by max |phi| (no shift either way); "
                        "U(1) angles are never normalised")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random translations/reflections/rotations of the training data")
    t.add_argument("--odd", action=argparse.BooleanOptionalAction, default=True,
                   help="make the score odd (exact Z2; --no-odd breaks it)")
    t.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    t.add_argument("--seed", type=int, required=True, help="random seed")
    add_runtime_options(t, device=True)
    t.set_defaults(func=cmd_train)


def verb_sample(s: argparse.ArgumentParser) -> None:
    s.add_argument("model", help="model file (.pt) from `physml diffusion train`")
    s.add_argument("--L", type=int, required=True, help="lattice extent of the generated fields")
    s.add_argument("--n-configs", type=int, required=True, help="configurations to generate")
    s.add_argument("--sampler", choices=sorted(SAMPLERS), default="ode2m",
                   help="ode2m: probability-flow ODE, multistep DPM-Solver++(2M); ode: the same with "
                        "Heun steps (stochastic with --churn); em: Euler-Maruyama; "
                        "pc: predictor-corrector; ald: annealed Langevin; authors: the U(1) paper's "
                        "annealed Langevin with Metropolis-Hastings steps (source dm_authors). "
                        "The options below default to each sampler's own values "
                        "(physml.diffusion.samplers)")
    s.add_argument("--n-steps", type=int, default=None,
                   help="noise levels (64; ald 100; authors 30)")
    s.add_argument("--grid", choices=GRIDS, default=None,
                   help="noise grid: karras (rho = 7; the default), geometric (ald's), or uniform "
                        "in the SDE time (song)")
    s.add_argument("--sigma-min", type=float, default=None,
                   help="last noise level (default: the smallest the model was trained on)")
    s.add_argument("--sigma-max", type=float, default=None,
                   help="first noise level (default: the model's, sized from its data)")
    s.add_argument("--churn", type=float, default=None, help="ode: EDM's stochasticity S_churn (0)")
    s.add_argument("--snr", type=float, default=None, help="pc, ald: Langevin signal-to-noise ratio (0.16)")
    s.add_argument("--n-corrector", type=int, default=None, help="pc: corrector steps per level (1)")
    s.add_argument("--steps-per-level", type=int, default=None,
                   help="ald, authors: Langevin steps per level (2; authors 400)")
    s.add_argument("--level-ratio", type=float, default=None,
                   help="authors: ratio of successive SDE times t_k (0.7)")
    s.add_argument("--step-alpha", type=float, default=None,
                   help="authors: step size at the last level, eps_k = unit^2 alpha (t_k / t_last)^2 (5e-9)")
    s.add_argument("--t-mh", type=float, default=None,
                   help="authors: levels with t_k below this accept or reject against the exact action (0.01)")
    s.add_argument("--field-unit", type=float, default=None,
                   help="authors: the authors' field unit in the model's units (pi: angles / pi)")
    s.add_argument("--output", choices=("mean", "state"), default=None,
                   help="authors: the last Langevin step's mean, as the authors take it (the default), "
                        "or the chain's last state")
    s.add_argument("--anneal-steps", type=int, default=0,
                   help="annealing stage: Langevin steps at sigma_min before the final denoising")
    s.add_argument("--anneal-snr", type=float, default=0.16, help="annealing stage: signal-to-noise ratio")
    s.add_argument("--batch-size", type=int, default=256,
                   help="configurations per batch (the samples do not depend on it)")
    s.add_argument("--snapshot-taus", type=float, nargs="*", default=[0, 0.25, 0.5, 0.75, 1],
                   help="fractions of the backward process at which to keep snapshots")
    s.add_argument("--n-snapshots", type=int, default=4, help="configurations to keep snapshots of")
    s.add_argument("--kappa", type=float, default=None,
                   help="phi4: kappa of the action stored with the samples (default: the model's)")
    s.add_argument("--lam", type=float, default=None, help="phi4: lambda (default: the model's)")
    s.add_argument("--beta", type=float, default=None,
                   help="u1: generate at this beta (score times beta / beta_0; default: beta_0)")
    s.add_argument("--source", default=None,
                   help="source label of the generated ensemble (default: dm; dm_authors for the "
                        "authors' sampler), e.g. dm_song for a song-recipe model beside the default one")
    add_mala_options(s, default_steps=0)
    s.add_argument("--mala-out", default=None, help="ensemble after the MALA stage (source = dm_mala)")
    s.add_argument("--law-out", default=None,
                   help="the same prior draws and sampler with the network's output set to zero: the "
                        "preconditioner's fitted law alone (source = law_only; scalar fields, and U(1) "
                        "models trained with --plaquette-law)")
    s.add_argument("--density", choices=("jacobian", "path"), default=None,
                   help="the model's density of every sample, log q, and log w = -S - log q: "
                        "jacobian (exact, deterministic samplers ode and ode2m; about V network "
                        "passes per score evaluation) or path (path weights of --sampler em, no "
                        "Jacobian); stored as log_q and log_weight with ESS/N and log Z")
    s.add_argument("--density-dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the sampling map whose density is taken (the log-determinant is "
                        "always accumulated in float64)")
    s.add_argument("--imh-out", default=None,
                   help="with --density: the independence Metropolis chain over the samples "
                        "(source = dm_imh)")
    s.add_argument("--rw-out", default=None,
                   help="with --density: the samples with importance weights (source = dm_rw)")
    s.add_argument("--seed", type=int, required=True, help="random seed")
    s.add_argument("--out", required=True, help="output ensemble .nc")
    add_runtime_options(s, device=True)
    s.set_defaults(func=cmd_sample)
