"""The result of an error analysis: mean, error and integrated autocorrelation time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """Mean, its error and the integrated autocorrelation time (in measurements;
    0.5 for independent data)."""

    value: float
    error: float
    tau_int: float
    tau_int_error: float
