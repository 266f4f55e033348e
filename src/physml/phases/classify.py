"""Phase of each run and each grid cell (thresholds from the config's ``phases.classify``).

A run at a given training time is

- **ferromagnetic** (learns) when its relative test loss (test loss / loss of the zero
  output, ``test_loss_rel``) is below ``ferro_max_test_loss``;
- otherwise **spin-glass / jammed** when its features stayed close to their initial values,
  overlap ``q >= glass_min_overlap`` (large sigma_W: saturated features, tiny gradients, the
  loss stays high without diverging);
- otherwise **paramagnetic** (the noise wins: the loss fluctuates and the features decorrelate
  from their initial values).  Divergent runs count as paramagnetic (no convergence); with
  tanh the output is bounded by sum |Z_i|, so the loss cannot blow up and divergence alone
  never separates this phase.

A cell's phase is the majority phase of its runs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

PHASES = ("ferro", "para", "glass")
FERRO, PARA, GLASS = range(3)


def classify_runs(grid: xr.Dataset, ferro_max_test_loss: float = 0.1,
                  glass_min_overlap: float = 0.5) -> xr.DataArray:
    """Phase code (0 ferro, 1 para, 2 glass) of every run at every time, dims like ``test_loss``."""
    if not 0 < ferro_max_test_loss:
        raise ValueError(f"ferro_max_test_loss must be > 0, got {ferro_max_test_loss}")
    if not 0 <= glass_min_overlap <= 1:
        raise ValueError(f"glass_min_overlap must lie in [0, 1], got {glass_min_overlap}")
    learns = grid["test_loss_rel"] < ferro_max_test_loss
    frozen = grid["overlap_q"] >= glass_min_overlap
    diverged = grid["diverged"].astype(bool)
    code = xr.where(learns & ~diverged, FERRO, xr.where(frozen & ~diverged, GLASS, PARA))
    return code.astype(np.int8).rename("phase_run").assign_attrs(
        long_name="phase of the run", flag_values="0 1 2", flag_meanings=" ".join(PHASES))


def phase_fractions(run_phase: xr.DataArray) -> xr.DataArray:
    """Fraction of runs in each phase: dims of ``run_phase`` without ``run``, plus ``phase``."""
    fr = xr.concat([(run_phase == k).mean("run") for k in range(len(PHASES))], dim="phase")
    return fr.assign_coords(phase=list(PHASES)).rename("phase_fraction").assign_attrs(
        long_name="fraction of runs in each phase")


def cell_phase(run_phase: xr.DataArray) -> xr.DataArray:
    """Majority phase of each cell (ties go to the lower code: ferro, then para)."""
    return phase_fractions(run_phase).argmax("phase").astype(np.int8).rename("cell_phase").assign_attrs(
        long_name="majority phase of the cell", flag_values="0 1 2", flag_meanings=" ".join(PHASES))


def analyse_grid(grid: xr.Dataset, ferro_max_test_loss: float = 0.1, glass_min_overlap: float = 0.5,
                 boundary_fraction: float = 0.68) -> xr.Dataset:
    """The grid with its phases and semi-analytic boundaries added (the gather step).

    Adds ``phase_run`` (T, sigma_w, run, time), ``phase_fraction`` and ``cell_phase`` (majority)
    per cell and time, ``drift_criterion_fraction`` (T, sigma_w, time) and ``T_ferro_para``
    (sigma_w, time), and attributes with the spin-glass lines
    in 1/sigma_W: ``inv_sigma_w_tanh_line`` (sigma_W^2 = sigma_c^2 = 1/2) and
    ``inv_sigma_w_preactivation_line`` (sigma_W^2 <a^2> = sigma_c^2, <a^2> measured)."""
    from physml.phases import boundaries

    out = grid.copy()
    out["phase_run"] = classify_runs(grid, ferro_max_test_loss, glass_min_overlap)
    out["phase_fraction"] = phase_fractions(out["phase_run"])
    out["cell_phase"] = cell_phase(out["phase_run"])
    out["drift_criterion_fraction"] = boundaries.criterion_fraction(grid)
    out["T_ferro_para"] = boundaries.ferro_para_line(grid, boundary_fraction)
    var_c = boundaries.critical_tanh_variance()
    m2 = float(grid["feature_m2"].mean())
    out.attrs.update(
        ferro_max_test_loss=float(ferro_max_test_loss), glass_min_overlap=float(glass_min_overlap),
        boundary_fraction=float(boundary_fraction), critical_tanh_variance=var_c,
        feature_m2=m2, inv_sigma_w_tanh_line=boundaries.spin_glass_line(var_c),
        inv_sigma_w_preactivation_line=boundaries.preactivation_line(m2, var_c))
    return out
