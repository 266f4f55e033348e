"""How a phi^4 model's generation at 2L scatters between independently seeded trainings.

At one kappa: ``--trainings`` HMC training ensembles at L, each with its own seed (the quick
config's HMC settings), a model trained on each with the command line's defaults (sized for
2L), and from each the raw samples (dm) and the network-free law (law_only) at 2L, compared
with one independent HMC reference at 2L (4x the configurations).  Prints |M|, chi_2, U_L
and S/V with pulls for every training, the law's zero-mode parameters and Binder test, and
the scatter of the pulls.  Files in ``--workdir`` are reused when present.

Usage: python benchmarks/diffusion_seeds.py [--kappa 0.21] [--L 16] [--trainings 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from diffusion_exact import HMC, OBSERVABLES, measured, once


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kappa", type=float, default=0.21)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--trainings", type=int, default=5)
    ap.add_argument("--n-configs", type=int, default=128, help="generated at 2L per training (the quick config's)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="physml-seeds-"))
    work.mkdir(parents=True, exist_ok=True)
    k, L2 = args.kappa, 2 * args.L
    hmc = ["lattice", "hmc", "phi4", "--kappa", str(k), *HMC]
    ref_path = work / f"ref_L{L2}.nc"
    once(ref_path, *hmc, "--L", str(L2), "--n-configs", "4096", "--seed", "1000", "--out", str(ref_path))
    ref = measured(ref_path)
    print(f"kappa = {k:g}: models trained at L = {args.L}, generated at {L2}; work in {work}")
    print(f"{'':18}" + "".join(f"{o:>22}" for o in OBSERVABLES))
    print(f"{'hmc':18}" + "".join(f"{float(ref[o]):>13.4f}({float(ref[o + '_err']):.4f})" for o in OBSERVABLES))
    pulls = {s: [] for s in ("dm", "law_only")}
    for seed in range(1, args.trainings + 1):
        train, model = work / f"train{seed}.nc", work / f"model{seed}.pt"
        once(train, *hmc, "--L", str(args.L), "--n-configs", "1024", "--seed", str(seed), "--source", "hmc_train",
             "--out", str(train))
        once(model, "diffusion", "train", str(train), "--out", str(model), "--history", str(work / f"h{seed}.nc"),
             "--generate-L", str(L2), "--seed", str(100 + seed))
        out = {"dm": work / f"dm{seed}.nc", "law_only": work / f"law{seed}.nc"}
        once(out["dm"], "diffusion", "sample", str(model), "--L", str(L2), "--n-configs", str(args.n_configs),
             "--n-snapshots", "0", "--seed", str(200 + seed), "--out", str(out["dm"]), "--law-out", str(out["law_only"]))
        law = torch.load(model, weights_only=True)["model"]["precond"].get("zero_mode", {})
        print(f"training {seed}: zero-mode law mu {law.get('mu', 0):.4f}, Binder {law.get('binder', np.nan):+.3f}"
              f"({law.get('binder_err', np.nan):.3f})")
        for source, ens in out.items():
            obs = measured(ens)
            p = [(float(obs[o]) - float(ref[o])) / np.hypot(float(obs[o + "_err"]), float(ref[o + "_err"]))
                 for o in OBSERVABLES]
            pulls[source].append(p)
            print(f"  {source:16}" + "".join(f"{float(obs[o]):>12.4f}({float(obs[o + '_err']):.4f}) {q:+5.1f}s"
                                              for o, q in zip(OBSERVABLES, p)))
    for source, p in pulls.items():
        p = np.asarray(p)
        print(f"{source}: pulls mean " + " ".join(f"{v:+.2f}" for v in p.mean(0)) + ", sd "
              + " ".join(f"{v:.2f}" for v in p.std(0, ddof=1)) + f"; chi_2 within 2 sigma in "
              f"{int((np.abs(p[:, 1]) < 2).sum())} of {len(p)}")


if __name__ == "__main__":
    main()
