"""The ``physml`` command line: one verb per pipeline step (see ``physml --help``)."""

from __future__ import annotations

import sys


def run_verb(args, label: str, debug: bool = False, parser=None) -> int:
    """Run a parsed verb, after checking the paths it reads and writes (with the verb's own
    ``parser``: :func:`physml.cli.common.check_paths`); a failure closes any progress bar,
    prints one line naming the verb and returns 2 (with ``debug``, the exception propagates
    and Python shows its traceback)."""
    try:
        if parser is not None:
            from physml.cli.common import check_paths
            check_paths(args, parser)
        args.func(args)
    except Exception as exc:
        if debug:
            raise
        if "physml.progress" in sys.modules:
            sys.modules["physml.progress"].close_bars()
        expected = isinstance(exc, (ValueError, FileNotFoundError, RuntimeError))
        what = str(exc) if expected else f"{type(exc).__name__}: {exc} (--debug shows the traceback)"
        print(f"physml {label}: error: {what}", file=sys.stderr)
        return 2
    return 0
