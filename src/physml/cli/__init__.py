"""The ``physml`` command line: one verb per pipeline step (see ``physml --help``)."""

from __future__ import annotations

import sys


def run_verb(args, label: str) -> int:
    """Run a parsed verb; expected failures print one line naming the verb and return 2."""
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"physml {label}: error: {exc}", file=sys.stderr)
        return 2
    return 0
