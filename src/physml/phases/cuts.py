"""Measured phase boundaries along one-dimensional cuts of the grid, against training length.

A *cut* is a row of cells along one axis: sigma_W at fixed learning rate (the spin-glass
boundary) or the temperature T at fixed sigma_W (the ferro/para boundary).  At each
snapshot time every cell has a majority phase (:func:`physml.phases.classify.cell_phase`).
:func:`find_boundary` locates the edge of the block of cells of one phase P at one end of
the cut (glass at large sigma_W, ferro at small T):

- the bracket is the last cell of the block (majority P) and the first cell outside it
  (majority A, the neighbouring phase);
- in both bracketing cells, g = n_P / (n_P + n_A) is the share of P among the runs in P or A:
  g >= 1/2 inside the block and <= 1/2 outside, so it crosses 1/2 inside the bracket; the
  boundary is where it does, interpolated linearly in g against log x;
- its error is the binomial error of the two shares (each a binomial fraction of the
  n_P + n_A runs in P or A, :func:`binomial_error`) carried through the interpolation to
  first order (:func:`crossing_error`).  A unanimous pair of cells (g = 0 and 1) has zero
  binomial error: the boundary is then known only to lie in the bracket, which the result
  states beside the error.

:func:`cut_boundaries` does this for every time and classification rule
(:data:`physml.phases.classify.RULES`) of a gathered cut, :func:`threshold_scan` for a
list of values of one threshold of the rule ``order``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from physml.phases.classify import FERRO, GLASS, PHASES, RULES, classify_runs

INSIDE, NOT_REACHED, WHOLE_CUT = range(3)  # status codes of a boundary
STATUS = ("inside", "not_reached", "whole_cut")
STATUS_FLAGS = dict(flag_values="0 1 2", flag_meanings=" ".join(STATUS))


def binomial_error(k, n):
    """Standard error sqrt(p (1 - p) / n) of the fraction p = k / n of n runs (0 where n = 0)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        return np.where(n > 0, np.sqrt(p * (1 - p) / n), 0.0)


def crossing(u_out: float, u_in: float, g_out: float, g_in: float) -> float:
    """Where g, linear between (u_out, g_out) and (u_in, g_in), equals 1/2 (the midpoint
    where g_in == g_out)."""
    if g_in == g_out:
        return 0.5 * (u_out + u_in)
    return u_out + (0.5 - g_out) / (g_in - g_out) * (u_in - u_out)


def crossing_error(u_out: float, u_in: float, g_out: float, g_in: float, err_out: float,
                   err_in: float) -> float:
    """First-order error of :func:`crossing` given independent errors of g_out and g_in."""
    if g_in == g_out:
        return 0.5 * abs(u_in - u_out)
    d_out = (u_in - u_out) * (0.5 - g_in) / (g_in - g_out) ** 2
    d_in = -(u_in - u_out) * (0.5 - g_out) / (g_in - g_out) ** 2
    return float(np.hypot(d_out * err_out, d_in * err_in))


@dataclass(frozen=True)
class Boundary:
    """A boundary along a cut, in the cut's variable x (NaN unless status is INSIDE)."""

    status: int
    position: float = np.nan
    lower: float = np.nan      # position / exp(log error) and position * exp(log error)
    upper: float = np.nan
    bracket: tuple[float, float] = (np.nan, np.nan)
    other: int = -1            # the neighbouring majority phase A


def find_boundary(x, counts, phase: int, end: str = "high") -> Boundary:
    """Edge of the block of cells whose majority phase is ``phase`` at the ``end`` ("high"
    or "low" x) of a cut; ``x`` (n,) positive and ascending, ``counts`` (n, n_phases) runs of
    each phase per cell.  Status NOT_REACHED where the end cell's majority is not ``phase``,
    WHOLE_CUT where every cell's is."""
    x, counts = np.asarray(x, dtype=float), np.asarray(counts)
    if end not in ("high", "low"):
        raise ValueError(f"end must be 'high' or 'low', got {end!r}")
    if np.any(np.diff(x) <= 0) or np.any(x <= 0):
        raise ValueError("x must be positive and strictly ascending")
    if end == "high":
        x, counts = x[::-1], counts[::-1]
    majority = counts.argmax(axis=1)            # ties to the lower code, as cell_phase
    if majority[0] != phase:
        return Boundary(NOT_REACHED)
    outside = np.flatnonzero(majority != phase)
    if not len(outside):
        return Boundary(WHOLE_CUT)
    j = int(outside[0])                          # first cell outside the block
    other = int(majority[j])
    m = counts[[j, j - 1]][:, [phase, other]].sum(axis=1)   # runs in P or A: outside, inside
    g = counts[[j, j - 1], phase] / m
    err = binomial_error(counts[[j, j - 1], phase], m)
    u = np.log(x[[j, j - 1]])
    centre = crossing(u[0], u[1], g[0], g[1])
    sigma = crossing_error(u[0], u[1], g[0], g[1], err[0], err[1])
    lo, hi = sorted((x[j], x[j - 1]))
    return Boundary(INSIDE, float(np.exp(centre)), float(np.exp(centre - sigma)),
                    float(np.exp(centre + sigma)), (float(lo), float(hi)), other)


def cut_line(grid: xr.Dataset, axis: str) -> xr.Dataset:
    """The cut along ``axis`` ("sigma_w" or "T") of a gathered grid: at the largest value of
    the other axis, sorted along ``axis`` (a T cut's grid may hold the floor cells, its
    smallest sigma_W, beside the cut)."""
    if axis not in ("T", "sigma_w") or grid.sizes[axis] < 2:
        raise ValueError(f"a cut varies T or sigma_w over at least two cells, got {axis!r} in {dict(grid.sizes)}")
    fixed = "sigma_w" if axis == "T" else "T"
    return grid.sortby(fixed).isel({fixed: -1}).sortby(axis)


def phase_counts(grid: xr.Dataset, axis: str, **classify) -> np.ndarray:
    """Runs of each phase along the cut through ``axis`` (:func:`cut_line`), classified on the
    whole grid by :func:`physml.phases.classify.classify_runs` with ``classify``: (x, time, phase)."""
    fixed = "sigma_w" if axis == "T" else "T"
    run_phase = classify_runs(grid, **classify).sortby(fixed)
    line = run_phase.isel({fixed: -1}).sortby(axis).transpose(axis, "run", "time")
    return np.stack([(line == k).sum("run").values for k in range(len(PHASES))], axis=-1)


FIELDS = ("", "_lower", "_upper", "_bracket_lo", "_bracket_hi")


def boundaries_from_counts(x, counts: np.ndarray, phase: int, end: str) -> dict[str, np.ndarray]:
    """:func:`find_boundary` at every time of ``counts`` (n, x, time, phase) for each of n
    classifications: arrays (n, time) keyed by :data:`FIELDS` (position, one binomial error
    down and up, the bracket), ``"_status"`` and ``"_other"``."""
    n, n_time = counts.shape[0], counts.shape[2]
    out = {f: np.full((n, n_time), np.nan) for f in FIELDS}
    out["_status"] = np.zeros((n, n_time), np.int8)
    out["_other"] = np.full((n, n_time), -1, np.int8)
    for c in range(n):
        for t in range(n_time):
            b = find_boundary(x, counts[c, :, t], phase, end)
            out["_status"][c, t], out["_other"][c, t] = b.status, b.other
            for f, v in zip(FIELDS, (b.position, b.lower, b.upper, *b.bracket)):
                out[f][c, t] = v
    return out


def cut_boundaries(grid: xr.Dataset, axis: str, phase: int, end: str, prefix: str,
                   counts: bool = True, **thresholds) -> xr.Dataset:
    """The boundary of ``phase`` at ``end`` of the cut through ``axis`` at every time, under
    every rule of :data:`physml.phases.classify.RULES`.

    Returns variables ``{prefix}`` (boundary position), ``{prefix}_lower`` / ``_upper`` (one
    binomial standard error), ``{prefix}_bracket_lo`` / ``_hi``, ``{prefix}_status`` and
    ``{prefix}_other`` (the neighbouring phase), dims (rule, time), and with ``counts`` the run
    counts per phase along the cut, ``{prefix}_counts`` (rule, {prefix}_{axis}, time, phase)."""
    line = cut_line(grid, axis)
    fixed = "sigma_w" if axis == "T" else "T"
    x = line[axis].values
    c = np.stack([phase_counts(grid, axis, rule=rule, **thresholds) for rule in RULES])
    found = boundaries_from_counts(x, c, phase, end)
    dims = ("rule", "time")
    ds = xr.Dataset(coords={"rule": list(RULES), "time": line["time"].values})
    what = f"{PHASES[phase]} boundary along {axis} at {fixed} = {float(line[fixed]):g}"
    names = {"": what, "_lower": f"{what}, minus one binomial error", "_upper": f"{what}, plus one binomial error",
             "_bracket_lo": "lower cell of the bracket", "_bracket_hi": "upper cell of the bracket"}
    for f, long_name in names.items():
        ds[prefix + f] = (dims, found[f], {"long_name": long_name})
    ds[f"{prefix}_status"] = (dims, found["_status"], {"long_name": "where the boundary lies", **STATUS_FLAGS})
    ds[f"{prefix}_other"] = (dims, found["_other"], {"long_name": "majority phase beside the block (-1: none)",
                                                     "flag_values": " ".join(map(str, range(len(PHASES)))),
                                                     "flag_meanings": " ".join(PHASES)})
    if counts:
        ds = ds.assign_coords({f"{prefix}_{axis}": x, "phase": list(PHASES)})
        ds[f"{prefix}_counts"] = (("rule", f"{prefix}_{axis}", "time", "phase"), c.astype(np.int32),
                                  {"long_name": f"runs in each phase along the cut through {axis}"})
    ds.attrs[f"{prefix}_fixed_{fixed}"] = float(line[fixed])
    return ds


BOUNDARIES = (("glass", "sigma_w", GLASS, "high"), ("ferro_sigma_w", "sigma_w", FERRO, "low"),
              ("ferro", "T", FERRO, "low"))  # name, cut, phase of the block, its end of the cut


def threshold_scan(cuts: dict[str, xr.Dataset], key: str, values, dim: str, **thresholds) -> xr.Dataset:
    """The :data:`BOUNDARIES` under rule ``order`` with its threshold ``key`` set to each of
    ``values`` (the others as in ``thresholds``): variables ``boundary_by_{dim}`` and its
    ``_lower``, ``_upper`` and ``_status``, dims (boundary, {dim}, time); ``cuts`` maps
    "sigma_w" and "T" to the gathered cuts."""
    fields = ("", "_lower", "_upper", "_status")
    per = {f: [] for f in fields}
    for name, axis, phase, end in BOUNDARIES:
        grid = cuts[axis]
        c = np.stack([phase_counts(grid, axis, rule="order", **{**thresholds, key: float(v)}) for v in values])
        found = boundaries_from_counts(cut_line(grid, axis)[axis].values, c, phase, end)
        for f in fields:
            per[f].append(found[f])
    dims = ("boundary", dim, "time")
    ds = xr.Dataset(coords={"boundary": [b[0] for b in BOUNDARIES], dim: np.asarray(values, float)})
    var = f"boundary_by_{dim}"
    ds[var] = (dims, np.stack(per[""]), {"long_name": f"boundaries under rule order against its {key}"})
    ds[var + "_lower"] = (dims, np.stack(per["_lower"]), {"long_name": "minus one binomial error"})
    ds[var + "_upper"] = (dims, np.stack(per["_upper"]), {"long_name": "plus one binomial error"})
    ds[var + "_status"] = (dims, np.stack(per["_status"]), {"long_name": "where the boundary lies", **STATUS_FLAGS})
    return ds


def boundary_study(sigma_w_cut: xr.Dataset, T_cut: xr.Dataset, ferro_max_test_loss: float = 0.1,
                   glass_min_overlap: float = 0.5, glass_min_saturation: float = 0.5,
                   boundary_fraction: float = 0.68, floor_factors=(), sv_growths=(),
                   **order_thresholds) -> xr.Dataset:
    """The boundary-against-training-length artifact from two gathered cuts
    (:func:`physml.phases.cells.gather`; the T cut with its floor cells, the smallest sigma_W at
    each of its T, for rule ``order``), under every rule: the spin-glass boundary ``glass``
    along the sigma_W cut (the block of glass cells at large sigma_W), the edge of the ferro
    block at small sigma_W along the same cut, ``ferro_sigma_w``, and the ferro/para boundary
    ``ferro`` along the T cut (the block of ferro cells at small T); beside them the predicted
    lines: ``T_ferro_para_predicted`` and ``T_ferro_para_authors_predicted`` (time), where
    68% of runs satisfy our drift-versus-noise criterion and the authors' criterion at the T
    cut's sigma_W (:func:`physml.phases.boundaries.ferro_para_line`), with the fractions along
    the cut, ``drift_criterion_fraction`` and ``authors_criterion_fraction`` (ferro_T, time);
    for tanh the attributes ``sigma_w_tanh_line`` (sigma_W^2 = 1/2) and
    ``sigma_w_preactivation_line`` (sigma_W^2 <a^2> = 1/2, <a^2> measured on the sigma_W
    cut's runs).  ``floor_factors`` and ``sv_growths``: the boundaries under rule ``order``
    with ``ferro_max_floor_ratio`` and ``para_min_sv_growth`` set to each
    (:func:`threshold_scan`; dims ``floor_factor`` and ``sv_growth``)."""
    from physml.phases.classify import ORDER_THRESHOLDS, analyse_grid

    if sigma_w_cut.sizes["T"] != 1 or sigma_w_cut.sizes["sigma_w"] < 2:
        raise ValueError(f"the sigma_W cut needs one T and at least two sigma_W, got {dict(sigma_w_cut.sizes)}")
    if T_cut.sizes["T"] < 2 or T_cut.sizes["sigma_w"] != 2:
        raise ValueError("the T cut needs at least two T at one sigma_W and its floor cells (a smaller "
                         f"sigma_W at the same T, for rule order), got {dict(T_cut.sizes)}")
    if not np.array_equal(sigma_w_cut["time"].values, T_cut["time"].values):
        raise ValueError("the two cuts have different snapshot times")
    order = {**ORDER_THRESHOLDS, **order_thresholds}
    thresholds = dict(ferro_max_test_loss=ferro_max_test_loss, glass_min_overlap=glass_min_overlap,
                      glass_min_saturation=glass_min_saturation, **order)
    sw = analyse_grid(sigma_w_cut, boundary_fraction=boundary_fraction, **thresholds)
    tc = analyse_grid(T_cut, boundary_fraction=boundary_fraction, **thresholds)
    parts = [cut_boundaries(sw, "sigma_w", GLASS, "high", "glass", **thresholds),
             cut_boundaries(sw, "sigma_w", FERRO, "low", "ferro_sigma_w", counts=False, **thresholds),
             cut_boundaries(tc, "T", FERRO, "low", "ferro", **thresholds)]
    cuts = {"sigma_w": sw, "T": tc}
    if len(floor_factors):
        parts.append(threshold_scan(cuts, "ferro_max_floor_ratio", floor_factors, "floor_factor", **thresholds))
    if len(sv_growths):
        parts.append(threshold_scan(cuts, "para_min_sv_growth", sv_growths, "sv_growth", **thresholds))
    out = xr.merge(parts, combine_attrs="drop_conflicts")
    at = tc.isel(sigma_w=-1)
    for name, criterion in (("", "physml"), ("_authors", "authors")):
        frac = "drift_criterion_fraction" if criterion == "physml" else "authors_criterion_fraction"
        out[f"T_ferro_para{name}_predicted"] = at[f"T_ferro_para{name}"].drop_vars("sigma_w").assign_attrs(
            long_name=f"T where {boundary_fraction:.0%} of runs satisfy the {criterion} ferro/para criterion "
                      f"at sigma_W = {float(at['sigma_w']):g}")
        out[frac] = (at[frac].drop_vars("sigma_w").rename(T="ferro_T").transpose("ferro_T", "time")
                     .assign_attrs(long_name=f"{at[frac].attrs['long_name']}, along the T cut"))
    out["time"].attrs.update(long_name="SGD steps done")
    out.attrs.update(thresholds, boundary_fraction=float(boundary_fraction), rules=" ".join(RULES),
                     n_runs=int(sw.sizes["run"]), lr_sigma_w_cut=float(sw["lr"].values[0]),
                     lr_T_cut=" ".join(f"{v:g}" for v in tc["lr"].values),
                     floor_sigma_w_T_cut=float(tc["sigma_w"].min()), floor_sigma_w_sigma_w_cut=float(sw["sigma_w"].min()))
    for key in ("batch_size", "n_batches", "arch_activation", "arch_n_in", "arch_n1", "arch_n2"):
        if key in sw.attrs:
            out.attrs[key] = sw.attrs[key]
    if "inv_sigma_w_tanh_line" in sw.attrs:
        out.attrs.update(feature_m2=sw.attrs["feature_m2"],
                         sigma_w_tanh_line=1 / sw.attrs["inv_sigma_w_tanh_line"],
                         sigma_w_preactivation_line=1 / sw.attrs["inv_sigma_w_preactivation_line"])
    return out
