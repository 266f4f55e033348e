"""Option helpers shared by the verbs (torch-free, like the ``phases`` verbs)."""

from __future__ import annotations

import argparse


def old_spelling(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` as an earlier spelling of the option ``new``: the same action (value,
    type, errors), left out of ``--help`` so that each setting shows one name."""
    action = next(a for a in parser._actions if new in a.option_strings)
    parser._option_string_actions[old] = action


def step_count(text: str) -> int:
    """A step count, also written as a float (``1e6``)."""
    return int(float(text))


class NumberList(argparse.Action):
    """A list option written space- or comma-separated (``--x 1 2 3`` or ``--x 1,2,3``): one
    flat list, each number converted by ``type`` (default float)."""

    def __init__(self, option_strings, dest, type=float, **kwargs):
        self.convert = type
        super().__init__(option_strings, dest, nargs="+", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            items = [self.convert(s) for v in values for s in v.split(",") if s.strip()]
        except ValueError:
            raise argparse.ArgumentError(self, "expected numbers separated by spaces or commas, "
                                               f"got {' '.join(values)!r}") from None
        setattr(namespace, self.dest, items)
