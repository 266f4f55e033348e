"""Progress output for long jobs, readable both on a terminal and in a rule's log file."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress(iterable=None, *, total=None, desc: str = "", enabled: bool = True):
    """A tqdm bar on stderr; in a log file (not a tty) it prints a line every ~10 s."""
    interactive = sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, file=sys.stderr,
                mininterval=0.2 if interactive else 10.0, ascii=not interactive,
                dynamic_ncols=interactive)
