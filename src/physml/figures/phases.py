"""Figures of the phase diagram of learning (inputs: the gathered, analysed grids, one per model)."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm

from physml.phases.classify import PHASES, RULES, cell_phase, classify_runs, spin_glass_verdict
from physml.phases.cuts import NOT_REACHED, WHOLE_CUT

PHASE_COLORS = ("#4c9be8", "#f2a541", "#9b59b6", "#9e9e9e")  # ferro, para, glass, unconverged
PHASE_NAMES = {"ferro": "ferromagnetic (learns)", "para": "paramagnetic", "glass": "spin glass (jammed)",
               "unconverged": "unconverged (neither learned nor jammed)"}
SPIN_GLASS_STYLES = {"inv_sigma_w_tanh_line": ("--", r"paper: $\sigma_W^2 = 1/2$ (tanh density bimodal)"),
                     "inv_sigma_w_preactivation_line": (":", r"physml refinement: $\sigma_W^2\langle a^2\rangle"
                                                             " = 1/2$ (pre-activations)")}


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, extended by half a step at the ends."""
    v = np.log(np.sort(np.asarray(values, dtype=float)))
    if len(v) == 1:
        return np.exp(v[0] + np.array([-0.5, 0.5]))
    mid = 0.5 * (v[1:] + v[:-1])
    return np.exp(np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]]))


def _plane(ax, grid: xr.Dataset, values: xr.DataArray, **kwargs):
    """pcolormesh of a (T, sigma_w) field over the (1/sigma_W, T) plane, log axes."""
    inv = 1 / grid["sigma_w"].values
    order = np.argsort(inv)
    z = values.transpose("T", "sigma_w").values[:, order]
    mesh = ax.pcolormesh(_edges(inv), _edges(grid["T"].values), z, shading="flat", **kwargs)
    ax.set(xscale="log", yscale="log", xlabel=r"$1/\sigma_W$", ylabel=r"$T = \alpha/|B|$")
    return mesh


def _boundaries(ax, grid: xr.Dataset, times: list[int], legend: bool = True):
    """The spin-glass lines (tanh grids only) and the ferro/para lines at each of ``times``:
    ours (drift versus noise, reds) and the authors' criterion (blues); darker = later."""
    for key, (ls, label) in SPIN_GLASS_STYLES.items():
        if key in grid.attrs:
            ax.axvline(grid.attrs[key], color="k", ls=ls, lw=1.5, label=label)
    inv = 1 / grid["sigma_w"].values
    order = np.argsort(inv)
    lines = (("T_ferro_para", plt.cm.Reds, "o", "physml: drift = noise"),
             ("T_ferro_para_authors", plt.cm.Blues, "s", "authors' criterion"))
    for name, cmap, marker, label in lines:
        if name not in grid:
            continue
        for shade, t in zip(cmap(np.linspace(0.45, 1.0, len(times))), times):
            ax.plot(inv[order], grid[name].sel(time=t).values[order], color=shade, marker=marker, ms=3, lw=1.5,
                    label=f"{label} for {grid.attrs['boundary_fraction']:.0%} of runs, {t} steps")
    if legend:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.27))


def _label_phases(ax, grid: xr.Dataset, phase: xr.DataArray):
    for T in grid["T"].values:
        for sw in grid["sigma_w"].values:
            k = int(phase.sel(T=T, sigma_w=sw))
            ax.text(1 / sw, T, PHASES[k][0].upper(), ha="center", va="center", fontsize=7,
                    color="w", weight="bold")


def _title(grid: xr.Dataset, rule: str | None = None) -> str:
    """The grid's model, network, batch size, runs per cell and classification rule (its
    own, or ``rule``)."""
    rule = rule or grid.attrs.get("classification")
    return (f"{grid.attrs.get('model', '')}: {grid.attrs['arch_activation']} "
            f"{grid.attrs['arch_n_in']}-{grid.attrs['arch_n1']}-{grid.attrs['arch_n2']}-1, "
            f"B={grid.attrs['batch_size']}, {grid.sizes['run']} runs/cell"
            + (f", rule {rule}" if rule else ""))


def _times(grid: xr.Dataset, n: int = 4) -> list[int]:
    """Up to n snapshot times (> 0), spread on a log scale, ending at the last one."""
    t = grid["time"].values[grid["time"].values > 0]
    idx = np.unique(np.round(np.linspace(0, len(t) - 1, min(n, len(t)))).astype(int))
    return [int(t[i]) for i in idx]


def plot_phase_diagram(grids: list[xr.Dataset]):
    """Mean test loss over the (1/sigma_W, T) plane at the end of training with the majority
    phase of each cell and the boundaries; beside it the phase map at earlier training lengths."""
    times = _times(grids[0])
    fig, axes = plt.subplots(len(grids), 1 + len(times), squeeze=False,
                             figsize=(5.2 + 2.6 * len(times), 4.4 * len(grids)),
                             gridspec_kw={"width_ratios": [2] + [1] * len(times)})
    cmap = ListedColormap(PHASE_COLORS)
    norm = BoundaryNorm(np.arange(-0.5, len(PHASES)), cmap.N)
    for row, grid in zip(axes, grids):
        final = grid.isel(time=-1)
        loss = final["test_loss"].where(final["diverged"] == 0).mean("run")
        mesh = _plane(row[0], grid, loss, cmap="viridis", norm=LogNorm())
        fig.colorbar(mesh, ax=row[0], label="mean test loss")
        _label_phases(row[0], grid, final["cell_phase"])
        _boundaries(row[0], grid, times)
        verdict = spin_glass_verdict(grid, int(final["time"]))
        verdict = "\n" + textwrap.fill(f"Spin-glass lines: {verdict}.", 80) if verdict else ""
        row[0].set_title(f"{_title(grid)}\nafter {int(final['time'])} steps{verdict}", fontsize=8)
        for ax, t in zip(row[1:], times):
            _plane(ax, grid, grid["cell_phase"].sel(time=t), cmap=cmap, norm=norm)
            _boundaries(ax, grid, [t], legend=False)
            ax.set_title(f"phases after {t} steps", fontsize=9)
            ax.set_ylabel("")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS]
    fig.legend(handles, [f"{p[0].upper()}: {PHASE_NAMES[p]}" for p in PHASES], loc="lower center",
               ncol=len(PHASES), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


OBSERVABLES = (("field_alignment", "alignment with the field h = Z^T y", None),
               ("grad_norm", "gradient norm |dL/dW|", "log"),
               ("overlap_q", "overlap q with the initial features", None),
               ("saturation", r"saturation $\langle s^2\rangle$", None),
               ("overlap_q_authors", "the authors' overlap q_A", None),
               ("sv_top_ratio", r"top singular value / its initial value", "log"),
               ("test_loss_floor_ratio", r"test loss / the floor's (same run, smallest $\sigma_W$)", "log"))


def plot_phase_observables(grids: list[xr.Dataset]):
    """Run-averaged observables at the end of training over the (1/sigma_W, T) plane."""
    fig, axes = plt.subplots(len(grids), len(OBSERVABLES), squeeze=False,
                             figsize=(4.2 * len(OBSERVABLES), 3.8 * len(grids)))
    for row, grid in zip(axes, grids):
        final = grid.isel(time=-1)
        for ax, (name, label, scale) in zip(row, OBSERVABLES):
            values = final[name].median("run") if scale == "log" else final[name].mean("run")
            mesh = _plane(ax, grid, values, cmap="magma", norm=LogNorm() if scale == "log" else None)
            fig.colorbar(mesh, ax=ax)
            _boundaries(ax, grid, [int(final["time"])], legend=False)
            ax.set_title(f"{grid.attrs.get('model', '')}: {label}", fontsize=9)
    fig.suptitle(f"observables after {int(grids[0]['time'][-1])} SGD steps (mean over runs; median for "
                 "the log-scaled ones); "
                 "lines as in fig_phase_diagram", fontsize=10)
    fig.tight_layout()
    return fig


def representative_cells(grid: xr.Dataset) -> dict[str, tuple[float, float]]:
    """For each phase present at the end, the (T, sigma_w) cell with the largest fraction of it."""
    frac = grid["phase_fraction"].isel(time=-1)
    cells = {}
    for phase in PHASES:
        f = frac.sel(phase=phase)
        if float(f.max()) > 0:
            best = f.argmax(dim=("T", "sigma_w"))
            cells[phase] = (float(grid["T"][int(best["T"])]), float(grid["sigma_w"][int(best["sigma_w"])]))
    return cells


def plot_phase_trajectories(grids: list[xr.Dataset], n_runs: int = 3):
    """Singular values of W against SGD steps in one cell of each phase (main model)."""
    grid = grids[0]
    cells = representative_cells(grid)
    fig, axes = plt.subplots(1, len(cells), squeeze=False, figsize=(4.6 * len(cells), 3.9))
    t = grid["time"].values
    for ax, (phase, (T, sw)) in zip(axes[0], cells.items()):
        cell = grid.sel(T=T, sigma_w=sw)
        for r in range(min(n_runs, cell.sizes["run"])):
            sv = cell["singular_values"].isel(run=r).transpose("time", "sv").values
            ax.plot(t, sv, color=f"C{r}", lw=0.8, alpha=0.8)
        frac = float(cell["phase_fraction"].isel(time=-1).sel(phase=phase))
        ax.set(xscale="symlog", yscale="log", xlabel="SGD steps", ylabel="singular values of W",
               title=f"{PHASE_NAMES[phase]}: T={T:g}, $\\sigma_W$={sw:g}\n({frac:.0%} of runs in this phase; "
                     f"{min(n_runs, cell.sizes['run'])} runs, one colour each)")
        ax.set_xscale("symlog", linthresh=10)
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


RULE_STYLES = {"physml": ("C0", "o", 7, "rule physml: loss < {f:g} of the zero output's; cosine q >= {o:g}, <s^2> >= {s:g}"),
               "authors": ("C3", "s", 3, "rule authors: loss < {f:g} of the zero output's; q_A >= {o:g}"),
               "order": ("k", "D", 4, "rule order: loss within {k:g}x the floor; |s_1/s_1(0) - 1| <= {d:g} "
                                      "and q_A >= {o:g}; para at s_1 >= {g:g}x")}
# the boundaries of the study: title, the cut's axis values, the end of the cut where the block sits
STUDY_BOUNDARIES = {"glass": ("spin-glass boundary (edge of the glass block) along $\\sigma_W$", "glass_sigma_w", "high"),
                    "ferro_sigma_w": ("edge of the ferro block along $\\sigma_W$", "glass_sigma_w", "low"),
                    "ferro": ("ferro/para boundary along T", "ferro_T", "low")}


def _rule_label(study: xr.Dataset, rule: str) -> str:
    a = study.attrs
    return RULE_STYLES[rule][3].format(f=a["ferro_max_test_loss"], o=a["glass_min_overlap"], s=a["glass_min_saturation"],
                                       k=a.get("ferro_max_floor_ratio", np.nan), d=a.get("glass_max_sv_drift", np.nan),
                                       g=a.get("para_min_sv_growth", np.nan))


def _with_errors(ax, t, pos, lower, upper, status, x, end: str, colour, marker, size, label, band=None):
    """One boundary against steps: one binomial error as error bars, the bracketing cells as a
    band, open triangles where it is off the cut (``x`` the cut's values, ``end`` the end of
    the cut where the phase's block sits)."""
    keep = t > 0
    ax.errorbar(t[keep], pos[keep], yerr=[(pos - lower)[keep], (upper - pos)[keep]], color=colour, marker=marker,
                ms=size, mfc="none" if size > 4 else colour, capsize=2, lw=1, label=label)
    if band is not None:
        ax.fill_between(t[keep], band[0][keep], band[1][keep], color=colour, alpha=0.12)
    # NOT_REACHED: the phase's block is absent, so the boundary is beyond the cut's `end`
    for code, at_high in ((NOT_REACHED, end == "high"), (WHOLE_CUT, end == "low")):
        _beyond(ax, t[keep & (status == code)], x, at_high, colour)


def _boundary_against_time(ax, study: xr.Dataset, name: str):
    """Measured boundary ``name`` (:data:`STUDY_BOUNDARIES`) against steps under each rule."""
    _, coord, end = STUDY_BOUNDARIES[name]
    t, x = study["time"].values, study[coord].values
    for rule in study["rule"].values:
        colour, marker, size, _ = RULE_STYLES[str(rule)]
        b = study.sel(rule=rule)
        _with_errors(ax, t, b[name].values, b[f"{name}_lower"].values, b[f"{name}_upper"].values,
                     b[f"{name}_status"].values, x, end, colour, marker, size, _rule_label(study, str(rule)),
                     band=(b[f"{name}_bracket_lo"].values, b[f"{name}_bracket_hi"].values))
    ax.set(xscale="log", yscale="log", xlabel="SGD steps")


def _threshold_scan(ax, study: xr.Dataset, name: str, dim: str, label: str):
    """Boundary ``name`` under rule order against steps, one line per value of a threshold."""
    _, coord, end = STUDY_BOUNDARIES[name]
    t, x = study["time"].values, study[coord].values
    var = f"boundary_by_{dim}"
    shades = plt.cm.viridis(np.linspace(0, 0.9, study.sizes[dim]))
    for shade, value in zip(shades, study[dim].values):
        b = study.sel(boundary=name, **{dim: value})
        _with_errors(ax, t, b[var].values, b[f"{var}_lower"].values, b[f"{var}_upper"].values,
                     b[f"{var}_status"].values, x, end, shade, "o", 3, f"{label} = {value:g}")
    ax.set(xscale="log", yscale="log", xlabel="SGD steps")
    ax.legend(fontsize=6, loc="best")


def _beyond(ax, t, x, at_high: bool, colour, **kwargs):
    """Open triangles at the end of a cut (axis values ``x``) at times ``t``: beyond it."""
    ax.plot(t, np.full(len(t), x.max() if at_high else x.min()), ls="none",
            marker="^" if at_high else "v", color=colour, ms=7, mfc="none", **kwargs)


def _cut_map(ax, study: xr.Dataset, name: str, rule: str):
    """Majority phase along a cut (y) against steps (x) under one rule, boundary on top."""
    axis = "sigma_w" if name == "glass" else "T"
    counts = study[f"{name}_counts"].sel(rule=rule)
    t = study["time"].values
    keep = t > 0
    phase = counts.argmax("phase").transpose(f"{name}_{axis}", "time").values[:, keep]
    cmap = ListedColormap(PHASE_COLORS)
    ax.pcolormesh(_edges(t[keep]), _edges(study[f"{name}_{axis}"].values), phase, shading="flat",
                  cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, len(PHASES)), cmap.N))
    ax.plot(t[keep], study[name].sel(rule=rule).values[keep], color="k", marker="o", ms=3, lw=1)
    if name == "glass" and "ferro_sigma_w" in study:
        ax.plot(t[keep], study["ferro_sigma_w"].sel(rule=rule).values[keep], color="w", marker="o", ms=3, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="SGD steps",
           ylabel=r"$\sigma_W$" if axis == "sigma_w" else r"$T = \alpha/|B|$")
    ax.set_title(f"rule {rule}: majority phase along the cut", fontsize=9)


SPIN_GLASS_SOURCES = (("sigma_w_tanh_line", "--", r"paper: $\sigma_W^2 = 1/2$"),
                      ("sigma_w_preactivation_line", ":", r"physml refinement: $\sigma_W^2\langle a^2\rangle = 1/2$"))
FERRO_PARA_SOURCES = (("T_ferro_para_predicted", "--", "physml: drift = noise (Ito + Coulomb)"),
                      ("T_ferro_para_authors_predicted", "-.", "authors' criterion"))


def _spin_glass_lines(ax, study: xr.Dataset):
    for key, ls, label in SPIN_GLASS_SOURCES:
        if key in study.attrs:
            ax.axhline(study.attrs[key], color="k", ls=ls, lw=1.2, label=f"{label} ($\\sigma_W$ = {study.attrs[key]:.2f})")


def _ferro_para_lines(ax, study: xr.Dataset):
    """The predicted ferro/para lines at the T cut's sigma_W, where 68% of runs satisfy each
    criterion; open triangles where a line is off the cut (above or below it)."""
    t = study["time"].values
    for (key, ls, label), frac_name in zip(FERRO_PARA_SOURCES, ("drift_criterion_fraction", "authors_criterion_fraction")):
        if key not in study:
            continue
        ax.plot(t[t > 0], study[key].values[t > 0], color="k", ls=ls, lw=1.2,
                label=f"predicted, {label}: {study.attrs['boundary_fraction']:.0%} of runs")
        frac = study[frac_name].transpose("ferro_T", "time").values
        off = (t > 0) & np.isnan(study[key].values)
        above = (frac >= study.attrs["boundary_fraction"]).all(axis=0)
        for at_high in (True, False):
            _beyond(ax, t[off & (above if at_high else ~above)], study["ferro_T"].values, at_high, "k")


def plot_phase_boundaries(datasets: list[xr.Dataset]):
    """The boundary study (``datasets[0]``, from ``physml phases boundaries``): against training
    steps, under each classification rule, the spin-glass boundary (edge of the glass block
    at large sigma_W) and the edge of the ferro block at small sigma_W along the sigma_W cut,
    beside the predicted lines sigma_W^2 = 1/2 (paper) and sigma_W^2 <a^2> = 1/2 (physml),
    and the ferro/para boundary along the T cut beside the two predicted ferro/para lines
    (ours and the authors'); the majority phase along each cut against steps under each
    rule; the boundaries of rule order against its thresholds (where the study has the
    scans); and, when a gathered grid follows (``datasets[1]``), its diagram at the end of
    training under each rule."""
    study = datasets[0]
    grid = datasets[1] if len(datasets) > 1 else None
    rules = [str(r) for r in study["rule"].values]
    scans = [d for d in ("floor_factor", "sv_growth") if d in study.dims]
    n_rows = 3 + (1 if scans else 0) + (1 if grid is not None else 0)
    fig, axes = plt.subplots(n_rows, 3, figsize=(16, 4.3 * n_rows), squeeze=False)
    for ax, name in zip(axes[0], STUDY_BOUNDARIES):
        _boundary_against_time(ax, study, name)
        if name == "ferro":
            _ferro_para_lines(ax, study)
            ax.set(ylabel="T of the boundary")
            ax.set_title(f"{STUDY_BOUNDARIES[name][0]} at $\\sigma_W$ = {study.attrs['ferro_fixed_sigma_w']:g}", fontsize=9)
        else:
            _spin_glass_lines(ax, study)
            ax.set(ylabel=r"$\sigma_W$ of the boundary")
            ax.set_title(f"{STUDY_BOUNDARIES[name][0]} at T = {study.attrs['glass_fixed_T']:g} "
                         f"(lr {study.attrs['lr_sigma_w_cut']:g})", fontsize=9)
        ax.legend(fontsize=5.5, loc="best")
    for row, name in ((1, "glass"), (2, "ferro")):
        for col, rule in enumerate(rules):
            _cut_map(axes[row, col], study, name, rule)
    row = 3
    if scans:
        if "floor_factor" in scans:
            for col, name in enumerate(("glass", "ferro_sigma_w")):
                _threshold_scan(axes[row, col], study, name, "floor_factor", "rule order, floor factor k")
                axes[row, col].set_title(f"{STUDY_BOUNDARIES[name][0]}: rule order against k", fontsize=9)
        if "sv_growth" in scans:
            _threshold_scan(axes[row, 2], study, "ferro", "sv_growth", "rule order, para growth g")
            axes[row, 2].set_title("ferro/para boundary: rule order against g", fontsize=9)
        row += 1
    if grid is not None:
        final = grid.isel(time=-1)
        keys = ("ferro_max_test_loss", "glass_min_overlap", "glass_min_saturation",
                "ferro_max_floor_ratio", "glass_max_sv_drift", "para_min_sv_growth")
        thresholds = {k: study.attrs[k] for k in keys if k in study.attrs}
        cmap = ListedColormap(PHASE_COLORS)
        for ax, rule in zip(axes[row], rules):
            phase = cell_phase(classify_runs(grid, rule=rule, **thresholds)).isel(time=-1)
            _plane(ax, grid, phase, cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, len(PHASES)), cmap.N))
            _label_phases(ax, grid, phase)
            ax.set_title(f"{_title(grid, rule)}, after {int(final['time'])} steps", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS]
    fig.legend(handles, [f"{p[0].upper()}: {PHASE_NAMES[p]}" for p in PHASES], loc="lower center",
               ncol=len(PHASES), fontsize=8, frameon=False)
    fig.suptitle(f"phase boundaries against training length ({study.attrs['n_runs']} runs per cell; "
                 "error bars: one binomial error; bands: the bracketing cells; open triangles: "
                 "boundary beyond that end of the cut; black lines: the predicted ones, by source)", fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 0.98))
    return fig
