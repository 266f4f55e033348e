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


def close_bars() -> None:
    """Close every open bar (its last state stays, on a line of its own), so that an error
    printed next starts a line and no bar is drawn after it."""
    for bar in list(tqdm._instances):
        bar.close()
