"""Phase of each run and each grid cell (thresholds from the config's ``phases.classify``).

A run at a given training time is

- **ferromagnetic** (learns) when its relative test loss (test loss / loss of the zero
  output, ``test_loss_rel``) is below ``ferro_max_test_loss``;
- otherwise **spin-glass / jammed** when its features stayed close to their initial values,
  overlap ``q >= glass_min_overlap``, *and* are saturated, ``<s^2> >= glass_min_saturation``
  (large sigma_W: saturated features, tiny gradients, the loss stays high without diverging);
- otherwise **unconverged** when the features stayed close to their initial values but are
  not saturated: nothing jams them, training has simply not got there yet (small T early on);
- otherwise **paramagnetic** (the noise wins: the loss fluctuates and the features decorrelate
  from their initial values).  A run that has diverged by that time (``0 <= diverged_step <=
  time``) counts as paramagnetic (no convergence); before its divergence it is classed like
  any other run.  With tanh the output is bounded by sum |Z_i|, so the loss cannot blow up
  and divergence alone never separates this phase.

``<s^2>`` lies in [0, 1] for tanh (1: features at +-1); for relu and identity it is just the
second moment of the features, which also grows with sigma_W^2.

A cell's phase is the majority phase of its runs.

**Two rules for "jammed"** (:data:`RULES`, the ``rule`` argument of :func:`classify_runs`),
the same loss test for ferromagnetic in both:

- ``physml`` (above, the default): q is the *normalised* overlap (a cosine, 1 for unchanged
  features at any scale) and saturation is a separate condition, with "unconverged" for
  frozen but unsaturated runs;
- ``authors``: the overlap of the authors' public analysis notebook (chanjure/phase_ml,
  ``q_time``), the *unnormalised* q_A = sum s_0 . s_t / (n_test n2) = q sqrt(<s_0^2> <s_t^2>),
  which mixes overlap and saturation in one number: a run that does not learn is spin-glass
  when q_A >= ``glass_min_overlap`` and paramagnetic otherwise (three phases, no
  "unconverged"; ``glass_min_saturation`` is not used).  The threshold is ours: the authors
  read the phases off maps of q_A, the field alignment and the loss.

**The order-parameter rule** ``order`` (the default of the config) uses no loss threshold.
With s_1 the largest singular value of W (s_1(0) at initialisation, s_1^teacher the
teacher's), F = test loss / the *same run's* test loss in the smallest-sigma_W cell of the
grid at the same T and time (:func:`floor_ratio`; the cells share teachers, data and init
directions, so the ratio compares like with like), a run is, in this order,

- **paramagnetic** when it has diverged, or the SGD noise has grown its spectrum:
  s_1 >= ``para_min_sv_growth`` max(s_1(0), s_1^teacher);
- **ferromagnetic** when it learns as well as the small-sigma_W floor: F <= ``ferro_max_floor_ratio``
  (and the floor run is not paramagnetic itself: at high T the floor is the noise plateau,
  and nothing counts as learned against it);
- **spin glass (jammed)** when its spectrum is frozen, |s_1 / s_1(0) - 1| <= ``glass_max_sv_drift``,
  and its overlap with the initial features stays high, q_A >= ``glass_min_overlap``;
- **unconverged** otherwise (it neither learns to the floor nor stays jammed nor grows).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

PHASES = ("ferro", "para", "glass", "unconverged")
FERRO, PARA, GLASS, UNCONVERGED = range(4)
FLAGS = dict(flag_values=" ".join(str(k) for k in range(len(PHASES))), flag_meanings=" ".join(PHASES))
RULES = ("physml", "authors", "order")
# thresholds of the order-parameter rule (see the module docstring) and their defaults
ORDER_THRESHOLDS = dict(ferro_max_floor_ratio=3.0, glass_max_sv_drift=0.1, para_min_sv_growth=10.0)


def authors_overlap(grid: xr.Dataset) -> xr.DataArray:
    """The unnormalised overlap q_A = sum s_0 . s_t / (n_test n2) = q sqrt(<s_0^2> <s_t^2>):
    the recorded ``overlap_q_authors``, or computed from q and <s^2> where not recorded."""
    if "overlap_q_authors" in grid:
        return grid["overlap_q_authors"]
    return grid["overlap_q"] * np.sqrt(grid["saturation"].sel(time=0) * grid["saturation"])


def diverged_by(grid: xr.Dataset) -> xr.DataArray:
    """True where a run has diverged at or before the snapshot time."""
    step = grid["diverged_step"]
    return (step >= 0) & (step <= grid["time"])


def floor_ratio(grid: xr.Dataset) -> xr.DataArray:
    """Test loss over the same run's test loss in the grid's smallest-sigma_W cell at the
    same T and time (NaN where that floor run has diverged by then); the recorded
    ``test_loss_floor_ratio`` where present.  Needs a grid with a ``sigma_w`` axis."""
    if "test_loss_floor_ratio" in grid:
        return grid["test_loss_floor_ratio"]
    if "sigma_w" not in grid.dims:
        raise ValueError("rule 'order' compares each run with the floor, the smallest-sigma_W cell at the "
                         "same T: it needs a grid with a sigma_w axis")
    floor = grid.sortby("sigma_w").isel(sigma_w=0, drop=True)
    floor_loss = floor["test_loss"].where(~diverged_by(floor))
    return (grid["test_loss"] / floor_loss).rename("test_loss_floor_ratio").assign_attrs(
        long_name="test loss / the same run's test loss at the smallest sigma_W, same T and time",
        floor_sigma_w=float(grid["sigma_w"].min()))


def _top(grid: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    """The largest singular value s_1 of W at every time, and at time 0."""
    top = grid["singular_values"].isel(sv=0, drop=True)
    return top, top.sel(time=0, drop=True)


def sv_growth(grid: xr.Dataset) -> xr.DataArray:
    """s_1 / max(s_1(0), s_1^teacher): the largest singular value of W over the larger of its
    initial value and the teacher's."""
    if "teacher_singular_values" not in grid:
        raise ValueError("rule 'order' needs teacher_singular_values: the cells were made before it was "
                         "recorded; run them again")
    top, top0 = _top(grid)
    return top / np.maximum(top0, grid["teacher_singular_values"].isel(sv=0, drop=True))


def _check_order_thresholds(ferro_max_floor_ratio: float, glass_max_sv_drift: float,
                            para_min_sv_growth: float) -> None:
    if not ferro_max_floor_ratio > 0:
        raise ValueError(f"ferro_max_floor_ratio must be > 0, got {ferro_max_floor_ratio}")
    if not glass_max_sv_drift >= 0:
        raise ValueError(f"glass_max_sv_drift must be >= 0, got {glass_max_sv_drift}")
    if not para_min_sv_growth > 1:
        raise ValueError(f"para_min_sv_growth must be > 1, got {para_min_sv_growth}")


def classify_runs(grid: xr.Dataset, ferro_max_test_loss: float = 0.1, glass_min_overlap: float = 0.5,
                  glass_min_saturation: float = 0.5, rule: str = "physml",
                  ferro_max_floor_ratio: float = ORDER_THRESHOLDS["ferro_max_floor_ratio"],
                  glass_max_sv_drift: float = ORDER_THRESHOLDS["glass_max_sv_drift"],
                  para_min_sv_growth: float = ORDER_THRESHOLDS["para_min_sv_growth"]) -> xr.DataArray:
    """Phase code (:data:`PHASES`) of every run at every time, dims like ``test_loss``, under
    the classification ``rule`` (:data:`RULES`, see the module docstring; each rule reads
    only its own thresholds)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not 0 < ferro_max_test_loss:
        raise ValueError(f"ferro_max_test_loss must be > 0, got {ferro_max_test_loss}")
    if not 0 <= glass_min_overlap <= 1:
        raise ValueError(f"glass_min_overlap must lie in [0, 1], got {glass_min_overlap}")
    if not glass_min_saturation >= 0:
        raise ValueError(f"glass_min_saturation must be >= 0, got {glass_min_saturation}")
    _check_order_thresholds(ferro_max_floor_ratio, glass_max_sv_drift, para_min_sv_growth)
    ok = ~diverged_by(grid)                               # not (yet) diverged at this time
    if rule == "order":
        ratio, growth = floor_ratio(grid), sv_growth(grid)
        grown = growth >= para_min_sv_growth
        # a floor run that is paramagnetic itself is no floor: nothing is ferromagnetic against it
        floor_grown = growth.sortby("sigma_w").isel(sigma_w=0, drop=True) >= para_min_sv_growth
        learns = (ratio <= ferro_max_floor_ratio) & ~floor_grown
        top, top0 = _top(grid)
        jammed = (abs(top / top0 - 1) <= glass_max_sv_drift) & (authors_overlap(grid) >= glass_min_overlap)
        code = xr.where(~ok | grown, PARA, xr.where(learns, FERRO, xr.where(jammed, GLASS, UNCONVERGED)))
    else:
        learns = grid["test_loss_rel"] < ferro_max_test_loss
        if rule == "authors":
            frozen, saturated = authors_overlap(grid) >= glass_min_overlap, True
        else:
            frozen = grid["overlap_q"] >= glass_min_overlap
            saturated = grid["saturation"] >= glass_min_saturation
        code = xr.where(learns & ok, FERRO,
                        xr.where(frozen & ok, xr.where(saturated, GLASS, UNCONVERGED), PARA))
    return code.astype(np.int8).rename("phase_run").assign_attrs(long_name="phase of the run", **FLAGS)


def phase_fractions(run_phase: xr.DataArray) -> xr.DataArray:
    """Fraction of runs in each phase: dims of ``run_phase`` without ``run``, plus ``phase``."""
    fr = xr.concat([(run_phase == k).mean("run") for k in range(len(PHASES))], dim="phase")
    return fr.assign_coords(phase=list(PHASES)).rename("phase_fraction").assign_attrs(
        long_name="fraction of runs in each phase")


def cell_phase(run_phase: xr.DataArray) -> xr.DataArray:
    """Majority phase of each cell (ties go to the lower code: ferro, then para)."""
    return phase_fractions(run_phase).argmax("phase").astype(np.int8).rename("cell_phase").assign_attrs(
        long_name="majority phase of the cell", **FLAGS)


def observed_glass_line(cell_phase: xr.DataArray) -> xr.DataArray:
    """1/sigma_W of the observed glass boundary per T, from ``cell_phase`` (T, sigma_w) at one time.

    Along sigma_W at fixed T the boundary lies at the geometric midpoint between the largest
    non-glass cell and the glass cells above it, where every cell from there to the largest
    sigma_W is glass.  NaN where the largest sigma_W is not glass or every cell is (no
    boundary inside the grid)."""
    phase = cell_phase.sortby("sigma_w").transpose("T", "sigma_w")
    sw = phase["sigma_w"].values
    line = np.full(phase.sizes["T"], np.nan)
    for i, row in enumerate(phase.values == GLASS):
        n_top = len(row) if row.all() else int(np.argmin(row[::-1]))  # glass cells at the top
        if 0 < n_top < len(row):
            k = len(row) - n_top                                       # lowest of them
            line[i] = 1 / np.sqrt(sw[k - 1] * sw[k])
    return xr.DataArray(line, dims="T", coords={"T": phase["T"]}, name="inv_sigma_w_glass",
                        attrs={"long_name": "1/sigma_W of the observed glass boundary"})


SPIN_GLASS_LINES = (("inv_sigma_w_tanh_line", "sigma_W^2 = 1/2"),
                    ("inv_sigma_w_preactivation_line", "sigma_W^2 <a^2> = 1/2"))


def spin_glass_verdict(grid: xr.Dataset, time: int) -> str:
    """One sentence on which spin-glass line (if any) the observed glass boundary follows at
    ``time``: the line nearest (in log 1/sigma_W) to the median observed boundary, "followed"
    when it is within one sigma_W grid step of it.  Empty without the lines (not tanh)."""
    lines = [(grid.attrs[key], label) for key, label in SPIN_GLASS_LINES if key in grid.attrs]
    if not lines:
        return ""
    observed = observed_glass_line(grid["cell_phase"].sel(time=time)).values
    observed = observed[np.isfinite(observed)]
    if not len(observed):
        return (f"after {time} steps no temperature has a glass boundary inside the grid: "
                "neither line is tested")
    where = float(np.exp(np.median(np.log(observed))))
    dist, value, label = min((abs(np.log(where / v)), v, lab) for v, lab in lines)
    step = float(np.median(np.diff(np.log(np.sort(grid["sigma_w"].values)))))  # >= 2 values here
    found = (f"after {time} steps the glass boundary lies at 1/sigma_W = {where:.2g} "
             f"({len(observed)} of {grid.sizes['T']} temperatures); nearest line {label} at {value:.2g}")
    if dist <= step:
        return f"{found}: the data follow it"
    return f"{found}, a factor {np.exp(dist):.2g} away: neither line is followed"


def analyse_grid(grid: xr.Dataset, ferro_max_test_loss: float = 0.1, glass_min_overlap: float = 0.5,
                 glass_min_saturation: float = 0.5, boundary_fraction: float = 0.68, rule: str = "order",
                 **order_thresholds) -> xr.Dataset:
    """The grid with its phases and semi-analytic boundaries added (the gather step).

    Adds ``phase_run`` (T, sigma_w, run, time) under ``rule``, ``phase_fraction`` and
    ``cell_phase`` (majority) per cell and time, ``test_loss_floor_ratio`` (:func:`floor_ratio`),
    the fractions of runs satisfying each ferro/para criterion, ``drift_criterion_fraction``
    (ours) and ``authors_criterion_fraction`` (T, sigma_w, time), and the lines where they
    fall through ``boundary_fraction``, ``T_ferro_para`` and ``T_ferro_para_authors``
    (sigma_w, time); for tanh grids only, attributes with the spin-glass lines in 1/sigma_W:
    ``inv_sigma_w_tanh_line`` (sigma_W^2 = sigma_c^2 = 1/2) and
    ``inv_sigma_w_preactivation_line`` (sigma_W^2 <a^2> = sigma_c^2, <a^2> measured).
    ``order_thresholds``: those of :data:`ORDER_THRESHOLDS`."""
    from physml.phases import boundaries

    thresholds = {**ORDER_THRESHOLDS, **order_thresholds}
    out = grid.copy()
    out["test_loss_floor_ratio"] = floor_ratio(grid)
    out["phase_run"] = classify_runs(out, ferro_max_test_loss, glass_min_overlap, glass_min_saturation,
                                     rule, **thresholds)
    out["phase_run"].attrs["classification"] = rule
    out["phase_fraction"] = phase_fractions(out["phase_run"])
    out["cell_phase"] = cell_phase(out["phase_run"])
    out["drift_criterion_fraction"] = boundaries.criterion_fraction(grid)
    out["T_ferro_para"] = boundaries.ferro_para_line(grid, boundary_fraction)
    out["authors_criterion_fraction"] = boundaries.criterion_fraction(grid, "authors")
    out["T_ferro_para_authors"] = boundaries.ferro_para_line(grid, boundary_fraction, "authors")
    out.attrs.update(
        ferro_max_test_loss=float(ferro_max_test_loss), glass_min_overlap=float(glass_min_overlap),
        glass_min_saturation=float(glass_min_saturation), boundary_fraction=float(boundary_fraction),
        classification=rule, floor_sigma_w=float(grid["sigma_w"].min()), **{k: float(v) for k, v in thresholds.items()})
    if grid.attrs.get("arch_activation") == "tanh":
        var_c = boundaries.critical_tanh_variance()
        m2 = float(grid["feature_m2"].mean())
        out.attrs.update(critical_tanh_variance=var_c, feature_m2=m2,
                         inv_sigma_w_tanh_line=boundaries.spin_glass_line(var_c),
                         inv_sigma_w_preactivation_line=boundaries.preactivation_line(m2, var_c))
    return out
