"""Figures of the phi^4 diffusion model: the backward process and HMC vs DM."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from physml.figures.phi4 import format_value

TABLE_COLUMNS = (("abs_mag", "<|phibar|>"), ("chi2", "chi_2"), ("binder", "U_L"),
                 ("action_density", "<S>/V"))
# colour per source, line style per lattice (trained L solid, larger L dashed)
COLORS = {"hmc": "k", "hmc_train": "0.5", "dm": "C3", "dm_mala": "C0", "mala_only": "C1", "law_only": "C2"}
LINES = ("-", "--", ":")
GENERATED = ("dm", "law_only", "dm_mala", "mala_only")   # compared with HMC in the table


def plot_phi4_denoising(ensembles: list[xr.Dataset]):
    """One configuration per generated ensemble (rows, broken phase first) at the
    snapshot fractions tau of the backward process (columns, noise -> sample)."""
    ensembles = [e for e in ensembles if "snapshot" in e]
    if not ensembles:
        raise ValueError("fig_phi4_denoising needs generated ensembles with a 'snapshot' variable")
    ensembles = sorted(ensembles, key=lambda d: -float(d.attrs["kappa"]))
    taus = ensembles[0]["tau"].values
    fig, axes = plt.subplots(len(ensembles), len(taus), figsize=(2.1 * len(taus) + 0.8, 2.2 * len(ensembles)),
                             squeeze=False)
    for i, (row, ds) in enumerate(zip(axes, ensembles)):
        snaps = ds["snapshot"].isel(snapshot_config=0).values
        vmax = float(np.abs(snaps[-1]).max()) or 1.0
        for j, ax in enumerate(row):
            im = ax.imshow(snaps[j], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"tau={taus[j]:g}  (sigma={float(ds['snapshot_sigma'].values[j]):.3g})",
                             fontsize=8)
            if j == 0:
                ax.set_ylabel(f"kappa={float(ds.attrs['kappa']):g}\nL={int(ds.attrs['L'])}", fontsize=9)
        fig.colorbar(im, ax=list(row), shrink=0.8, label=r"$\phi$")
    fig.suptitle("Backward process of the score model: noise (tau=0) to sample (tau=1); "
                 "in the broken phase large clusters emerge\n(colour range per row: that of the "
                 "final sample; earlier snapshots saturate)", fontsize=10)
    return fig


def _split(datasets):
    table = next((d for d in datasets if "row" in d.dims), None)
    obs = [d for d in datasets if "row" not in d.dims]
    return table, obs


def _pull_cell(table: xr.Dataset, name: str, L: int, kappa: float, source: str) -> str:
    sel = (table["observable"] == name) & (table["L"] == L) & np.isclose(table["kappa"], kappa)
    rows = table.where(sel, drop=True)
    hmc = rows.where(rows["source"] == "hmc", drop=True)
    dm = rows.where(rows["source"] == source, drop=True)
    if not len(hmc["row"]) or not len(dm["row"]):
        return "-"
    return (f"{format_value(float(dm['value'][0]), float(dm['error'][0]))} vs "
            f"{format_value(float(hmc['value'][0]), float(hmc['error'][0]))} "
            f"[{float(dm['pull'][0]):+.1f}σ]")


def _dm_value(table, name, L, kappa, source, fmt="{:.3f}"):
    sel = ((table["observable"] == name) & (table["L"] == L) & np.isclose(table["kappa"], kappa)
           & (table["source"] == source))
    rows = table.where(sel, drop=True)
    return fmt.format(float(rows["value"][0])) if len(rows["row"]) else "-"


def plot_phi4_hmc_vs_dm(datasets: list[xr.Dataset]):
    """Per kappa (columns): histograms of phibar and of S/V, and G(r) of HMC (the
    independent reference), the raw DM, its network-free law (law only), DM + MALA and the
    MALA-only control, at the trained L (solid) and the larger L (dashed); below, the
    comparison table with the deviation of each from HMC in combined sigma."""
    table, obs = _split(datasets)
    kappas = sorted({round(float(d.attrs["kappa"]), 10) for d in obs})
    Ls = sorted({int(d.attrs["L"]) for d in obs})
    sources = [s for s in GENERATED if any(d.attrs["source"] == s for d in obs)]
    points = [(k, L, s) for k in kappas for L in Ls for s in sources]
    fig = plt.figure(figsize=(max(15.0, 4.6 * len(kappas)), 10.5 + 0.33 * len(points)))
    grid = fig.add_gridspec(4, len(kappas), height_ratios=[3, 3, 3, 0.6 + 0.42 * len(points)])
    for col, kappa in enumerate(kappas):
        ax_p, ax_s, ax_g = (fig.add_subplot(grid[i, col]) for i in range(3))
        ref = [d["action_per_site"].values for d in obs if "action_per_site" in d
               and d.attrs["source"] == "hmc" and np.isclose(float(d.attrs["kappa"]), kappa)]
        s_range = None
        if ref:  # the HMC range, widened: a bad model's outliers must not squash the histogram
            lo, hi = min(r.min() for r in ref), max(r.max() for r in ref)
            s_range = (lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))
        for ds in obs:
            if not np.isclose(float(ds.attrs["kappa"]), kappa):
                continue
            src, L = str(ds.attrs["source"]), int(ds.attrs["L"])
            style = dict(color=COLORS.get(src), ls=LINES[Ls.index(L) % len(LINES)])
            label = f"{src} L={L}"
            ax_p.hist(ds["phibar"].values, bins=50, density=True, histtype="step", label=label, **style)
            if "action_per_site" in ds:
                ax_s.hist(ds["action_per_site"].values, bins=50, range=s_range, density=True,
                          histtype="step", label=label, **style)
            ax_g.errorbar(ds["r"].values, ds["G"].values, yerr=ds["G_err"].values, marker="o", ms=2.5,
                          capsize=2, label=label, **style)
        ax_p.set(title=f"kappa = {kappa:g}", xlabel=r"$\bar\phi$", ylabel="density")
        ax_s.set(xlabel="S/V (range: HMC's, widened by half)", ylabel="density")
        ax_g.set(xlabel="r", ylabel="connected G(r)")
        ax_g.set_yscale("symlog", linthresh=1e-3)
        for ax in (ax_p, ax_s, ax_g):
            ax.legend(fontsize=7)
    ax_t = fig.add_subplot(grid[3, :])
    ax_t.axis("off")
    if table is not None:
        rows = []
        for kappa, L, src in points:
            rows.append([f"{kappa:g}", str(L), src]
                        + [_pull_cell(table, name, L, kappa, src) for name, _ in TABLE_COLUMNS]
                        + [_dm_value(table, "frac_phibar_pos", L, kappa, src),
                           _dm_value(table, "action_hist_ks_pvalue", L, kappa, src, "{:.2g}")])
        cols = (["kappa", "L", "source"] + [f"{label}: vs HMC [pull]" for _, label in TABLE_COLUMNS]
                + ["f(phibar>0)", "KS p (S/V)"])
        tab = ax_t.table(cellText=rows, colLabels=cols, loc="center", cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(7)
        tab.auto_set_column_width(list(range(len(cols))))
        tab.scale(1, 1.4)
        ax_t.set_title("raw DM, its network-free law (law_only), DM + MALA and the MALA-only control "
                       "(same MALA steps from a trivial start) against an independent HMC ensemble: "
                       "value(error), deviation in combined sigma", fontsize=9)
    fig.tight_layout()
    return fig


MALA_OBSERVABLES = (("abs_mag", "<|phibar|>"), ("chi2", "chi_2"), ("binder", "U_L"),
                    ("action_density", "<S>/V"))


def _trace_estimates(phibar: np.ndarray, action: np.ndarray, volume: int, blocks: int = 16):
    """(value, jackknife error) of each observable of :data:`MALA_OBSERVABLES` from
    independent configurations' phibar and action (1-D arrays)."""
    def values(p, a):
        p2, p4 = np.mean(p ** 2), np.mean(p ** 4)
        return np.array([np.mean(np.abs(p)), volume * (p2 - np.mean(p) ** 2), 1 - p4 / (3 * p2 ** 2),
                         np.mean(a) / volume])
    full = values(phibar, action)
    idx = np.array_split(np.arange(len(phibar)), min(blocks, len(phibar)))
    jack = np.array([values(np.delete(phibar, i), np.delete(action, i)) for i in idx])
    err = np.sqrt((len(idx) - 1) * np.mean((jack - jack.mean(0)) ** 2, axis=0))
    return full, err


def plot_phi4_mala_steps(datasets: list[xr.Dataset]):
    """Pull against HMC of <|phibar|>, chi_2, U_L and <S>/V after each number of MALA steps
    (warm-up included), for the DM start (dm_mala) and the trivial start (mala_only) at
    every kappa and L: where the DM start reaches |pull| < 3 in fewer steps, that is what
    the model contributes."""
    hmc = {(float(d.attrs["kappa"]), int(d.attrs["L"])): d for d in datasets
           if d.attrs.get("source") == "hmc" and "abs_mag" in d}
    runs = [d for d in datasets if "mala_trace_phibar" in d]
    if not runs or not hmc:
        raise ValueError("fig_phi4_mala_steps needs dm_mala / mala_only ensembles with MALA traces "
                         "and the HMC observables at the same (kappa, L)")
    points = sorted({(float(d.attrs["kappa"]), int(d.attrs["L"])) for d in runs})
    fig, axes = plt.subplots(len(MALA_OBSERVABLES), len(points), figsize=(3.0 * len(points) + 1, 9),
                             squeeze=False, sharex=True)
    for j, (kappa, L) in enumerate(points):
        ref = hmc.get((kappa, L))
        for d in runs:
            if (float(d.attrs["kappa"]), int(d.attrs["L"])) != (kappa, L) or ref is None:
                continue
            steps = np.maximum(d["mala_trace_step"].values, 0.5)   # step 0 drawn at 0.5 on a log axis
            est = [_trace_estimates(p, a, L * L) for p, a in
                   zip(d["mala_trace_phibar"].values, d["mala_trace_action"].values)]
            src = d.attrs["source"]
            for i, (name, label) in enumerate(MALA_OBSERVABLES):
                value = np.array([e[0][i] for e in est])
                err = np.array([e[1][i] for e in est])
                pull = (value - float(ref[name])) / np.sqrt(err ** 2 + float(ref[f"{name}_err"]) ** 2)
                ax = axes[i, j]
                ax.plot(steps, pull, "o-", ms=3, color=COLORS.get(src, "C7"), label=src)
                ax.axhspan(-3, 3, color="0.9", zorder=0)
                ax.set_xscale("log")
                ax.set_yscale("symlog", linthresh=3)
                if j == 0:
                    ax.set_ylabel(f"pull of {label}")
                if i == 0:
                    ax.set_title(f"kappa={kappa:g}, L={L}", fontsize=9)
                if i == len(MALA_OBSERVABLES) - 1:
                    ax.set_xlabel("MALA steps (0 plotted at 0.5)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Pull against HMC after each number of MALA steps: DM start (dm_mala) and "
                 "trivial start (mala_only); grey band |pull| < 3", fontsize=10)
    fig.tight_layout()
    return fig


def _exact_points(datasets, source):
    """(kappa, L, n_steps, the ensemble) of every ensemble of ``source`` with a density."""
    out = []
    for d in datasets:
        if d.attrs.get("source") == source and d.attrs.get("density"):
            steps = int(json.loads(d.attrs["sampler_json"])["n_steps"])
            out.append((float(d.attrs["kappa"]), int(d.attrs["L"]), steps, d))
    return out


def plot_phi4_exact_dm(datasets: list[xr.Dataset]):
    """The model as an exact sampler: Kish ESS/N of the importance weights and the
    independence Metropolis acceptance of the proposals (with their Jacobian density),
    against kappa at every L (the sampler's default steps), and against the number of
    sampler steps where a sweep was run.  1 = the model is the target; ESS/N ~ exp(-var log w)."""
    proposals = _exact_points(datasets, "dm_q")
    chains = {(k, L, n): d for k, L, n, d in _exact_points(datasets, "dm_imh")}
    if not proposals:
        raise ValueError("fig_phi4_exact_dm needs dm_q ensembles with a density (physml diffusion sample --density)")
    fig, (ax_k, ax_n) = plt.subplots(1, 2, figsize=(11, 4.2))
    common = max({n for _, _, n, _ in proposals}, key=lambda n: sum(p[2] == n for p in proposals))
    for i, L in enumerate(sorted({p[1] for p in proposals})):
        pts = sorted((k, d) for k, L2, n, d in proposals if L2 == L and n == common)
        ks = [k for k, _ in pts]
        ax_k.plot(ks, [float(d.attrs["ess_fraction"]) for _, d in pts], "o-", color=f"C{i}",
                  label=f"ESS/N, L={L}")
        acc = [float(chains[(k, L, common)].attrs["imh_acceptance"]) if (k, L, common) in chains else np.nan
               for k in ks]
        ax_k.plot(ks, acc, "s--", color=f"C{i}", label=f"IMH acceptance, L={L}")
    ax_k.set(xlabel="kappa", ylabel="fraction", ylim=(0, 1.05),
             title=f"against kappa ({common} sampler steps)")
    for i, (k, L) in enumerate(sorted({(p[0], p[1]) for p in proposals})):
        pts = sorted((n, d) for k2, L2, n, d in proposals if (k2, L2) == (k, L))
        if len(pts) < 2:
            continue
        ns = [n for n, _ in pts]
        ax_n.plot(ns, [float(d.attrs["ess_fraction"]) for _, d in pts], "o-", color=f"C{i}",
                  label=f"ESS/N, kappa={k:g}, L={L}")
        ax_n.plot(ns, [float(chains[(k, L, n)].attrs["imh_acceptance"]) if (k, L, n) in chains else np.nan
                       for n in ns], "s--", color=f"C{i}", label=f"IMH acceptance, kappa={k:g}, L={L}")
    ax_n.set(xscale="log", xlabel="sampler steps (noise levels)", ylabel="fraction", ylim=(0, 1.05),
             title="against the sampler's steps")
    for ax in (ax_k, ax_n):
        ax.legend(fontsize=7)
    n_prop = sorted({int(d.sizes["config"]) for *_, d in proposals})
    fig.suptitle("The diffusion model as an exact sampler: importance weights w = exp(-S - log q) "
                 f"({'/'.join(map(str, n_prop))} proposals per point; 1 = exact)", fontsize=10)
    fig.tight_layout()
    return fig
