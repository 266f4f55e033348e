"""Entry point of the ``physml`` command; each study registers its verbs here."""

from __future__ import annotations

import argparse
import signal
import sys

from physml import __version__
from physml.cli import run_verb
from physml.cli import diffusion as diffusion_cli
from physml.cli import figures, lattice, provenance
from physml.cli import phases as phases_cli
from physml.cli import rmt as rmt_cli

MODULES = [lattice, figures, provenance, phases_cli, rmt_cli, diffusion_cli]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="physml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"physml {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for module in MODULES:
        module.register(sub)
    return parser


def _exit_on_sigterm(signum, frame):
    """SIGTERM (e.g. a SLURM time limit) unwinds like an exception, so atomic writes clean up."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return run_verb(args, args.verb)


if __name__ == "__main__":
    sys.exit(main())
