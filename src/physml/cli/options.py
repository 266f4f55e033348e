"""Option helpers shared by the verbs (torch-free, like the ``phases`` verbs)."""

from __future__ import annotations

import argparse
import math


def old_spelling(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` as an earlier spelling of the option ``new``: the same action (value,
    type, errors), left out of ``--help`` so that each setting shows one name."""
    action = next(a for a in parser._actions if new in a.option_strings)
    parser._option_string_actions[old] = action


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite: the type of every float option
    (:func:`physml.cli.main.build_parser` puts it in place of ``float``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def lattice_extent(text: str) -> int:
    """A lattice extent L: even and at least 4, as the workflow schema asks (an odd L would
    make an ensemble that no diffusion model trains on: their U-Nets halve L)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 4 or value % 2:
        raise argparse.ArgumentTypeError(f"must be an even lattice extent >= 4, got {text}")
    return value


def step_count(text: str) -> int:
    """A step count, also written as a float (``1e6``)."""
    return int(finite_float(text))


class NumberList(argparse.Action):
    """A list option written space- or comma-separated (``--x 1 2 3`` or ``--x 1,2,3``): one
    flat list, each number converted by ``type`` (default: a finite float)."""

    def __init__(self, option_strings, dest, type=finite_float, **kwargs):
        self.convert = finite_float if type is float else type
        super().__init__(option_strings, dest, nargs="+", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            items = [self.convert(s) for v in values for s in v.split(",") if s.strip()]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        except ValueError:
            raise argparse.ArgumentError(self, "expected numbers separated by spaces or commas, "
                                               f"got {' '.join(values)!r}") from None
        setattr(namespace, self.dest, items)
