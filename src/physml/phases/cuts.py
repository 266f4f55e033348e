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
(:data:`physml.phases.classify.RULES`) of a gathered cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from physml.phases.classify import PHASES, RULES, classify_runs

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


def cut_axis(grid: xr.Dataset) -> str:
    """The varying axis of a gathered cut ("sigma_w" or "T"); the other has one value."""
    varying = [d for d in ("T", "sigma_w") if grid.sizes[d] > 1]
    if len(varying) != 1:
        raise ValueError(f"a cut varies exactly one of T and sigma_w, got sizes {dict(grid.sizes)}")
    return varying[0]


def cut_boundaries(grid: xr.Dataset, phase: int, end: str, prefix: str, **thresholds) -> xr.Dataset:
    """The boundary of ``phase`` at ``end`` of a gathered cut at every time, under every rule.

    Returns variables ``{prefix}`` (boundary position), ``{prefix}_lower`` / ``_upper`` (one
    binomial standard error), ``{prefix}_bracket_lo`` / ``_hi``, ``{prefix}_status`` and
    ``{prefix}_other`` (the neighbouring phase), dims (rule, time), and the run counts per
    phase along the cut, ``{prefix}_counts`` (rule, x, time, phase)."""
    axis = cut_axis(grid)
    fixed = "sigma_w" if axis == "T" else "T"
    g = grid.isel({fixed: 0}).sortby(axis)
    x = g[axis].values
    names = ("", "_lower", "_upper", "_bracket_lo", "_bracket_hi")
    values = {n: np.full((len(RULES), g.sizes["time"]), np.nan) for n in names}
    status = np.zeros((len(RULES), g.sizes["time"]), np.int8)
    other = np.full((len(RULES), g.sizes["time"]), -1, np.int8)
    counts = []
    for r, rule in enumerate(RULES):
        run_phase = classify_runs(g, rule=rule, **thresholds).transpose(axis, "run", "time")
        c = np.stack([(run_phase == k).sum("run").values for k in range(len(PHASES))], axis=-1)
        counts.append(c)                                          # (x, time, phase)
        for t in range(g.sizes["time"]):
            b = find_boundary(x, c[:, t], phase, end)
            status[r, t], other[r, t] = b.status, b.other
            for n, v in zip(names, (b.position, b.lower, b.upper, *b.bracket)):
                values[n][r, t] = v
    dims = ("rule", "time")
    ds = xr.Dataset(coords={"rule": list(RULES), "time": g["time"].values, f"{prefix}_{axis}": x})
    what = f"{PHASES[phase]} boundary along {axis} at {fixed} = {float(g[fixed]):g}"
    ds[prefix] = (dims, values[""], {"long_name": what})
    ds[f"{prefix}_lower"] = (dims, values["_lower"], {"long_name": f"{what}, minus one binomial error"})
    ds[f"{prefix}_upper"] = (dims, values["_upper"], {"long_name": f"{what}, plus one binomial error"})
    ds[f"{prefix}_bracket_lo"] = (dims, values["_bracket_lo"], {"long_name": "lower cell of the bracket"})
    ds[f"{prefix}_bracket_hi"] = (dims, values["_bracket_hi"], {"long_name": "upper cell of the bracket"})
    ds[f"{prefix}_status"] = (dims, status, {"long_name": "where the boundary lies", **STATUS_FLAGS})
    ds[f"{prefix}_other"] = (dims, other, {"long_name": "majority phase beside the block (-1: none)",
                                           "flag_values": " ".join(map(str, range(len(PHASES)))),
                                           "flag_meanings": " ".join(PHASES)})
    ds[f"{prefix}_counts"] = (("rule", f"{prefix}_{axis}", "time", "phase"), np.stack(counts).astype(np.int32),
                              {"long_name": f"runs in each phase along the cut through {axis}"})
    ds = ds.assign_coords(phase=list(PHASES))
    ds.attrs[f"{prefix}_fixed_{fixed}"] = float(g[fixed])
    return ds


def boundary_study(sigma_w_cut: xr.Dataset, T_cut: xr.Dataset, ferro_max_test_loss: float = 0.1,
                   glass_min_overlap: float = 0.5, glass_min_saturation: float = 0.5,
                   boundary_fraction: float = 0.68) -> xr.Dataset:
    """The boundary-against-training-length artifact from two gathered cuts
    (:func:`physml.phases.cells.gather`): the spin-glass boundary ``glass`` along the sigma_W
    cut (the block of glass cells at large sigma_W), the ferro/para boundary ``ferro`` along
    the T cut (the block of ferro cells at small T), both under every rule, beside the
    predicted lines: ``T_ferro_para_predicted`` (time), the drift-versus-noise line at the T
    cut's sigma_W (:func:`physml.phases.boundaries.ferro_para_line`), and for tanh the
    attributes ``sigma_w_tanh_line`` (sigma_W^2 = 1/2) and ``sigma_w_preactivation_line``
    (sigma_W^2 <a^2> = 1/2, <a^2> measured on the sigma_W cut's runs); and the fraction of
    runs satisfying the criterion along the T cut, ``drift_criterion_fraction`` (ferro_T, time)."""
    from physml.phases.classify import FERRO, GLASS, analyse_grid

    if cut_axis(sigma_w_cut) != "sigma_w" or cut_axis(T_cut) != "T":
        raise ValueError("boundary_study needs a cut through sigma_w and a cut through T")
    thresholds = dict(ferro_max_test_loss=ferro_max_test_loss, glass_min_overlap=glass_min_overlap,
                      glass_min_saturation=glass_min_saturation)
    if not np.array_equal(sigma_w_cut["time"].values, T_cut["time"].values):
        raise ValueError("the two cuts have different snapshot times")
    sw = analyse_grid(sigma_w_cut, boundary_fraction=boundary_fraction, **thresholds)
    tc = analyse_grid(T_cut, boundary_fraction=boundary_fraction, **thresholds)
    out = xr.merge([cut_boundaries(sw, GLASS, "high", "glass", **thresholds),
                    cut_boundaries(tc, FERRO, "low", "ferro", **thresholds)], combine_attrs="drop_conflicts")
    out["T_ferro_para_predicted"] = tc["T_ferro_para"].isel(sigma_w=0).drop_vars("sigma_w").assign_attrs(
        long_name=f"T where {boundary_fraction:.0%} of runs satisfy the drift-versus-noise criterion "
                  f"at sigma_W = {float(tc['sigma_w'][0]):g}")
    out["drift_criterion_fraction"] = (
        tc["drift_criterion_fraction"].isel(sigma_w=0, drop=True).rename(T="ferro_T")
        .transpose("ferro_T", "time").assign_attrs(
            long_name="fraction of runs whose eigenvalue drift beats the noise, along the T cut"))
    out["time"].attrs.update(long_name="SGD steps done")
    out.attrs.update(thresholds, boundary_fraction=float(boundary_fraction), rules=" ".join(RULES),
                     n_runs=int(sw.sizes["run"]), lr_sigma_w_cut=float(sw["lr"].values[0]),
                     lr_T_cut=" ".join(f"{v:g}" for v in tc["lr"].values))
    for key in ("batch_size", "n_batches", "arch_activation", "arch_n_in", "arch_n1", "arch_n2"):
        if key in sw.attrs:
            out.attrs[key] = sw.attrs[key]
    if "inv_sigma_w_tanh_line" in sw.attrs:
        out.attrs.update(feature_m2=sw.attrs["feature_m2"],
                         sigma_w_tanh_line=1 / sw.attrs["inv_sigma_w_tanh_line"],
                         sigma_w_preactivation_line=1 / sw.attrs["inv_sigma_w_preactivation_line"])
    return out
