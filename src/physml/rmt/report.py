"""The measured numbers of docs/rmt.md, written from the result files so that they cannot drift.

docs/rmt.md holds blocks between ``<!-- rmt:NAME -->`` and ``<!-- /rmt:NAME -->``; each is
rendered here from ``results/`` (:data:`BLOCKS`).  ``physml rmt report`` writes the rendered
blocks to ``--out`` (the rule ``rmt_docs`` does, after the DAG), ``--compare DOC`` reports every
block of DOC that differs from them, and ``--write DOC`` puts them into DOC.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import xarray as xr

from physml.rmt import spectra as sp

MODELS = (("linear", "linear teacher-student"), ("mlp_online", "MLP, fresh noisy batches"),
          ("rbm", "Gaussian RBM"))
MARKER = re.compile(r"<!-- rmt:(\w+) -->\n(.*?)<!-- /rmt:\1 -->", re.S)


def pm(value: float, err: float) -> str:
    """``value +- err`` with the error to two significant digits."""
    if not (np.isfinite(value) and np.isfinite(err)) or err <= 0:
        return f"{value:.4g} +- {err:.2g}"
    digits = max(0, 1 - math.floor(math.log10(err)))
    return f"{value:.{digits}f} +- {err:.{digits}f}"


def _open(path: Path) -> xr.Dataset:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (run the DAG: snakemake --cores all)")
    with xr.open_dataset(path) as ds:
        return ds.load()


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def temperature(results: Path) -> str:
    """Per grid: T_eff against lr/B and the finite-lr variable, the lr/B-alone test, the
    Coulomb-gas fit."""
    rows = []
    for model, label in MODELS:
        t = _open(results / "rmt" / model / "temperature.nc")
        f = json.loads(t.attrs["fits"])
        line, sc = f["lr_over_B"], f["scaling"]
        fin = f.get("finite_lr")
        cg = f.get("coulomb")
        exp = line["expected_slope"]
        rows.append([
            f"{label} ({t.sizes['point']} points)",
            pm(line["slope"], line["slope_err"]) + (f" ({exp:g})" if exp is not None else ""),
            pm(line["intercept"] * 1e4, line["intercept_err"] * 1e4), f"{line['chi2_dof']:.2f}",
            (pm(fin["slope"], fin["slope_err"]) + f" ({fin['expected_slope']:g}), {fin['chi2_dof']:.2f}") if fin else "-",
            f"{sc['collapse_chi2_dof']:.2f} (p = {sc['collapse_p']:.2g}), largest residual "
            f"{sc['max_abs_z']:.1f} sd at lr {sc['worst_lr']:g}, B {sc['worst_batch']:g}",
            f"{pm(sc['lr_coef'], sc['lr_coef_err'])} ({sc['lr_coef_z']:+.1f} sd)",
            "no: T depends on lr at fixed lr/B" if abs(sc["lr_coef_z"]) >= 3 else "not rejected (lr term < 3 sd)",
            (f"{pm(cg['slope'], cg['slope_err'])}, beta {pm(cg['beta_mean'], cg['beta_mean_err'])}") if cg else "-"])
    return _table(["grid", "slope vs lr/B (small-lr value)", "intercept x 1e4", "chi^2/dof",
                   "slope vs finite-lr variable (expected), chi^2/dof", "collapse in lr/B: chi^2/dof",
                   "lr term g", "lr/B alone sets T?", "Coulomb gas: T slope, beta"], rows)


def grid_points(results: Path) -> str:
    """T_eff / (lr/B) of every point of every grid, with the diagnostics of each model."""
    lines = []
    for model, label in MODELS:
        t = _open(results / "rmt" / model / "temperature.nc")
        x = t["lr_over_B"].values
        parts = []
        for i in range(t.sizes["point"]):
            item = f"{float(t['lr'][i]):g}/{int(t['batch'][i])}: {pm(float(t['T_eff'][i] / x[i]), float(t['T_eff_err'][i] / x[i]))}"
            if "T_eff_halves" in t:
                a, b = t["T_eff_halves"].values[i] / float(t["T_eff"][i])
                item += f" (halves {a:.2f}, {b:.2f} of it)"
            parts.append(item)
        extra = ""
        if "closed_form" in t:
            extra = (f"; entry variance vs closed form: max |z| = "
                     f"{json.loads(t.attrs['fits'])['entry_over_closed_form_max_abs_z']:.2f}")
        if "T_linearised" in t:
            ratio = t["T_eff"].values / t["T_linearised"].values
            extra = f"; T_eff / linearised prediction {ratio.min():.3f} to {ratio.max():.3f}"
        if "diverged_runs" in t and int(t["diverged_runs"].sum()):
            extra += f"; {int(t['diverged_runs'].sum())} runs diverged"
        lines.append(f"* {label}, T_eff / (lr/B) at lr/B: " + "; ".join(parts) + extra)
    return "\n".join(lines) + "\n"


def dbm_check(results: Path) -> str:
    d = _open(results / "rmt" / "dbm" / "dbm.nc")
    rows = []
    for p in d["process"].values:
        c = d.sel(process=p)
        rows.append([str(p), str(int(c["cg_n_spectra"])), f"{float(c['cg_density_p']):.3f}",
                     f"{float(c['cg_ratio_p']):.3f}",
                     f"{pm(float(c['cg_ratio_mean']), float(c['cg_ratio_mean_err']))} "
                     f"(GOE {float(c['cg_ratio_mean_goe']):.4f})",
                     f"{float(c['cg_mean_square']):.4f} ({float(c['cg_mean_square_exact']):.4f})"])
    head = (f"n = {int(d.attrs['n'])}, T = {', '.join(f'{v:g}' for v in d['T'].values)}, dt = {d.attrs['dt']:g}, "
            f"dt_sde = {d.attrs['dt_sde']:g}\n\n")
    return head + _table(["process", "spectra", "density p", "ratio-law p", "<r> (finite-n GOE)",
                          "<lambda^2>/T (exact 1 + 1/n)"], rows)


def transformer_spectra(results: Path) -> str:
    s = _open(results / "rmt" / "transformer" / "spectra.nc")
    rn, rs = float(s["spacing_ratio_null_mean"]), float(s["spacing_ratio_null_std"])
    rows = []
    for i in (0, s.sizes["step"] - 1):
        r = s["spacing_ratio"].values[i]
        inside = np.mean(np.abs(r - rn) < 2 * rs)
        for var, what in (("spacing_ratio_mean", "all levels"), ("spacing_ratio_bulk_mean", "bulk")):
            m, e = float(s[var][i]), float(s[f"{var}_err"][i])
            rows.append([str(int(s["step"][i])), what, pm(m, e), f"{(m - sp.GOE_MEAN_R) / e:+.1f}",
                         f"{(m - sp.POISSON_MEAN_R) / e:+.1f}", f"{(m - rn) / e:+.1f}",
                         f"{int(s['n_outliers'][i].sum())}" if what == "bulk" else f"{100 * inside:.0f}%"])
    head = (f"MP departure from step {s.attrs['mp_departure_step']} (bulk without each top eigenvalue: "
            f"{s.attrs['mp_departure_step_bulk']}; an outlier from {s.attrs['mp_outlier_step']}).  "
            f"Outlier cut x > {s.attrs['outlier_cut']:.3f}; one head's <r> has the error "
            f"std(r)/sqrt(14) x {s.attrs['spacing_ratio_err_factor']:.2f}; iid 64 x 16: <r> = {rn:.4f} "
            f"(sd of one matrix {rs:.4f}).\n\n")
    return head + _table(["step", "levels", "<r> over 48 heads", "z vs GOE 0.5307", "z vs Poisson 0.3863",
                          "z vs iid", "heads within 2 sd of iid / outliers"], rows)


def transformer_tails(results: Path) -> str:
    t = _open(results / "rmt" / "transformer" / "tails.nc")
    last = int(t["step"][-1])
    rows = []
    for kind in "qkv":
        c = t.sel(matrix=kind, step=last)
        pl = c.sel({"method": "powerlaw"})
        rows.append([f"W_{kind.upper()}", pm(float(pl["alpha"]), float(pl["alpha_err"])),
                     f"{float(pl['xmin']):.3g}", f"{int(pl['n_tail'])}", f"{float(pl['p_value']):.2f}",
                     f"{float(c['R_exponential']):+.2f} ({float(c['p_exponential']):.2f})",
                     f"{float(c['R_lognormal']):+.2f} ({float(c['p_lognormal']):.2f})",
                     "yes" if int(c["xmin_at_floor"]) else "no", "yes" if int(c["supported"]) else "no",
                     pm(float(c.sel({"method": "weightwatcher"})['alpha']), float(c.sel({"method": "weightwatcher"})['alpha_err'])),
                     pm(float(c.sel({"method": "hill"})['alpha']), float(c.sel({"method": "hill"})['alpha_err']))])
    supported = []
    for kind in "qkv":
        ok = np.flatnonzero(t["supported"].sel(matrix=kind).values)
        floor = t["xmin_at_floor"].sel(matrix=kind).values
        steps = ", ".join(f"{int(t['step'][i])}{' (floor)' if floor[i] else ''}" for i in ok) or "none"
        supported.append(f"W_{kind.upper()}: {steps}")
    return (_table(["pooled", "CSN alpha", "x_min", "n_tail / 256", "GoF p", "R vs exp (p)", "R vs lognormal (p)",
                    "x_min at floor", "supported", "weightwatcher", "Hill"], rows)
            + f"\nStep {last}.  Supported tails (steps; floor: x_min at the search floor): "
            + "; ".join(supported) + ".\n")


def _benchmarks(results: Path) -> dict[str, float]:
    """CPU seconds (Snakemake benchmark ``cpu_time``) of every RMT job, by job."""
    out = {}
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = path.relative_to(results / "benchmarks").as_posix()
        if not (rel.startswith("rmt/") or rel.startswith("figures/fig_rmt")):
            continue
        with open(path) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        out[rel.removesuffix(".tsv")] = float(row["cpu_time"])
    return out


def cpu_times(results: Path) -> str:
    """CPU time of the RMT jobs of the last run, by group."""
    jobs = _benchmarks(results)
    if not jobs:
        raise FileNotFoundError(f"{results / 'benchmarks'}: no RMT benchmark files (run the DAG)")
    groups: dict[str, list[float]] = {}
    for name, t in jobs.items():
        parts = name.split("/")
        grid = parts[0] == "rmt" and len(parts) == 3 and parts[2].startswith("lr")
        groups.setdefault(f"{parts[1]} grid" if grid else name, []).append(t)
    rows = [[f"{k} ({len(v)} jobs)" if len(v) > 1 else k, f"{sum(v):.1f}"] for k, v in sorted(groups.items())]
    rows.append(["total", f"{sum(jobs.values()):.1f}"])
    return _table(["RMT jobs", "CPU s"], rows)


BLOCKS = {"temperature": temperature, "grid_points": grid_points, "dbm_check": dbm_check,
          "transformer_spectra": transformer_spectra, "transformer_tails": transformer_tails,
          "cpu_times": cpu_times}


def render(results: Path) -> dict[str, str]:
    """Every block of :data:`BLOCKS`, rendered from ``results``."""
    return {name: fn(Path(results)) for name, fn in BLOCKS.items()}


def doc_blocks(text: str) -> dict[str, str]:
    """The marker blocks of a document, by name."""
    return {m.group(1): m.group(2) for m in MARKER.finditer(text)}


def update(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each marker block replaced by ``blocks[name]``; a name missing from
    either side is an error."""
    have = doc_blocks(text)
    if set(have) != set(blocks):
        raise ValueError(f"the document's blocks {sorted(have)} are not the rendered ones {sorted(blocks)}")
    return MARKER.sub(lambda m: f"<!-- rmt:{m.group(1)} -->\n{blocks[m.group(1)]}<!-- /rmt:{m.group(1)} -->", text)


def stale_blocks(text: str, blocks: dict[str, str]) -> list[str]:
    """Names of the rendered blocks that the document ``text`` holds otherwise (or lacks)."""
    have = doc_blocks(text)
    return [k for k in blocks if have.get(k) != blocks[k]]
