"""The free field as ground truth of a user's own run: HMC at lambda = 0, then `physml diffusion train`
and `physml diffusion sample` with the CLI's defaults (only the seeds, files and the largest
lattice to generate given), then the trained model against the exact score and its samples,
at the trained L and at 2L, against the exact propagator.

The default point is near criticality: kappa = 0.245 on L = 16 has the correlation length
1 / m = sqrt(kappa / (1 - 4 kappa)) = 3.5, about L / 4, and C(p) from 25 (p = 0) down to 0.5,
so the long modes decide the check.

Checks (the tolerances of tests/test_diffusion_training.py, whose model is smaller):
the error of sigma s against the exact score below 0.1 in noise units at nine noise
levels from sigma_min to sigma_max, over all components and along the zero mode (the
restoring force on phibar); the samples' <|phi~(p)|^2>/V against the exact free propagator
at L and at 2L: every momentum within 3 sigma family-wise (all V / 2 + 2 independent momenta
below the |pull| that a correct sampler exceeds with probability 0.0027: 4.3 at L = 16, 4.6
at L = 32, :func:`physml.diffusion.free_field.family_threshold`), and the longest modes
(p = 0, the lowest non-zero momenta and their diagonals) each within 3 sigma.  Prints PASS or
FAIL and the numbers; exit status 1 on FAIL.  ``--train-option`` passes more options to the training
(e.g. ``--train-option=--no-spectral`` to measure a lever side by side).

Usage: python benchmarks/free_field_cli.py [--kappa 0.245] [--L 16] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
import xarray as xr
from cli_run import physml

from physml.diffusion.free_field import family_threshold, lowest_momenta, propagator_pulls, score_errors
from physml.diffusion.model import load_score_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kappa", type=float, default=0.245, help="hopping parameter (< 1/4)")
    ap.add_argument("--L", type=int, default=16, help="lattice extent of training (samples also at 2L)")
    ap.add_argument("--n-train", type=int, default=2048, help="training configurations")
    ap.add_argument("--n-samples", type=int, default=1024, help="generated configurations at L (half at 2L)")
    ap.add_argument("--train-option", action="append", default=[],
                    help="one more option of physml diffusion train (repeatable)")
    ap.add_argument("--workdir", default=None, help="folder for the ensembles and the model (default: temporary)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="physml-free-"))
    work.mkdir(parents=True, exist_ok=True)
    hmc = ["lattice", "hmc", "phi4", "--kappa", str(args.kappa), "--lam", "0", "--L", str(args.L), "--start", "hot"]
    walls = {"hmc": physml(*hmc, "--n-configs", str(args.n_train), "--seed", "1", "--out", str(work / "train.nc"))
             + physml(*hmc, "--n-configs", "256", "--seed", "2", "--out", str(work / "test.nc"))}
    walls["train"] = physml("diffusion", "train", str(work / "train.nc"), "--out", str(work / "model.pt"),
                            "--history", str(work / "history.nc"), "--generate-L", str(2 * args.L), "--seed", "3",
                            *args.train_option)
    walls["sample"] = 0.0
    for L, n in ((args.L, args.n_samples), (2 * args.L, args.n_samples // 2)):
        walls["sample"] += physml("diffusion", "sample", str(work / "model.pt"), "--L", str(L), "--n-configs",
                                  str(n), "--seed", "4", "--out", str(work / f"sample_L{L}.nc"))
    model, _ = load_score_model(work / "model.pt")
    test = torch.from_numpy(xr.open_dataset(work / "test.nc")["phi"].values)
    ok = True
    print(f"free field kappa = {args.kappa}, L = {args.L} (correlation length "
          f"{(args.kappa / (1 - 4 * args.kappa)) ** 0.5:.2f}); training options {args.train_option or 'none'}; "
          f"work in {work}; wall time " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()))
    print(f"{'sigma':>9} {'err(sigma s)':>13} {'zero mode':>10}")
    for sigma, rel, zero in score_errors(model, test, args.kappa):
        ok &= rel < 0.1 and zero < 0.1
        print(f"{sigma:9.4g} {rel:13.4f} {zero:10.4f}")
    for L in (args.L, 2 * args.L):
        sample = torch.from_numpy(xr.open_dataset(work / f"sample_L{L}.nc")["phi"].values)
        pull = propagator_pulls(sample, kappa=args.kappa)
        low = lowest_momenta(pull)
        ok &= bool(pull.abs().max() < family_threshold(L)) and bool(low.abs().max() < 3)
        print(f"L = {L}: propagator pulls over {pull.numel()} momenta: max |pull| {float(pull.abs().max()):.2f} "
              f"(family-wise 3 sigma: {family_threshold(L):.2f}); longest modes: chi_2 {float(pull[0, 0]):+.2f}, "
              f"lowest momentum {float(pull[0, 1]):+.2f}, max |pull| {float(low.abs().max()):.2f}")
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
