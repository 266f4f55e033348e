"""physml: the pipeline's steps as one command, one verb per step.

Every verb writes one artifact (NetCDF with provenance, or a figure); `physml VERB --help`
documents its options, with an example. The Snakemake rules in workflow/ call these verbs.
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys

from physml import __version__
from physml.cli import run_verb

# Every verb, declared here only: verb -> (module of physml.cli whose function verb_VERB(parser)
# adds its options, what `physml --help` says of it).  `physml --help` imports no verb module,
# so it answers at once, and a job imports only its verb's module (torch, pyerrors and
# matplotlib cost seconds of start-up each).
VERBS = {"hmc": ("lattice", "HMC ensemble of a lattice theory (phi4, u1)"),
         "exact": ("lattice", "exact independent configurations of 2D U(1)"),
         "measure": ("lattice", "observables with Gamma-method errors of an ensemble"),
         "figure": ("figures", "render a named figure (PDF, PNG and a provenance sidecar)"),
         "provenance": ("provenance", "lineage of an artifact back to its ensembles; re-hashes every input"),
         "phases": ("phases", "phase diagram of learning: grid cells, grids, boundaries"),
         "rmt": ("rmt", "SGD and random matrix theory: training runs, spectra, tails, temperature"),
         "train": ("diffusion", "train a score model on an ensemble"),
         "sample": ("diffusion", "generate an ensemble from a trained score model (and MALA after it)"),
         "compare": ("diffusion", "table of generated against reference observables"),
         "mala": ("corrections", "MALA-only control: MALA on the exact action from a trivial start"),
         "reweight": ("corrections", "reweight a U(1) ensemble to another beta"),
         "smc": ("smc", "sequential Monte Carlo in beta from a U(1) ensemble"),
         "doctor": ("doctor", "what this machine offers: kernels and engines, torch and CUDA, SLURM")}
# an example per verb, shown under its --help (a group's help shows those of its verbs)
EXAMPLES = {
    "hmc phi4": "physml hmc phi4 --L 16 --kappa 0.21 --lam 0.022 --n-configs 512 --seed 1 --out ens.nc",
    "hmc u1": "physml hmc u1 --L 16 --beta 3 --n-configs 1024 --n-chains 32 --seed 1 --out ens.nc",
    "exact u1": "physml exact u1 --L 16 --beta 3 --n-configs 2048 --seed 1 --out exact.nc",
    "measure": "physml measure ens.nc --out obs.nc",
    "figure": "physml figure phi4_hmc obs_a.nc obs_b.nc --out results/figures/fig_phi4_hmc",
    "provenance": "physml provenance results/figures/fig_phi4_hmc.json",
    "phases cell": "physml phases cell --lr 0.5 --sigma-w 1 --seed 1 --out cell.nc",
    "phases gather": "physml phases gather cells/*/cell.nc --model tanh --out phase_grid.nc",
    "phases boundaries": "physml phases boundaries --sigma-w-cut cut_sw/*.nc --T-cut cut_T/*.nc --out boundaries.nc",
    "rmt linear": "physml rmt linear --lr 0.1 --batch-size 16 --seed 1 --out weights.nc",
    "rmt mlp": "physml rmt mlp --lr 0.2 --seed 1 --out weights.nc",
    "rmt transformer": "physml rmt transformer --n-steps 2500 --seed 1 --out weights.nc",
    "rmt spectra": "physml rmt spectra weights.nc --seed 1 --out spectra.nc",
    "rmt tails": "physml rmt tails spectra.nc --seed 1 --out tails.nc --table table.nc",
    "rmt temperature": "physml rmt temperature lr*_B*/weights.nc --out temperature.nc",
    "rmt dbm": "physml rmt dbm --seed 1 --out dbm.nc",
    "rmt corpus": "physml rmt corpus --out corpus.txt",
    "train": "physml train ens.nc --out model.pt --history training.nc --seed 1",
    "sample": "physml sample model.pt --L 32 --n-configs 1024 --seed 2 --out dm.nc --mala-steps 200 --mala-out dm_mala.nc",
    "compare": "physml compare obs_*.nc --reference hmc --out results/tables/phi4_hmc_vs_dm.nc",
    "mala phi4": "physml mala phi4 --L 16 --kappa 0.5 --n-configs 256 --mala-steps 200 --seed 3 --out mala_only.nc",
    "mala u1": "physml mala u1 --L 16 --beta 3 --n-configs 256 --mala-steps 200 --start hot --seed 3 --out mala_only.nc",
    "reweight": "physml reweight dm_mala.nc --beta 1.5 --out reweighted.nc",
    "smc": "physml smc ens.nc --beta 3 --seed 4 --out smc.nc",
    "doctor": "physml doctor",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The help formatter of every verb: an option's default is shown only where there is one
    to show (not for a switch, a required option, an unset value, or a help text that already
    states it); a list default is written as it is typed (space- or comma-separated)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.nargs == 0 or action.required or action.default in (None, argparse.SUPPRESS)
                or "default" in text):
            return text
        default = action.default
        if isinstance(default, (list, tuple)):
            default = (" " if action.nargs in ("+", "*") else ",").join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _finish(parser: argparse.ArgumentParser, name: str, summary: str | None) -> None:
    """The formatter, a description and the examples of ``parser`` and of all its verbs."""
    parser.formatter_class = HelpFormatter
    if parser.description is None and summary:
        parser.description = summary[0].upper() + summary[1:] + "."
    examples = [e for verb, e in EXAMPLES.items() if verb == name or verb.startswith(f"{name} ")]
    if examples and name:
        parser.epilog = "example" + "s" * (len(examples) > 1) + ":\n" + "\n".join(f"  {e}" for e in examples)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for verb, sub in action.choices.items():
                _finish(sub, f"{name} {verb}".strip(), helps.get(verb))


EXIT_CODES = """exit status: 0 done; 2 an error, reported on one line `physml VERB: error: ...`
(--debug, anywhere on the line, shows the traceback instead); 1 `physml provenance` found an
input changed or missing; 128 + N killed by signal N (143: SIGTERM, e.g. a SLURM time limit)."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line `physml VERB: error: ...`, exit status 2 (its verbs inherit it)."""

    def error(self, message):
        message = re.sub(r"invalid _\w+ value", "invalid value", message)  # no private type names
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(verb: str | None = None, every: bool = False) -> argparse.ArgumentParser:
    """The parser of ``verb`` alone when it is known, of every verb when ``every``; otherwise
    one that lists the verbs (``physml --help``) without importing any of them."""
    parser = _Parser(prog="physml", description=__doc__, epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"physml {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (module, summary) in VERBS.items():
        if every or name == verb:
            add_options = getattr(importlib.import_module(f"physml.cli.{module}"), f"verb_{name}")
            add_options(sub.add_parser(name, help=summary))
        elif verb not in VERBS:
            sub.add_parser(name, help=summary, add_help=False)
    _finish(parser, "", None)
    return parser


def _exit_on_sigterm(signum, frame):
    """SIGTERM (e.g. a SLURM time limit) unwinds like an exception, so atomic writes clean up."""
    raise SystemExit(128 + signum)


def _verb_of(parser: argparse.ArgumentParser, argv: list[str]):
    """The verb that ``argv`` runs, nested ones included ('hmc phi4'), and its parser."""
    words = []
    for word in argv:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if groups and word in groups[0].choices:
            words.append(word)
            parser = groups[0].choices[word]
        elif not word.startswith("-"):
            break
    return " ".join(words), parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    argv = [word for word in argv if word != "--debug"]
    parser = build_parser(next((word for word in argv if not word.startswith("-")), None))
    args, unknown = parser.parse_known_args(argv)
    verb, verb_parser = _verb_of(parser, argv)
    if unknown:   # named by the verb, not by the top level as argparse would
        verb_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return run_verb(args, verb, debug=debug)


if __name__ == "__main__":
    sys.exit(main())
