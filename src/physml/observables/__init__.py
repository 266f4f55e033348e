"""Observables of ensemble artifacts, dispatched on the artifact's ``theory`` attribute."""

from __future__ import annotations

import xarray as xr

from physml.observables.phi4 import measure_phi4
from physml.observables.u1 import measure_u1

MEASURES = {"phi4": measure_phi4, "u1": measure_u1}


def measure(ds: xr.Dataset) -> xr.Dataset:
    """Observables of an ensemble, for the theory named in ``ds.attrs['theory']``."""
    theory = ds.attrs.get("theory")
    if theory not in MEASURES:
        raise ValueError(f"ensemble has theory={theory!r}; known theories: {sorted(MEASURES)}")
    return MEASURES[theory](ds)
