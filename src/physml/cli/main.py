"""Entry point of the ``physml`` command; each study registers its verbs here."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from physml import __version__
from physml.cli import run_verb

# verb -> module of physml.cli that registers it; a job imports only its verb's module
# (torch, pyerrors and matplotlib cost seconds of start-up each)
VERBS = {"hmc": "lattice", "exact": "lattice", "measure": "lattice", "figure": "figures",
         "provenance": "provenance", "phases": "phases", "rmt": "rmt",
         "train": "diffusion", "sample": "diffusion", "compare": "diffusion",
         "mala": "corrections", "reweight": "corrections", "smc": "smc", "doctor": "doctor"}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``verb`` alone when it is known, else of every verb (for --help)."""
    parser = argparse.ArgumentParser(prog="physml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"physml {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    modules = [VERBS[verb]] if verb in VERBS else list(dict.fromkeys(VERBS.values()))
    for name in modules:
        importlib.import_module(f"physml.cli.{name}").register(sub)
    return parser


def _exit_on_sigterm(signum, frame):
    """SIGTERM (e.g. a SLURM time limit) unwinds like an exception, so atomic writes clean up."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return run_verb(args, args.verb)


if __name__ == "__main__":
    sys.exit(main())
