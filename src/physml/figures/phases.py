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
               "unconverged": "unconverged (frozen, unsaturated)"}
SPIN_GLASS_STYLES = {"inv_sigma_w_tanh_line": ("--", r"$\sigma_W^2 = 1/2$ (tanh density bimodal)"),
                     "inv_sigma_w_preactivation_line": (":", r"$\sigma_W^2\langle a^2\rangle = 1/2$ "
                                                             "(pre-activations)")}


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
    """The spin-glass lines (tanh grids only) and the drift-versus-noise ferro/para line at
    each of ``times`` (darker red = later)."""
    for key, (ls, label) in SPIN_GLASS_STYLES.items():
        if key in grid.attrs:
            ax.axvline(grid.attrs[key], color="k", ls=ls, lw=1.5, label=label)
    inv = 1 / grid["sigma_w"].values
    order = np.argsort(inv)
    shades = plt.cm.Reds(np.linspace(0.45, 1.0, len(times)))
    for shade, t in zip(shades, times):
        ax.plot(inv[order], grid["T_ferro_para"].sel(time=t).values[order], color=shade, marker="o",
                ms=3, lw=1.5, label=f"drift = noise for {grid.attrs['boundary_fraction']:.0%} of runs, "
                                    f"{t} steps")
    if legend:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.27))


def _label_phases(ax, grid: xr.Dataset, phase: xr.DataArray):
    for T in grid["T"].values:
        for sw in grid["sigma_w"].values:
            k = int(phase.sel(T=T, sigma_w=sw))
            ax.text(1 / sw, T, PHASES[k][0].upper(), ha="center", va="center", fontsize=7,
                    color="w", weight="bold")


def _title(grid: xr.Dataset) -> str:
    return (f"{grid.attrs.get('model', '')}: {grid.attrs['arch_activation']} "
            f"{grid.attrs['arch_n_in']}-{grid.attrs['arch_n1']}-{grid.attrs['arch_n2']}-1, "
            f"B={grid.attrs['batch_size']}, {grid.sizes['run']} runs/cell")


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
               ("saturation", r"saturation $\langle s^2\rangle$", None))


def plot_phase_observables(grids: list[xr.Dataset]):
    """Run-averaged observables at the end of training over the (1/sigma_W, T) plane."""
    fig, axes = plt.subplots(len(grids), len(OBSERVABLES), squeeze=False,
                             figsize=(4.2 * len(OBSERVABLES), 3.8 * len(grids)))
    for row, grid in zip(axes, grids):
        final = grid.isel(time=-1)
        for ax, (name, label, scale) in zip(row, OBSERVABLES):
            values = final[name].mean("run")
            mesh = _plane(ax, grid, values, cmap="magma", norm=LogNorm() if scale == "log" else None)
            fig.colorbar(mesh, ax=ax)
            _boundaries(ax, grid, [int(final["time"])], legend=False)
            ax.set_title(f"{grid.attrs.get('model', '')}: {label}", fontsize=9)
    fig.suptitle(f"observables after {int(grids[0]['time'][-1])} SGD steps (mean over runs); "
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


RULE_STYLES = {"physml": ("C0", "o", 7, "rule physml: cosine q >= {o:g} and <s^2> >= {s:g}"),
               "authors": ("C3", "s", 3, "rule authors: unnormalised q_A >= {o:g}")}


def _boundary_against_time(ax, study: xr.Dataset, name: str, end: str):
    """Measured boundary ``name`` against steps under each rule: one binomial error as error
    bars, the bracketing cells as a band, and arrows where the boundary is off the cut
    (``end``: the end of the cut where the phase's block sits)."""
    t = study["time"].values
    keep = t > 0
    x = study[f"{name}_{'sigma_w' if name == 'glass' else 'T'}"].values
    for rule in study["rule"].values:
        colour, marker, size, label = RULE_STYLES[str(rule)]
        b = study.sel(rule=rule)
        pos = b[name].values
        ax.errorbar(t[keep], pos[keep], yerr=[(pos - b[f"{name}_lower"].values)[keep],
                                              (b[f"{name}_upper"].values - pos)[keep]],
                    color=colour, marker=marker, ms=size, mfc="none" if size > 4 else colour, capsize=2, lw=1,
                    label=label.format(o=study.attrs["glass_min_overlap"], s=study.attrs["glass_min_saturation"]))
        ax.fill_between(t[keep], b[f"{name}_bracket_lo"].values[keep], b[f"{name}_bracket_hi"].values[keep],
                        color=colour, alpha=0.12, step=None)
        status = b[f"{name}_status"].values
        # NOT_REACHED: the phase's block is absent, so the boundary is beyond the cut's `end`
        for code, at_high in ((NOT_REACHED, end == "high"), (WHOLE_CUT, end == "low")):
            sel = keep & (status == code)
            _beyond(ax, t[sel], x, at_high, colour)
    ax.set(xscale="log", yscale="log", xlabel="SGD steps")


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
    ax.set(xscale="log", yscale="log", xlabel="SGD steps",
           ylabel=r"$\sigma_W$" if axis == "sigma_w" else r"$T = \alpha/|B|$")
    ax.set_title(f"rule {rule}: majority phase along the cut", fontsize=9)


def plot_phase_boundaries(datasets: list[xr.Dataset]):
    """The boundary study (``datasets[0]``, from ``physml phases boundaries``): the spin-glass
    boundary along sigma_W and the ferro/para boundary along T against training steps under
    each classification rule, beside the predicted lines; the majority phase along each cut
    against steps under each rule; and, when a gathered grid follows (``datasets[1]``), its
    diagram at the end of training under each rule."""
    study = datasets[0]
    grid = datasets[1] if len(datasets) > 1 else None
    rows = 4 if grid is not None else 3
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4.0 * rows))
    ax = axes[0, 0]
    _boundary_against_time(ax, study, "glass", "high")
    for key, ls, label in (("sigma_w_preactivation_line", ":", r"predicted $\sigma_W^2\langle a^2\rangle = 1/2$"),
                           ("sigma_w_tanh_line", "--", r"predicted $\sigma_W^2 = 1/2$")):
        if key in study.attrs:
            ax.axhline(study.attrs[key], color="k", ls=ls, lw=1.2, label=f"{label} ($\\sigma_W$ = {study.attrs[key]:.2f})")
    ax.set(ylabel=r"$\sigma_W$ of the spin-glass boundary")
    ax.set_title(f"spin-glass boundary along $\\sigma_W$ at T = {study.attrs['glass_fixed_T']:g} "
                 f"(lr {study.attrs['lr_sigma_w_cut']:g})", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    ax = axes[0, 1]
    _boundary_against_time(ax, study, "ferro", "low")
    t = study["time"].values
    ax.plot(t[t > 0], study["T_ferro_para_predicted"].values[t > 0], color="k", ls="--", lw=1.2,
            label=f"predicted: drift = noise for {study.attrs['boundary_fraction']:.0%} of runs")
    if "drift_criterion_fraction" in study:  # the predicted line off the cut: above or below it
        frac = study["drift_criterion_fraction"].transpose("ferro_T", "time").values
        off = (t > 0) & np.isnan(study["T_ferro_para_predicted"].values)
        above = (frac >= study.attrs["boundary_fraction"]).all(axis=0)
        for at_high in (True, False):
            sel = off & (above if at_high else ~above)
            _beyond(ax, t[sel], study["ferro_T"].values, at_high, "k")
    ax.set(ylabel="T of the ferro/para boundary")
    ax.set_title(f"ferro/para boundary along T at $\\sigma_W$ = {study.attrs['ferro_fixed_sigma_w']:g}", fontsize=9)
    ax.legend(fontsize=6, loc="upper left")
    for row, name in ((1, "glass"), (2, "ferro")):
        for col, rule in enumerate(RULES):
            _cut_map(axes[row, col], study, name, rule)
    if grid is not None:
        final = grid.isel(time=-1)
        keys = ("ferro_max_test_loss", "glass_min_overlap", "glass_min_saturation")
        thresholds = {k: study.attrs[k] for k in keys}
        cmap = ListedColormap(PHASE_COLORS)
        for ax, rule in zip(axes[3], RULES):
            phase = cell_phase(classify_runs(grid, rule=rule, **thresholds)).isel(time=-1)
            _plane(ax, grid, phase, cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, len(PHASES)), cmap.N))
            _label_phases(ax, grid, phase)
            ax.set_title(f"rule {rule}: {_title(grid)}, after {int(final['time'])} steps", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS]
    fig.legend(handles, [f"{p[0].upper()}: {PHASE_NAMES[p]}" for p in PHASES], loc="lower center",
               ncol=len(PHASES), fontsize=8, frameon=False)
    fig.suptitle(f"phase boundaries against training length ({study.attrs['n_runs']} runs per cell; "
                 "error bars: one binomial error; bands: the bracketing cells; open triangles: "
                 "boundary beyond that end of the cut, black: the predicted line)", fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 0.98))
    return fig
