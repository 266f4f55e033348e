"""CLI verb ``figure``: render a named figure from its input artifacts."""

from __future__ import annotations

import argparse
import importlib
import sys

from physml.cli.common import Output, add_runtime_options, setup_runtime
from physml.figures.render import save_figure
from physml.io.artifacts import read_input

# name -> "module:function": a figure job imports only its own module (some import torch)
FIGURES = {"phi4_hmc": "physml.figures.phi4:plot_phi4_hmc",
           **{f"phase_{n}": f"physml.figures.phases:plot_phase_{n}"
              for n in ("diagram", "observables", "trajectories", "boundaries")},
           **{f"phi4_{n}": f"physml.figures.diffusion:plot_phi4_{n}"
              for n in ("denoising", "hmc_vs_dm", "mala_steps", "exact_dm")},
           **{f"rmt_{n}": f"physml.figures.rmt:plot_rmt_{n}" for n in ("spacing", "mp", "temperature", "transformer")},
           "u1_hmc": "physml.figures.u1:plot_u1_hmc",
           **{f"u1_{n}": f"physml.figures.u1_diffusion:plot_u1_{n}" for n in ("volume", "coupling", "exact_dm")}}
# the kinds (physml.io.artifacts.kind_of) and theories of each figure's inputs
INPUTS = {"phi4_hmc": (("observables",), ("phi4",)), "phi4_denoising": (("ensemble",), ("phi4",)),
          "phi4_hmc_vs_dm": (("observables", "table"), ("phi4",)),
          "phi4_mala_steps": (("observables", "ensemble"), ("phi4",)),
          "phi4_exact_dm": (("ensemble",), ("phi4",)),
          "u1_hmc": (("observables",), ("u1",)), "u1_volume": (("observables", "table"), ("u1",)),
          "u1_coupling": (("observables", "table"), ("u1",)), "u1_exact_dm": (("ensemble",), ("u1",)),
          "rmt_spacing": (("rmt_dbm", "rmt_temperature"), None),
          "rmt_mp": (("rmt_mlp", "rmt_transformer"), None),
          "rmt_temperature": (("rmt_dbm", "rmt_temperature"), None),
          "rmt_transformer": (("rmt_transformer", "rmt_tails"), None),
          **{f"phase_{name}": (("phase grid",), None) for name in ("diagram", "observables", "trajectories")},
          "phase_boundaries": (("phase boundaries", "phase grid"), None)}


def figure_function(name: str):
    """The plotting function of figure ``name`` (imported on demand)."""
    module, function = FIGURES[name].split(":")
    return getattr(importlib.import_module(module), function)


def cmd_figure(args: argparse.Namespace) -> None:
    plot = figure_function(args.name)
    if "torch" in sys.modules:   # only then do threads matter
        setup_runtime(args)
    kinds, theories = INPUTS[args.name]
    what = f"{' or '.join(kinds)}{' of theory ' + theories[0] if theories else ''} (figure {args.name})"
    datasets = [read_input(p, what, kinds=kinds, theories=theories) for p in args.inputs]
    fig = plot(datasets)
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
