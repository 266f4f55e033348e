"""physml: the pipeline's steps as one command, one verb per step.

A study's verbs stand under its group (`physml lattice hmc phi4`, `physml rmt spectra`), the
tools alone (`physml figure`). Every verb writes one artifact (NetCDF with provenance, or a
figure); `physml GROUP --help` lists a group's verbs, `physml GROUP VERB --help` documents a
verb's options, with an example. The Snakemake rules in workflow/ call these verbs.
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import textwrap

from physml import __version__
from physml.cli import run_verb
from physml.cli.options import NumberList, finite_float

# Every verb, declared here only: verb -> (module of physml.cli whose function verb_WORD (the
# verb's last word) adds its options, what `physml --help` says of it).  The verbs of a study
# are nested under its group (GROUPS); the tools (figure, provenance, doctor) stand alone.
# `physml --help` imports no verb module, so it answers at once, and a job imports only its
# verb's module (torch, pyerrors and matplotlib cost seconds of start-up each).
GROUPS = {"lattice": "lattice field theory without a model: ensembles (HMC, exact, MALA-only, SMC, "
                     "reweighting), observables, comparison tables",
          "diffusion": "the score-based diffusion model: train it on an ensemble, generate with it",
          "rmt": "SGD and random matrix theory: training runs, spectra, tails, temperature",
          "phases": "phase diagram of learning: grid cells, grids, boundaries"}
# the page of docs/ on each group's study, named in the group's --help
GROUP_DOCS = {"lattice": "docs/diffusion_phi4.md, docs/u1_topology.md",
              "diffusion": "docs/diffusion_phi4.md, docs/u1_topology.md",
              "rmt": "docs/rmt.md", "phases": "docs/phases.md"}
VERBS = {"lattice hmc": ("lattice", "HMC ensemble of a lattice theory (phi4, u1)"),
         "lattice exact": ("lattice", "exact independent configurations of 2D U(1)"),
         "lattice measure": ("lattice", "observables with Gamma-method errors of an ensemble"),
         "lattice compare": ("lattice", "table of each source's observables against a reference source"),
         "lattice mala": ("corrections", "MALA-only control: MALA on the exact action from a trivial start"),
         "lattice reweight": ("corrections", "reweight a U(1) ensemble to another beta"),
         "lattice smc": ("smc", "sequential Monte Carlo in beta from a U(1) ensemble"),
         "diffusion train": ("diffusion", "train a score model on an ensemble"),
         "diffusion sample": ("diffusion", "generate an ensemble with a trained score model (and MALA after it)"),
         "rmt linear": ("rmt", "batched SGD of the linear teacher-student with label noise"),
         "rmt mlp": ("rmt", "teacher-student MLP 3-32-16-1 (phases study), middle matrix recorded"),
         "rmt rbm": ("rmt", "Gaussian RBM learning a free field on a periodic chain, weights recorded"),
         "rmt transformer": ("rmt", "character-level nano-GPT on the stdlib-docstring corpus; Q, K, V recorded"),
         "rmt spectra": ("rmt", "eigenvalues, Marchenko-Pastur and level-spacing tests against the iid null"),
         "rmt tails": ("rmt", "tail exponents of the transformer's per-head spectra: CSN fit "
                              "(powerlaw), weightwatcher and Hill side by side"),
         "rmt temperature": ("rmt", "effective temperature of an (lr, B) grid (linear, rbm or online mlp runs)"),
         "rmt dbm": ("rmt", "Dyson Brownian motion: matrix process and eigenvalue SDE"),
         "rmt report": ("rmt", "the measured numbers of docs/rmt.md, rendered from a run's results"),
         "rmt corpus": ("rmt", "write the transformer's corpus (stdlib docstrings) as text"),
         "phases cell": ("phases", "train and measure all runs of one (lr, sigma_W) grid cell as one batch"),
         "phases gather": ("phases", "stack cell artifacts into the (T, sigma_w, run) grid"),
         "phases boundaries": ("phases", "boundaries against training length along a sigma_W cut and a "
                                         "T cut, under each classification rule, beside the predicted lines"),
         "figure": ("figures", "render a named figure (PDF, PNG and a provenance sidecar)"),
         "provenance": ("provenance", "lineage of an artifact back to its ensembles; re-hashes every input"),
         "doctor": ("doctor", "what this machine offers: kernels and engines, torch and CUDA, SLURM")}
# the study verbs' earlier top-level spellings (`physml hmc phi4`), still run, not shown
MOVED = {"hmc": "lattice", "exact": "lattice", "measure": "lattice", "compare": "lattice",
         "mala": "lattice", "reweight": "lattice", "smc": "lattice",
         "train": "diffusion", "sample": "diffusion"}
# an example per verb, shown under its --help (a group's help shows those of its verbs)
EXAMPLES = {
    "lattice hmc phi4": "physml lattice hmc phi4 --L 16 --kappa 0.21 --lam 0.022 --n-configs 512 --seed 1 --out ens.nc",
    "lattice hmc u1": "physml lattice hmc u1 --L 16 --beta 3 --n-configs 1024 --n-chains 32 --seed 1 --out ens.nc",
    "lattice exact u1": "physml lattice exact u1 --L 16 --beta 3 --n-configs 2048 --seed 1 --out exact.nc",
    "lattice measure": "physml lattice measure ens.nc --out obs.nc",
    "figure": "physml figure phi4_hmc obs_a.nc obs_b.nc --out results/figures/fig_phi4_hmc",
    "provenance": "physml provenance results/figures/fig_phi4_hmc.json",
    "phases cell": "physml phases cell --lr 0.5 --sigma-w 1 --seed 1 --out cell.nc",
    "phases gather": "physml phases gather cells/*/cell.nc --model tanh --out phase_grid.nc",
    "phases boundaries": "physml phases boundaries --sigma-w-cut cut_sw/*.nc --T-cut cut_T/*.nc --out boundaries.nc",
    "rmt linear": "physml rmt linear --lr 0.1 --batch-size 16 --seed 1 --out weights.nc",
    "rmt mlp": "physml rmt mlp --lr 0.2 --seed 1 --out weights.nc",
    "rmt rbm": "physml rmt rbm --lr 0.02 --batch-size 32 --seed 1 --out weights.nc",
    "rmt transformer": "physml rmt transformer --n-steps 2500 --seed 1 --out weights.nc",
    "rmt spectra": "physml rmt spectra weights.nc --seed 1 --out spectra.nc",
    "rmt tails": "physml rmt tails spectra.nc --seed 1 --out tails.nc --table table.nc",
    "rmt temperature": "physml rmt temperature lr*_B*/weights.nc --out temperature.nc",
    "rmt dbm": "physml rmt dbm --seed 1 --out dbm.nc",
    "rmt report": "physml rmt report --results results --out numbers.md --compare docs/rmt.md",
    "rmt corpus": "physml rmt corpus --out corpus.txt",
    "diffusion train": "physml diffusion train ens.nc --out model.pt --history training.nc --seed 1",
    "diffusion sample": "physml diffusion sample model.pt --L 32 --n-configs 1024 --seed 2 --out dm.nc --mala-steps 200 --mala-out dm_mala.nc",
    "lattice compare": "physml lattice compare obs_*.nc --reference hmc --out results/tables/phi4_hmc_vs_dm.nc",
    "lattice mala phi4": "physml lattice mala phi4 --L 16 --kappa 0.5 --n-configs 256 --mala-steps 200 --seed 3 --out mala_only.nc",
    "lattice mala u1": "physml lattice mala u1 --L 16 --beta 3 --n-configs 256 --mala-steps 200 --start hot --seed 3 --out mala_only.nc",
    "lattice reweight": "physml lattice reweight dm_mala.nc --beta 1.5 --out reweighted.nc",
    "lattice smc": "physml lattice smc ens.nc --beta 3 --seed 4 --out smc.nc",
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
    """The formatter, a description and the examples of ``parser`` and of all its verbs; every
    float option takes finite numbers only (:func:`physml.cli.options.finite_float`)."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if action.type is float:
            action.type = finite_float
        if isinstance(action, NumberList) and action.convert is float:
            action.convert = finite_float
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
    """The parser with the options of ``verb`` ('lattice hmc', 'figure'), of every verb of a
    group ('lattice') or of every verb (``every``); the other verbs are listed (``physml
    --help``, ``physml rmt --help``) without importing their modules."""
    parser = _Parser(prog="physml", description=__doc__, epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"physml {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    top = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    groups = {}
    for name, (module, summary) in VERBS.items():
        group, _, word = name.rpartition(" ")
        if group and group not in groups:   # a group's verbs fill the namespace's 'verb' in turn
            text = GROUPS[group]
            description = textwrap.fill(f"{text[0].upper()}{text[1:]}.", 90) + (
                f"\n\nMethods and results: {GROUP_DOCS[group]}.")
            groups[group] = top.add_parser(group, help=text, description=description).add_subparsers(
                dest="verb", required=True, metavar="VERB")
        sub = groups[group] if group else top
        if every or verb is not None and (name == verb or name.startswith(f"{verb} ")):
            add_options = getattr(importlib.import_module(f"physml.cli.{module}"), f"verb_{word}")
            add_options(sub.add_parser(word, help=summary))
        else:
            sub.add_parser(word, help=summary, add_help=False)
    _finish(parser, "", None)
    return parser


def _exit_on_sigterm(signum, frame):
    """SIGTERM (e.g. a SLURM time limit) unwinds like an exception, so atomic writes clean up."""
    raise SystemExit(128 + signum)


def _verb_of(parser: argparse.ArgumentParser, argv: list[str]):
    """The verb that ``argv`` runs, nested ones included ('lattice hmc phi4'), and its parser."""
    words = []
    for word in argv:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if groups and word in groups[0].choices:
            words.append(word)
            parser = groups[0].choices[word]
        elif not word.startswith("-"):
            break
    return " ".join(words), parser


def _with_group(argv: list[str]) -> list[str]:
    """``argv`` with a moved verb's group put before it (``hmc phi4`` -> ``lattice hmc phi4``)."""
    i = next((i for i, word in enumerate(argv) if not word.startswith("-")), None)
    return argv if i is None or argv[i] not in MOVED else [*argv[:i], MOVED[argv[i]], *argv[i:]]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    argv = _with_group([word for word in argv if word != "--debug"])
    words = [word for word in argv if not word.startswith("-")][:2]
    verb = next((v for v in (" ".join(words), *words[:1]) if v in VERBS), None)
    parser = build_parser(verb)
    args, unknown = parser.parse_known_args(argv)
    verb, verb_parser = _verb_of(parser, argv)
    if unknown:   # named by the verb, not by the top level as argparse would
        verb_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return run_verb(args, verb, debug=debug, parser=verb_parser)


if __name__ == "__main__":
    sys.exit(main())
