"""The ``physml`` command line: one verb per pipeline step (see ``physml --help``)."""

from __future__ import annotations

import sys


def run_verb(args, label: str, debug: bool = False) -> int:
    """Run a parsed verb; a failure prints one line naming the verb and returns 2 (with
    ``debug``, the exception propagates and Python shows its traceback)."""
    try:
        args.func(args)
    except Exception as exc:
        if debug:
            raise
        expected = isinstance(exc, (ValueError, FileNotFoundError, RuntimeError))
        what = str(exc) if expected else f"{type(exc).__name__}: {exc} (--debug shows the traceback)"
        print(f"physml {label}: error: {what}", file=sys.stderr)
        return 2
    return 0
