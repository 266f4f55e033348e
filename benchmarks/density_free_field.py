"""A check of a trained phi^4 model's density that does not rest on HMC: its proposals
reweighted to the free field, whose log Z and chi_2 are exact.

Whatever the model learned, E_q[p / q] = Z for any target p that q covers, so the model's
proposals x with their log q (the Jacobian of the deterministic sampler, as in the
workflow's exact path) and log w = -S_free(x) - log q(x) must give the free field's

    log Z = (V / 2) ln(2 pi) + (1 / 2) sum_p ln C(p),   chi_2 = C(0),

C(p) = 1 / (2 (1 - 2 kappa sum_mu cos p_mu)), within their errors.  A log q that is wrong
in any direction the free field weighs (the zero mode included) fails it; so does a
sample too small to see the target's tails.  The interacting target (lambda of the model)
is printed beside it, for comparison with an HMC ensemble.

Usage: python benchmarks/density_free_field.py MODEL.pt [--L 8] [--n 1024] [--kappa 0.2 0.21]
       [--dtype float32] [--n-steps 16] [--seed 4]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from physml.diffusion.model import load_score_model
from physml.diffusion.samplers import make_sampler
from physml.lattice.phi4 import Phi4, free_propagator
from physml.mc.importance import ess_fraction, log_partition, normalised_weights
from physml.observables.phi4 import weighted_jackknife


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--n", type=int, default=1024, help="proposals")
    ap.add_argument("--kappa", type=float, nargs="+", default=[0.2, 0.21], help="free-field targets")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--n-steps", type=int, default=16, help="ode2m levels")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    model, record = load_score_model(args.model)
    model = model.to(getattr(torch, args.dtype)).eval()
    res = make_sampler("ode2m", n_steps=args.n_steps).sample(model, args.n, (args.L, args.L), seed=args.seed,
                                                              show_progress=False, density="jacobian")
    phi, log_q, volume = res.x.double(), res.log_q.numpy(), args.L ** 2
    m = phi.flatten(1).mean(1).numpy()
    print(f"{args.model}: {args.n} proposals at L = {args.L} (ode2m {args.n_steps} levels, {args.dtype}), "
          f"{res.wall_time / args.n:.2f} s each; raw chi_2 {volume * np.mean(m ** 2):.3f}")
    ens = record["ensemble"]
    targets = [(k, 0.0) for k in args.kappa] + [(float(ens["kappa"]), float(ens["lam"]))]
    for kappa, lam in targets:
        log_w = -Phi4(kappa, lam).action(phi).numpy() - log_q
        log_z, log_z_err = log_partition(log_w)
        chi2, chi2_err = weighted_jackknife({"m2": m ** 2}, normalised_weights(log_w),
                                            lambda mean: volume * mean["m2"])
        line = (f"kappa {kappa:g}, lambda {lam:g}: ESS/N {ess_fraction(log_w):.3f}, log Z {log_z:.3f}({log_z_err:.3f}), "
                f"chi_2 {chi2:.3f}({chi2_err:.3f})")
        if lam == 0:
            c = free_propagator(kappa, args.L)
            exact_z = volume / 2 * math.log(2 * math.pi) + 0.5 * float(c.log().sum())
            line += (f"; exact log Z {exact_z:.3f} ({(log_z - exact_z) / log_z_err:+.1f} sigma), chi_2 "
                     f"{float(c[0, 0]):.3f} ({(chi2 - float(c[0, 0])) / chi2_err:+.1f} sigma)")
        print(line)


if __name__ == "__main__":
    main()
