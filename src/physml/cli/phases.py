"""CLI verbs of the phase-diagram study: ``physml phases cell``, ``gather`` and ``boundaries``.

The study is pure numpy and this module never imports torch, which saves seconds of start-up
in each of the many small cell jobs (``physml`` imports only the module of the verb it runs).
"""

from __future__ import annotations

import argparse

from physml.cli.common import add_runtime_options, save
from physml.cli.options import NumberList, old_spelling, step_count
from physml.io.artifacts import read_input
from physml.native import ENGINES
from physml.phases.cells import CellSpec, gather, run_cell
from physml.phases.classify import ORDER_THRESHOLDS, RULES, analyse_grid
from physml.phases.cuts import boundary_study
from physml.phases.teacher_student import ACTIVATIONS, Architecture
from physml.progress import progress

def cmd_cell(args: argparse.Namespace) -> None:
    spec = CellSpec(lr=args.lr, sigma_w=args.sigma_w, n_runs=args.n_runs, n_steps=args.n_steps,
                    batch_size=args.batch_size, n_batches=args.n_batches, n_test=args.n_test,
                    n_eval=args.n_eval, snapshot_steps=tuple(args.snapshot_steps), seed=args.seed,
                    arch=Architecture(3, args.n1, args.n2, args.activation),
                    divergence_threshold=args.divergence_threshold, check_every=args.check_every,
                    engine=args.engine)
    bar = progress(total=spec.n_steps, desc=f"cell lr={spec.lr:g} sigma_w={spec.sigma_w:g}",
                   enabled=args.progress)
    done = [0]

    def advance(step):
        bar.update(step - done[0])
        done[0] = step

    ds = run_cell(spec, progress=advance)
    bar.close()
    n_div = int(ds["diverged"].sum())
    final = ds.isel(time=-1)
    print(f"T={spec.temperature:g} sigma_w={spec.sigma_w:g}: median test loss "
          f"{float(final['test_loss'].median()):.4g}, median q {float(final['overlap_q'].median()):.3f}, "
          f"{n_div}/{spec.n_runs} divergent")
    save(ds, args, "phases cell")


CELL = "a phase cell of `physml phases cell`"


def cmd_gather(args: argparse.Namespace) -> None:
    grid = analyse_grid(gather([read_input(p, CELL, kinds=("phase cell",)) for p in args.inputs]),
                        **_thresholds(args), rule=args.classification,
                        boundary_fraction=args.boundary_fraction)
    grid.attrs["model"] = args.model
    print(f"grid: {dict(grid.sizes)}")
    save(grid, args, "phases gather", inputs=args.inputs, seed=int(grid.attrs.get("seed", -1)))


def cmd_boundaries(args: argparse.Namespace) -> None:
    cuts = [gather([read_input(p, CELL, kinds=("phase cell",)) for p in paths])
            for paths in (args.sigma_w_cut, args.T_cut + args.T_cut_floor)]
    study = boundary_study(*cuts, **_thresholds(args), boundary_fraction=args.boundary_fraction,
                           floor_factors=args.floor_factors, sv_growths=args.sv_growths)
    study.attrs["model"] = args.model
    for name in ("glass", "ferro_sigma_w", "ferro"):
        for rule in study["rule"].values:
            b = study.sel(rule=rule).isel(time=-1)
            print(f"{name} boundary, rule {rule}, {int(b['time'])} steps: {float(b[name]):.4g} "
                  f"[{float(b[name + '_lower']):.4g}, {float(b[name + '_upper']):.4g}]")
    save(study, args, "phases boundaries", inputs=[*args.sigma_w_cut, *args.T_cut, *args.T_cut_floor],
         seed=int(study.attrs.get("seed", -1)))


def _thresholds(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in ("ferro_max_test_loss", "glass_min_overlap", "glass_min_saturation",
                                          *ORDER_THRESHOLDS)}


def _classify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="tanh", help="model name recorded in the output")
    p.add_argument("--ferro-max-test-loss", type=float, default=0.1,
                   help="ferromagnetic (learns) below this test loss / loss of the zero output")
    p.add_argument("--glass-min-overlap", type=float, default=0.5,
                   help="a non-learning run is spin-glass when its feature overlap q is above this")
    p.add_argument("--glass-min-saturation", type=float, default=0.5,
                   help="... and its feature saturation <s^2> is above this (else unconverged)")
    p.add_argument("--ferro-max-floor-ratio", type=float, default=ORDER_THRESHOLDS["ferro_max_floor_ratio"],
                   help="rule order: ferromagnetic when the test loss is within this factor of the same run's "
                        "at the smallest sigma_W (same T and time)")
    p.add_argument("--glass-max-sv-drift", type=float, default=ORDER_THRESHOLDS["glass_max_sv_drift"],
                   help="rule order: frozen spectrum when the top singular value of W moved by at most this "
                        "fraction")
    p.add_argument("--para-min-sv-growth", type=float, default=ORDER_THRESHOLDS["para_min_sv_growth"],
                   help="rule order: paramagnetic when the top singular value grew this factor past the "
                        "larger of its initial and the teacher's")
    p.add_argument("--boundary-fraction", type=float, default=0.68,
                   help="fraction of runs satisfying the drift-versus-noise criterion on the ferro/para line")


THREADS = "BLAS threads: the rule sets OPENBLAS_NUM_THREADS to this (keep 1)"


def verb_cell(c: argparse.ArgumentParser) -> None:
    c.add_argument("--lr", type=float, required=True, help="SGD learning rate (T = lr / batch size)")
    c.add_argument("--sigma-w", type=float, required=True, help="initial weight scale sigma_W")
    c.add_argument("--n-runs", type=int, default=20, help="runs (teacher + student) in the cell")
    c.add_argument("--n-steps", type=int, default=30000, help="SGD steps per run")
    c.add_argument("--batch-size", type=int, default=4, help="mini-batch size B")
    c.add_argument("--n-batches", type=int, default=1000, help="mini-batches per epoch (training set = B x this)")
    c.add_argument("--n-test", type=int, default=1000, help="held-out test points per run")
    c.add_argument("--n-eval", type=int, default=500, help="training points for the drift-noise ratio")
    c.add_argument("--snapshot-steps", action=NumberList, type=step_count, default=(0, 10, 30, 100, 300, 1000, 3000, 10000, 30000),
                   help="steps at which observables are measured (space- or comma-separated)")
    old_spelling(c, "--snapshots", "--snapshot-steps")
    c.add_argument("--activation", choices=ACTIVATIONS, default="tanh", help="hidden-layer activation")
    c.add_argument("--n1", type=int, default=32, help="first hidden width")
    c.add_argument("--n2", type=int, default=16, help="second hidden width (rows of the trained W)")
    c.add_argument("--divergence-threshold", type=float, default=100.0,
                   help="a run whose mini-batch loss exceeds this stops as divergent")
    c.add_argument("--check-every", type=int, default=100, help="steps between divergence checks")
    c.add_argument("--engine", choices=ENGINES, default="auto",
                   help="SGD code: native = C kernel, reference = numpy twin, auto = the kernel "
                        "where a C compiler works (the artifact's sgd_engine attribute says which ran)")
    c.add_argument("--seed", type=int, required=True, help="seed; run r uses generators [seed, r, k]")
    c.add_argument("--out", required=True, help="output cell .nc")
    add_runtime_options(c, threads=THREADS)
    c.set_defaults(func=cmd_cell)


def verb_gather(g: argparse.ArgumentParser) -> None:
    g.add_argument("inputs", nargs="+", help="cell .nc files (a full rectangular grid)")
    _classify_options(g)
    g.add_argument("--classification", choices=RULES, default="order",
                   help="rule that classifies the runs: order = the order parameters (spectrum, overlap, loss "
                        "over the small-sigma_W floor), physml / authors = the loss threshold with our / the "
                        "authors' overlap (docs/phases.md)")
    g.add_argument("--out", required=True, help="output grid .nc")
    add_runtime_options(g, threads=THREADS)
    g.set_defaults(func=cmd_gather)


def verb_boundaries(b: argparse.ArgumentParser) -> None:
    b.add_argument("--sigma-w-cut", nargs="+", required=True,
                   help="cell .nc files at one lr along sigma_W (the spin-glass boundary)")
    b.add_argument("--T-cut", nargs="+", required=True,
                   help="cell .nc files at one sigma_W along lr (the ferro/para boundary)")
    b.add_argument("--T-cut-floor", nargs="+", default=[],
                   help="cell .nc files at a smaller sigma_W at each lr of the T cut (rule order's floor; "
                        "required)")
    b.add_argument("--floor-factors", action=NumberList, default=(),
                   help="values of --ferro-max-floor-ratio at which the boundaries are also located")
    b.add_argument("--sv-growths", action=NumberList, default=(),
                   help="values of --para-min-sv-growth at which the boundaries are also located")
    _classify_options(b)
    b.add_argument("--out", required=True, help="output .nc")
    add_runtime_options(b, threads=THREADS)
    b.set_defaults(func=cmd_boundaries)
