"""CLI verb ``figure``: render a named figure from its input artifacts."""

from __future__ import annotations

import argparse

from physml.cli.common import Output, add_runtime_options, setup_runtime
from physml.figures.diffusion import (plot_phi4_denoising, plot_phi4_exact_dm, plot_phi4_hmc_vs_dm,
                                     plot_phi4_mala_steps)
from physml.figures.phases import (plot_phase_boundaries, plot_phase_diagram, plot_phase_observables,
                                   plot_phase_trajectories)
from physml.figures.phi4 import plot_phi4_hmc
from physml.figures.render import save_figure
from physml.figures.rmt import plot_rmt_mp, plot_rmt_spacing, plot_rmt_temperature, plot_rmt_transformer
from physml.figures.u1 import plot_u1_hmc
from physml.figures.u1_diffusion import plot_u1_coupling, plot_u1_volume
from physml.io.artifacts import read_input

FIGURES = {"phi4_hmc": plot_phi4_hmc,
           "phase_diagram": plot_phase_diagram, "phase_observables": plot_phase_observables,
           "phase_trajectories": plot_phase_trajectories, "phase_boundaries": plot_phase_boundaries,
           "phi4_denoising": plot_phi4_denoising, "phi4_hmc_vs_dm": plot_phi4_hmc_vs_dm,
           "phi4_mala_steps": plot_phi4_mala_steps, "phi4_exact_dm": plot_phi4_exact_dm,
           "rmt_spacing": plot_rmt_spacing, "rmt_mp": plot_rmt_mp,
           "rmt_temperature": plot_rmt_temperature, "rmt_transformer": plot_rmt_transformer,
           "u1_hmc": plot_u1_hmc, "u1_volume": plot_u1_volume, "u1_coupling": plot_u1_coupling}
# the kinds (physml.io.artifacts.kind_of) and theories of each figure's inputs
INPUTS = {"phi4_hmc": (("observables",), ("phi4",)), "phi4_denoising": (("ensemble",), ("phi4",)),
          "phi4_hmc_vs_dm": (("observables", "table"), ("phi4",)),
          "phi4_mala_steps": (("observables", "ensemble"), ("phi4",)),
          "phi4_exact_dm": (("ensemble",), ("phi4",)),
          "u1_hmc": (("observables",), ("u1",)), "u1_volume": (("observables", "table"), ("u1",)),
          "u1_coupling": (("observables", "table"), ("u1",)),
          "rmt_spacing": (("rmt_dbm", "rmt_temperature"), None),
          "rmt_mp": (("rmt_mlp", "rmt_transformer"), None),
          "rmt_temperature": (("rmt_dbm", "rmt_temperature"), None),
          "rmt_transformer": (("rmt_transformer", "rmt_tails"), None),
          **{f"phase_{name}": (("phase grid",), None) for name in ("diagram", "observables", "trajectories")},
          "phase_boundaries": (("phase boundaries", "phase grid"), None)}


def cmd_figure(args: argparse.Namespace) -> None:
    setup_runtime(args)
    kinds, theories = INPUTS[args.name]
    what = f"{' or '.join(kinds)}{' of theory ' + theories[0] if theories else ''} (figure {args.name})"
    datasets = [read_input(p, what, kinds=kinds, theories=theories) for p in args.inputs]
    fig = FIGURES[args.name](datasets)
    for path in save_figure(fig, args.out, name=f"fig_{args.name}", rule=args.rule or f"fig_{args.name}",
                            inputs=args.inputs):
        print(f"wrote {path}")


def verb_figure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=sorted(FIGURES), type=lambda s: s.removeprefix("fig_"),
                   help="figure name, as the target rule (fig_phi4_hmc) or without its fig_")
    p.add_argument("inputs", nargs="+", help="input artifacts (.nc)")
    p.add_argument("--out", required=True, type=Output("", beside=(".pdf", ".png", ".json")),
                   help="output path without extension (.pdf, .png and .json are written)")
    add_runtime_options(p)
    p.set_defaults(func=cmd_figure)
