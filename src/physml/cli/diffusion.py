"""CLI verbs of the diffusion study: ``train``, ``sample``, ``compare``.

- ``physml train ENSEMBLE --out model.pt --history training.nc``: denoising score
  matching on an ensemble artifact; checkpoints after every epoch and resumes.
- ``physml sample MODEL --L 32 --n-configs 1024 --out ensemble.nc``: a generated
  ensemble artifact (``source = dm``), measurable like an HMC ensemble.
- ``physml compare OBSERVABLES... --out results/tables/phi4_....nc``: the tidy
  comparison table of generated against HMC observables (plus a CSV export).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from physml.cli.common import add_runtime_options, resolved_config, save, setup_runtime
from physml.diffusion.model import load_score_model, read_model_file, save_score_model
from physml.diffusion.samplers import GRIDS, SAMPLERS, make_sampler
from physml.diffusion.training import T_SAMPLING, TrainConfig, train_score_model
from physml.io.artifacts import atomic_path, provenance_attrs, read_artifact, sha256_file
from physml.lattice.phi4 import Phi4
from physml.observables.compare import comparison_table, table_frame

THEORIES = {"phi4": lambda attrs: Phi4(float(attrs["kappa"]), float(attrs["lam"]))}


def _field(ds: xr.Dataset) -> str:
    for name in ("phi", "theta"):
        if name in ds:
            return name
    raise ValueError("ensemble has no field variable ('phi' or 'theta')")


def cmd_train(args: argparse.Namespace) -> None:
    device = setup_runtime(args)
    ens = read_artifact(args.ensemble)
    field = _field(ens)
    data = torch.from_numpy(np.asarray(ens[field].values))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      lr_schedule=args.lr_schedule, lr_final_factor=args.lr_final_factor,
                      ema_decay=args.ema_decay, t_min=args.t_min, t_sampling=args.t_sampling,
                      normalisation=args.normalisation,
                      augment=args.augment, odd=args.odd, grad_clip=args.grad_clip)
    sde = {"name": args.sde, "sigma": args.sigma}
    in_channels = 1 if data.dim() == 3 else int(data.shape[1])
    net = {"in_channels": in_channels, "channels": args.channels, "embed_dim": args.embed_dim,
           "fourier_scale": args.fourier_scale, "groups": args.groups,
           "blocks_per_level": args.blocks_per_level, "global_pool": args.global_pool}
    ens_sha = sha256_file(args.ensemble)
    checkpoint = args.checkpoint or f"{args.out}.ckpt"
    res = train_score_model(data, sde=sde, net=net, cfg=cfg, seed=args.seed, device=device,
                            checkpoint=checkpoint, data_sha256=ens_sha, show_progress=args.progress)
    config = resolved_config(args, checkpoint=None)
    ensemble = {"path": str(args.ensemble), "sha256": ens_sha, "field": field,
                **{k: ens.attrs[k] for k in ("theory", "source", "L", "kappa", "lam", "beta")
                   if k in ens.attrs}}
    for k, v in ensemble.items():
        if isinstance(v, np.generic):
            ensemble[k] = v.item()
    prov = provenance_attrs(config, args.rule or "train", args.seed, [args.ensemble])
    save_score_model(args.out, res.model, config=config, train_config=asdict(cfg),
                     ensemble=ensemble, provenance=prov, history_summary={
                         "final_loss": float(res.history["loss"][-1]),
                         "wall_time_s": float(res.history["wall_time"][-1]),
                         "resumed_from_epoch": res.resumed_from_epoch})
    print(f"wrote {args.out}")
    hist = res.history
    hist.attrs.update({"theory": ensemble.get("theory", ""), "scale": res.model.scale,
                       "n_parameters": int(sum(p.numel() for p in res.model.net.parameters()))})
    for k in ("L", "kappa", "lam", "beta"):
        if k in ensemble:
            hist.attrs[k] = ensemble[k]
    args.out, model_out = args.history, args.out
    save(hist, args, "train", inputs=[args.ensemble], checkpoint=None, model=str(model_out))
    if not args.keep_checkpoint:
        Path(checkpoint).unlink(missing_ok=True)


def _theory_from_record(record: dict, args: argparse.Namespace):
    ens = dict(record["ensemble"])
    theory = ens.get("theory")
    if theory not in THEORIES:
        raise ValueError(f"model was trained on theory {theory!r}; samplers know {sorted(THEORIES)}")
    for k in ("kappa", "lam"):
        if getattr(args, k, None) is not None:
            ens[k] = getattr(args, k)
    return THEORIES[theory](ens), ens


def cmd_sample(args: argparse.Namespace) -> None:
    device = setup_runtime(args)
    model, record = load_score_model(args.model, device)
    if args.L % model.downsampling:
        raise ValueError(f"--L {args.L} is not a multiple of the model's downsampling factor "
                         f"{model.downsampling}")
    theory, ens_rec = _theory_from_record(record, args)
    params = {"n_steps": args.n_steps, "t_min": args.t_min, "grid": args.grid}
    if args.sampler == "pc":
        params.update(snr=args.snr, n_corrector=args.n_corrector)
    sampler = make_sampler(args.sampler, **params)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    res = sampler.sample(model, args.n_configs, (args.L, args.L), generator=gen,
                         batch_size=args.batch_size, snapshot_taus=args.snapshot_taus,
                         n_snapshots=args.n_snapshots, theory=theory, show_progress=args.progress,
                         desc=f"{sampler.name} L={args.L}")
    phi = res.x.double()
    rate = args.n_configs / res.wall_time
    print(f"sampled {args.n_configs} configurations in {res.wall_time:.1f} s ({rate:.2f} configs/s)")
    data_vars = {
        "phi": (("config", "x", "y"), phi.numpy()),
        "chain": ("config", np.arange(args.n_configs),
                  {"long_name": "independent sample index (every configuration is its own chain)"}),
        "action": ("config", theory.action(phi).numpy(), {"long_name": "action S of the configuration"}),
    }
    coords = {"config": np.arange(args.n_configs)}
    if res.snapshots is not None:
        data_vars["snapshot"] = (("tau", "snapshot_config", "x", "y"), res.snapshots.double().numpy(),
                                 {"long_name": "field along the backward process (tau = 0: prior, 1: sample)"})
        coords["tau"] = res.snapshot_taus
        coords["snapshot_t"] = ("tau", res.snapshot_t, {"long_name": "diffusion time t"})
    model_sha = sha256_file(args.model)
    train_ens = Path(ens_rec["path"])
    inputs = [args.model]
    if train_ens.is_file():
        if sha256_file(train_ens) != ens_rec["sha256"]:
            raise ValueError(f"{train_ens} changed since {args.model} was trained on it "
                             f"(recorded sha256 {ens_rec['sha256'][:12]}...): retrain the model")
        inputs.append(str(train_ens))
    ds = xr.Dataset(data_vars, coords=coords, attrs={
        "theory": record["ensemble"]["theory"], "source": "dm", "L": int(args.L),
        "kappa": float(theory.kappa), "lam": float(theory.lam),
        "sampler_json": json.dumps(sampler.config(), sort_keys=True), "nfe": int(res.nfe),
        "sample_wall_time_s": float(res.wall_time), "configs_per_s": float(rate),
        "model_path": str(args.model), "model_sha256": model_sha,
        "model_config_sha256": record["provenance"]["config_sha256"],
        "train_ensemble_path": str(train_ens), "train_ensemble_sha256": ens_rec["sha256"],
        "train_L": int(record["ensemble"].get("L", -1)),
    })
    save(ds, args, "sample", inputs=inputs, model_sha256=model_sha)


def cmd_compare(args: argparse.Namespace) -> None:
    setup_runtime(args)
    datasets = [read_artifact(p) for p in args.observables]
    table = comparison_table(datasets, reference=args.reference)
    csv = args.csv or str(Path(args.out).with_suffix(".csv"))
    save(table, args, "compare", inputs=args.observables)
    with atomic_path(csv) as tmp:
        table_frame(table).to_csv(tmp, index=False, float_format="%.8g")
    print(f"wrote {csv}")


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    t = sub.add_parser("train", help="train a score model on an ensemble (denoising score matching)",
                       formatter_class=fmt)
    t.add_argument("ensemble", help="training ensemble .nc (field 'phi' with dims (config, x, y))")
    t.add_argument("--out", required=True, help="model file to write (.pt)")
    t.add_argument("--history", required=True, help="training history artifact to write (.nc)")
    t.add_argument("--checkpoint", default=None, help="checkpoint file (default: OUT.ckpt)")
    t.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint after success")
    t.add_argument("--sde", choices=("ve",), default="ve", help="forward SDE")
    t.add_argument("--sigma", type=float, default=25.0, help="VE SDE: g(t) = sigma^t")
    t.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64], help="U-Net widths per level")
    t.add_argument("--embed-dim", type=int, default=64, help="time embedding size")
    t.add_argument("--fourier-scale", type=float, default=16.0, help="std of the Fourier frequencies")
    t.add_argument("--groups", type=int, default=4, help="GroupNorm groups (at most)")
    t.add_argument("--blocks-per-level", type=int, default=0, help="extra residual blocks per level")
    t.add_argument("--global-pool", action="store_true",
                   help="mix the lattice average of the deepest features back in (sees phibar)")
    d = TrainConfig()
    t.add_argument("--epochs", type=int, default=d.epochs, help="passes over the ensemble")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="configurations per step")
    t.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    t.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d.lr_schedule,
                   help="learning-rate schedule over epochs")
    t.add_argument("--lr-final-factor", type=float, default=d.lr_final_factor,
                   help="cosine: final lr = lr * this")
    t.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA decay of the weights")
    t.add_argument("--t-min", type=float, default=d.t_min, help="smallest training time")
    t.add_argument("--t-sampling", choices=T_SAMPLING, default=d.t_sampling,
                   help="training times: uniform in [t_min, 1], or log-uniform noise level sigma(t)")
    t.add_argument("--normalisation", choices=("rms", "minmax"), default=d.normalisation,
                   help="divide the data by its RMS or by max |phi| (no shift either way)")
    t.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no random translations/reflections/rotations")
    t.add_argument("--no-odd", dest="odd", action="store_false",
                   help="do not make the score odd (breaks exact Z2)")
    t.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    t.add_argument("--seed", type=int, required=True, help="random seed")
    add_runtime_options(t, device=True)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate an ensemble from a trained score model",
                       formatter_class=fmt)
    s.add_argument("model", help="model file (.pt) from `physml train`")
    s.add_argument("--L", type=int, required=True, help="lattice extent of the generated fields")
    s.add_argument("--n-configs", type=int, required=True, help="configurations to generate")
    s.add_argument("--sampler", choices=sorted(SAMPLERS), default="em",
                   help="em: Euler-Maruyama, pc: predictor-corrector, ode: probability flow")
    s.add_argument("--n-steps", type=int, default=500, help="time steps from t = 1 to t_min")
    s.add_argument("--t-min", type=float, default=1e-3, help="final diffusion time")
    s.add_argument("--grid", choices=GRIDS, default="linear",
                   help="time grid: uniform in t, or geometric in the noise level sigma(t)")
    s.add_argument("--snr", type=float, default=0.16, help="pc: Langevin corrector signal-to-noise")
    s.add_argument("--n-corrector", type=int, default=1, help="pc: corrector steps per time step")
    s.add_argument("--batch-size", type=int, default=256, help="configurations per batch")
    s.add_argument("--snapshot-taus", type=float, nargs="*", default=[0, 0.25, 0.5, 0.75, 1],
                   help="fractions of the backward process at which to keep snapshots")
    s.add_argument("--n-snapshots", type=int, default=4, help="configurations to keep snapshots of")
    s.add_argument("--kappa", type=float, default=None,
                   help="phi4: kappa of the action stored with the samples (default: the model's)")
    s.add_argument("--lam", type=float, default=None, help="phi4: lambda (default: the model's)")
    s.add_argument("--seed", type=int, required=True, help="random seed")
    s.add_argument("--out", required=True, help="output ensemble .nc")
    add_runtime_options(s, device=True)
    s.set_defaults(func=cmd_sample)

    c = sub.add_parser("compare", help="table of generated vs reference observables (NetCDF + CSV)",
                       formatter_class=fmt)
    c.add_argument("observables", nargs="+", help="observable artifacts (.nc) of every source")
    c.add_argument("--reference", default="hmc", help="source the others are compared with")
    c.add_argument("--out", required=True, help="table .nc (results/tables/<theory>_...)")
    c.add_argument("--csv", default=None, help="CSV export (default: OUT with .csv)")
    add_runtime_options(c)
    c.set_defaults(func=cmd_compare)
