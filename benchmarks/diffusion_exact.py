"""The phi^4 diffusion model as an exact sampler, measured side by side in one run.

For each kappa: an HMC training ensemble at L with the quick config's HMC settings, a model
trained on it with the command line's defaults (plus ``--train-option``), an independent HMC
reference (another seed, 4x the configurations) at the lattice of the exact route
(``--exact-L``, default L); the model's proposals there with their density (``--density
jacobian``: the sampler's Jacobian) corrected by independence Metropolis (dm_imh) and
importance weights (dm_rw).  Printed:

- |M|, chi_2, U_L and S/V of the raw proposals (dm_q), dm_imh and dm_rw against the
  reference, with pulls;
- ESS/N, the IMH acceptance and log Z;
- the cost per effectively independent configuration: the sampling wall time, Jacobian
  included, over the Kish ESS (dm_rw) or over N / (2 tau_int) of |phibar| (dm_imh),
  beside HMC's wall time per configuration times 2 tau_int (|phibar|, in stored
  configurations) of the reference ensemble;
- the path route (``--density path``: Euler-Maruyama's path weights, O(1) network passes per
  step, no Jacobian): ESS/N and ESS per CPU-second at each of ``--path-L`` beside the Jacobian
  route's at L.

Files are kept in ``--workdir`` and reused when present, so an interrupted run resumes.
Usage: python benchmarks/diffusion_exact.py [--kappa 0.27 0.5] [--L 16] [--n-proposals 128]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from cli_run import physml

HMC = ["--n-chains", "64", "--n-therm", "2000", "--meas-interval", "32"]   # the quick config's
OBSERVABLES = ("abs_mag", "chi2", "binder", "action_density")


def once(path: Path, *args: str) -> None:
    """Run the verb unless ``path`` exists (an interrupted run resumes)."""
    if not path.exists():
        physml(*args)


def measured(ens: Path) -> xr.Dataset:
    obs = ens.with_name(ens.stem + "_obs.nc")
    once(obs, "lattice", "measure", str(ens), "--out", str(obs))
    return xr.open_dataset(obs)


def model_tag(kappa: float, args) -> str:
    return f"k{kappa:g}_L{args.L}" + "".join(o.replace("-", "") for o in args.train_option)


def jacobian_route(work: Path, kappa: float, args) -> None:
    tag, L = model_tag(kappa, args), args.exact_L or args.L
    hmc = ["lattice", "hmc", "phi4", "--kappa", str(kappa), *HMC]
    train = work / f"k{kappa:g}_L{args.L}_train.nc"
    once(train, *hmc, "--L", str(args.L), "--n-configs", "1024", "--seed", "1", "--source", "hmc_train",
         "--out", str(train))
    ref_path = work / f"k{kappa:g}_L{L}_ref.nc"
    once(ref_path, *hmc, "--L", str(L), "--n-configs", "4096", "--seed", "2", "--out", str(ref_path))
    once(work / f"{tag}.pt", "diffusion", "train", str(train), "--out", str(work / f"{tag}.pt"),
         "--history", str(work / f"{tag}_history.nc"), "--seed", "3", *args.train_option)
    tag = f"{tag}_at{L}"
    out = {s: work / f"{tag}_{s}.nc" for s in ("dm_q", "dm_imh", "dm_rw")}
    once(out["dm_q"], "diffusion", "sample", str(work / f"{model_tag(kappa, args)}.pt"), "--L", str(L), "--n-configs",
         str(args.n_proposals), "--n-steps", str(args.n_steps), "--density", "jacobian", "--density-dtype",
         args.density_dtype, "--source", "dm_q", "--n-snapshots", "0", "--seed", "4", "--out", str(out["dm_q"]),
         "--imh-out", str(out["dm_imh"]), "--rw-out", str(out["dm_rw"]))
    ref = measured(ref_path)
    ref_ens = xr.open_dataset(ref_path)
    # the sampler's own wall time, as for the model (sample_wall_time_s): no process start-up
    hmc_wall = float(ref_ens.attrs["wall_time_s"]) / ref_ens.sizes["config"]
    q = xr.open_dataset(out["dm_q"])
    wall = float(q.attrs["sample_wall_time_s"])
    print(f"\nkappa = {kappa:g}, model trained at L = {args.L} {' '.join(args.train_option)}, exact route at "
          f"L = {L}: {args.n_proposals} proposals, ode2m {args.n_steps} steps, {args.density_dtype}; sampling "
          f"with the Jacobian {wall / args.n_proposals:.2f} s per proposal")
    print(f"{'source':8}" + "".join(f"{o:>27}" for o in OBSERVABLES))
    print(f"{'hmc':8}" + "".join(f"{float(ref[o]):>12.4f}({float(ref[o + '_err']):.4f})       " for o in OBSERVABLES))
    for source, ens in out.items():
        obs = measured(ens)
        pulls = [(float(obs[o]) - float(ref[o])) / np.hypot(float(obs[o + "_err"]), float(ref[o + "_err"]))
                 for o in OBSERVABLES]
        print(f"{source:8}" + "".join(f"{float(obs[o]):>12.4f}({float(obs[o + '_err']):.4f}) {p:+5.1f}s"
                                      for o, p in zip(OBSERVABLES, pulls)) + f"  {obs.attrs.get('flag', '')}")
    rw, imh = xr.open_dataset(out["dm_rw"]), measured(out["dm_imh"])
    ess = float(rw.attrs["ess_fraction"]) * args.n_proposals
    tau_imh = float(imh["tau_int_abs_mag"])
    tau_hmc = float(ref["tau_int_abs_mag"])
    print(f"ESS/N {float(rw.attrs['ess_fraction']):.3f} (ESS {ess:.1f}), IMH acceptance "
          f"{float(imh.attrs['imh_acceptance']):.3f} (tau_int |phibar| {tau_imh:.2f}), log Z "
          f"{float(rw.attrs['log_Z']):.3f} +- {float(rw.attrs['log_Z_err']):.3f}")
    print(f"s per independent configuration: dm_rw {wall / ess:.2f}, dm_imh "
          f"{wall * 2 * tau_imh / args.n_proposals:.2f}, HMC {hmc_wall * 2 * tau_hmc:.4f} "
          f"(tau_int |phibar| {tau_hmc:.2f} stored configurations); dm_rw / HMC "
          f"{wall / ess / (hmc_wall * 2 * tau_hmc):.0f}x")


def path_route(work: Path, kappa: float, args) -> None:
    """ESS/N and ESS per CPU-second of the path weights at each L, with the model trained at
    args.L; the Jacobian route's at args.L beside it."""
    tag, L0 = model_tag(kappa, args), args.exact_L or args.L
    q = xr.open_dataset(work / f"{tag}_at{L0}_dm_q.nc")
    jac = float(q.attrs["ess_fraction"]) * args.n_proposals / float(q.attrs["sample_wall_time_s"])
    print(f"\npath weights (em), kappa = {kappa:g}, model trained at L = {args.L}; Jacobian route at L = "
          f"{L0}: ESS/N {float(q.attrs['ess_fraction']):.3f}, {jac:.3g} ESS per s")
    for L in args.path_L:
        for steps in args.path_steps:
            out = work / f"{tag}_path_L{L}_n{steps}.nc"
            once(out, "diffusion", "sample", str(work / f"{tag}.pt"), "--L", str(L), "--n-configs",
                 str(args.n_proposals), "--sampler", "em", "--n-steps", str(steps), "--density", "path",
                 "--n-snapshots", "0", "--seed", "5", "--out", str(out))
            ds = xr.open_dataset(out)
            lw = ds["log_weight"].values
            ess = float(ds.attrs["ess_fraction"]) * args.n_proposals
            rate = ess / float(ds.attrs["sample_wall_time_s"])
            print(f"  L = {L:3d}, {steps:5d} steps: var(log w) {np.nanvar(lw):9.1f}, ESS/N "
                  f"{float(ds.attrs['ess_fraction']):.4f}, {rate:.3g} ESS per s"
                  + ("  (degenerate: one weight dominates)" if ess < 2 else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kappa", type=float, nargs="+", default=[0.27, 0.5])
    ap.add_argument("--L", type=int, default=16, help="training lattice")
    ap.add_argument("--exact-L", type=int, default=0, help="lattice of the Jacobian route (0: --L)")
    ap.add_argument("--train-option", action="append", default=[],
                    help="one more option of physml diffusion train (repeatable)")
    ap.add_argument("--n-proposals", type=int, default=128)
    ap.add_argument("--n-steps", type=int, default=16, help="ode2m levels of the Jacobian route")
    ap.add_argument("--density-dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--path-L", type=int, nargs="*", default=[8, 16, 32])
    ap.add_argument("--path-steps", type=int, nargs="*", default=[64, 512])
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="physml-exact-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work in {work}; {os.cpu_count()} CPUs; " + json.dumps(vars(args)))
    for kappa in args.kappa:
        jacobian_route(work, kappa, args)
    for kappa in args.kappa:
        path_route(work, kappa, args)


if __name__ == "__main__":
    main()
