"""The U(1) diffusion model as an exact sampler at the generated coupling: how far physics
conditioning carries.  Models trained at beta_0 on one ensemble, side by side: the papers'
``song`` recipe, the same with the plaquette law in the denoiser (``law``), and that law
with the network silenced (``law_only``, no training at all).  Each generates at every
beta with the score times beta / beta_0 (deterministic sampler, its Jacobian density on
the torus) and is graded against exp(-S_beta):

- Kish ESS/N of the importance weights p_beta / q and var(log w) (ESS/N ~ exp(-var) for
  Gaussian log w; with few proposals the Kish ESS is biased upward, var(log w) is not);
- the independence Metropolis acceptance;
- log Z against the exact torus value (physml.lattice.u1_exact.log_partition), a check
  of the density itself where ESS/N is not small;
- the raw plaquette's pull against the exact torus value, and seconds per proposal with
  the log-det.

Training cost (one CPU thread) is printed separately.

Usage: python benchmarks/u1_exact_dm.py --train-ensemble results/u1/training/L16_beta1/ensemble.nc
       [--recipes song law law_only] [--epochs 30] [--L 8 16] [--betas 1 2 3 5 7 9 11]
       [--proposals 64] [--n-steps 16] [--dtype float32] [--workdir DIR]
Trained models are kept in ``--workdir`` (default: a new temporary folder) and reused.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from physml.diffusion.model import load_score_model
from physml.diffusion.samplers import make_sampler
from physml.lattice import u1_exact as ex
from physml.lattice.u1 import U1, plaquette_angles
from physml.mc.importance import ess_fraction, independence_chain, log_partition, log_weights

TRAIN = ["--sde-name", "ve", "--sde-sigma", "25.0", "--channels", "16", "32", "64", "--embed-dim", "64",
         "--gauge-covariant", "--seed", "11", "--threads", "1", "--no-progress"]   # the quick config's network


def train(ensemble: str, recipe: str, epochs: int, workdir: Path) -> tuple[Path, float]:
    """The model of ``recipe`` (song, law) trained with physml diffusion train, once per workdir;
    returns its path and the training wall time (from its history)."""
    out = workdir / f"{recipe}_{epochs}.pt"
    if not out.exists():
        law = ["--plaquette-law"] if recipe == "law" else []
        subprocess.run([sys.executable, "-m", "physml", "diffusion", "train", ensemble, "--out", str(out),
                        "--history", str(out.with_suffix(".nc")), "--recipe", "song", "--epochs", str(epochs),
                        *TRAIN, *law], check=True, stdout=subprocess.DEVNULL)
    return out, float(xr.open_dataset(out.with_suffix(".nc"))["wall_time"].values[-1])


def grade(model, beta: float, L: int, args) -> dict:
    """ESS/N, var(log w), IMH acceptance, log Z against exact, plaquette pull, s per proposal."""
    res = make_sampler("ode2m", n_steps=args.n_steps).sample(model, args.proposals, (2, L, L), seed=int(100 * beta) + L,
                                                             beta=beta, show_progress=False, density="jacobian")
    x = res.x.double()
    log_w = log_weights(U1(beta).action(x).numpy(), res.log_q.numpy())
    accepted = independence_chain(log_w, torch.Generator().manual_seed(1))[1]
    log_z, log_z_err = log_partition(log_w)
    plaq = torch.cos(plaquette_angles(x)).mean((-2, -1)).numpy()
    return {"ess": ess_fraction(log_w), "var": float(np.nanvar(log_w)), "acc": float(accepted[1:].mean()),
            "dlogz": log_z - ex.log_partition(beta, L), "dlogz_err": log_z_err,
            "plaq_pull": (plaq.mean() - ex.plaquette(beta, L)) / (plaq.std(ddof=1) / math.sqrt(len(plaq))),
            "s_per": res.wall_time / args.proposals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-ensemble", required=True, help="U(1) training ensemble at beta_0 (its beta attribute)")
    ap.add_argument("--recipes", nargs="+", choices=("song", "law", "law_only"), default=["song", "law", "law_only"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--L", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--betas", type=float, nargs="+", default=[1, 2, 3, 5, 7, 9, 11])
    ap.add_argument("--proposals", type=int, default=64)
    ap.add_argument("--n-steps", type=int, default=16, help="ode2m levels")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="physml-u1-exact-"))
    workdir.mkdir(parents=True, exist_ok=True)
    models = {}
    for recipe in args.recipes:
        path, wall = train(args.train_ensemble, "law" if recipe == "law_only" else recipe, args.epochs, workdir)
        model = load_score_model(path)[0].to(getattr(torch, args.dtype))
        models[recipe] = model.without_network() if recipe == "law_only" else model
        print(f"{recipe}: {path} (training {wall:.0f} s, one thread)", flush=True)
    print(f"\nU(1), ode2m {args.n_steps} levels, {args.dtype}, {args.proposals} proposals per point, one thread; "
          "exact = torus values")
    head = (f"{'recipe':9} {'L':>3} {'beta':>4} {'ESS/N':>7} {'var(logw)':>9} {'IMH acc':>7} "
            f"{'logZ - exact':>14} {'plaq pull':>9} {'s/proposal':>10}")
    print(head + "\n" + "-" * len(head), flush=True)
    for L in args.L:
        for recipe, model in models.items():
            for beta in args.betas:
                t0 = time.perf_counter()
                r = grade(model, beta, L, args)
                print(f"{recipe:9} {L:3d} {beta:4g} {r['ess']:7.3f} {r['var']:9.3g} {r['acc']:7.3f} "
                      f"{r['dlogz']:+8.3f}({r['dlogz_err']:.3f}) {r['plaq_pull']:+9.1f} {r['s_per']:10.3f}"
                      f"   [{time.perf_counter() - t0:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
