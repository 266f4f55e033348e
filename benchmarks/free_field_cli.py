"""The free field as ground truth of a user's own run: HMC at lambda = 0, then `physml diffusion train`
and `physml diffusion sample` with the CLI's defaults (only the seeds and files given), then the
trained model against the exact score and its samples against the exact propagator.

Checks (the tolerances of tests/test_diffusion_training.py, whose model is smaller):
the error of sigma s against the exact score below 0.1 in noise units at nine noise
levels from sigma_min to sigma_max, over all components and along the zero mode (the
restoring force on phibar); the samples' <|phi~(p)|^2>/V within 3 sigma of the exact
free propagator at every momentum (p = 0: chi_2).  Prints PASS or FAIL and the numbers;
exit status 1 on FAIL.

Usage: python benchmarks/free_field_cli.py [--kappa 0.2] [--L 8] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import xarray as xr

from physml.diffusion.free_field import propagator_pulls, score_errors
from physml.diffusion.model import load_score_model


def physml(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "physml", *args, "--no-progress"], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kappa", type=float, default=0.2, help="hopping parameter (< 1/4)")
    ap.add_argument("--L", type=int, default=8, help="lattice extent")
    ap.add_argument("--n-train", type=int, default=2048, help="training configurations")
    ap.add_argument("--n-samples", type=int, default=1024, help="generated configurations")
    ap.add_argument("--workdir", default=None, help="folder for the ensembles and the model (default: temporary)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="physml-free-"))
    work.mkdir(parents=True, exist_ok=True)
    hmc = ["lattice", "hmc", "phi4", "--kappa", str(args.kappa), "--lam", "0", "--L", str(args.L), "--n-chains", "128",
           "--n-therm", "100", "--meas-interval", "4", "--start", "hot"]
    walls = {"hmc": physml(*hmc, "--n-configs", str(args.n_train), "--seed", "1", "--out", str(work / "train.nc"))
             + physml(*hmc, "--n-configs", "256", "--seed", "2", "--out", str(work / "test.nc"))}
    walls["train"] = physml("diffusion", "train", str(work / "train.nc"), "--out", str(work / "model.pt"),
                            "--history", str(work / "history.nc"), "--seed", "3")
    walls["sample"] = physml("diffusion", "sample", str(work / "model.pt"), "--L", str(args.L), "--n-configs",
                             str(args.n_samples), "--seed", "4", "--out", str(work / "sample.nc"))
    model, _ = load_score_model(work / "model.pt")
    test = torch.from_numpy(xr.open_dataset(work / "test.nc")["phi"].values)
    train = torch.from_numpy(xr.open_dataset(work / "train.nc")["phi"].values)
    sample = torch.from_numpy(xr.open_dataset(work / "sample.nc")["phi"].values)
    ok = True
    print(f"free field kappa = {args.kappa}, L = {args.L}; work in {work}; wall time "
          + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()))
    print(f"{'sigma':>9} {'err(sigma s)':>13} {'zero mode':>10}")
    for sigma, rel, zero in score_errors(model, test, args.kappa):
        ok &= rel < 0.1 and zero < 0.1
        print(f"{sigma:9.4g} {rel:13.4f} {zero:10.4f}")
    pull = propagator_pulls(sample, train, args.kappa)
    ok &= bool(pull.abs().max() < 3)
    print(f"propagator pulls over {pull.numel()} momenta: max |pull| {float(pull.abs().max()):.2f}, "
          f"chi_2 pull {float(pull[0, 0]):+.2f}")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
