"""Figures of the U(1) diffusion study: generated ensembles against the exact torus results
across volumes (model trained at beta_0 = 1, L = 16) and across couplings (at L = 16), and
the model as an exact sampler at each coupling (ESS/N and independence Metropolis
acceptance against beta)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from physml.lattice import u1_exact
from physml.observables.compare import row_flag

# one style per source, shared by both figures (and the order of the legends)
SOURCES = {"exact": dict(label="exact sampler", color="C2", marker="x"),
           "hmc": dict(label="HMC", color="k", marker="o"),
           "dm": dict(label="DM (raw)", color="C3", marker="s"),
           "dm_mala": dict(label="DM + MALA", color="C0", marker="D"),
           "mala_only": dict(label="MALA only (control)", color="C1", marker="v"),
           "dm_reweighted": dict(label="DM reweighted from beta_0", color="C4", marker="P"),
           "dm_authors": dict(label="DM, the authors' sampler", color="C5", marker="*"),
           "hmc_flux": dict(label="HMC + flux moves", color="C7", marker="h"),
           "smc": dict(label="SMC in beta from beta_0 (control)", color="C8", marker="<"),
           "dm_smc": dict(label="DM weighted by p / q + SMC in beta", color="C9", marker=">")}
PULL_SOURCES = ("dm", "dm_mala", "mala_only")
COST_SOURCES = ("hmc", "hmc_flux", "exact", "dm_mala", "mala_only", "dm_authors", "smc", "dm_smc")
OPEN_NOTE = "open: flagged (e.g. frozen topology, low ESS)"


def _split(datasets: list[xr.Dataset]):
    """(comparison table or None, U(1) observable artifacts of known sources)."""
    table = next((d for d in datasets if "row" in d.dims), None)
    obs = [d for d in datasets if "row" not in d.dims and d.attrs.get("source") in SOURCES
           and "plaquette" in d]
    if not obs:
        raise ValueError("U(1) diffusion figures need U(1) observable artifacts of the sources "
                         f"{sorted(SOURCES)}")
    return table, obs


def _trained_at(obs: list[xr.Dataset]) -> tuple[float, int]:
    """(beta_0, L_0) of the model, from the generated artifacts (default: the paper's 1, 16)."""
    gen = [d for d in obs if "train_beta" in d.attrs and "train_L" in d.attrs]
    return (float(gen[0].attrs["train_beta"]), int(gen[0].attrs["train_L"])) if gen else (1.0, 16)


def _get(ds: xr.Dataset, name: str) -> float:
    return float(ds[name]) if name in ds else np.nan


def _err(ds: xr.Dataset, name: str) -> float:
    return float(np.nan_to_num(_get(ds, f"{name}_err")))   # NaN error: no bar


def _point(ax, x, y, yerr, source, flagged=False, marker=None):
    """One data point of ``source`` (open marker when flagged)."""
    style = SOURCES[source]
    ax.errorbar([x], [y], yerr=[yerr], fmt=marker or style["marker"], color=style["color"], ms=5,
                capsize=2, mfc="none" if flagged else style["color"])


def _legend(ax, sources, extra=()):
    """Legend of the sources drawn on ``ax`` plus ``extra`` (label, kwargs) entries."""
    for s in sources:
        ax.plot([], [], SOURCES[s]["marker"], color=SOURCES[s]["color"], label=SOURCES[s]["label"])
    for label, kw in extra:
        ax.plot([], [], label=label, **kw)
    ax.legend(fontsize=7)


def _empty(ax, title):
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.5")


def _present(obs, sources=SOURCES):
    return [s for s in sources if any(d.attrs["source"] == s for d in obs)]


def _pull_cell(table: xr.Dataset, name: str, source: str, L: int, beta: float) -> str:
    """The table's pull of ``name`` for ``source`` at (L, beta); '*' marks a flagged row."""
    sel = ((table["observable"].values == name) & (table["source"].values == source)
           & (table["L"].values == L) & np.isclose(table[table.attrs.get("coupling", "beta")].values, beta))
    idx = np.flatnonzero(sel)
    if not len(idx):
        return "-"
    pull = float(table["pull"].values[idx[0]])
    return (f"{pull:+.1f}σ" if np.isfinite(pull) else "n/a") + ("*" if table["flag"].values[idx[0]] else "")


def plot_u1_volume(datasets: list[xr.Dataset]):
    """Volume dependence at beta_0 (the coupling generated at the most volumes, ties: the
    one nearest beta_0): (a) plaquette and (b) chi_t against L for every source with
    the exact finite-volume values, (c) P(Q) per L of every source with the exact P(Q),
    and a table of the plaquette and chi_t pulls of DM, DM + MALA and MALA-only against
    the exact sampler (from the comparison table)."""
    table, obs = _split(datasets)
    beta_0, L_0 = _trained_at(obs)
    betas = sorted({round(float(d.attrs["beta"]), 10) for d in obs})
    n_sizes = {b: len({int(d.attrs["L"]) for d in obs if np.isclose(float(d.attrs["beta"]), b)}) for b in betas}
    beta = max(betas, key=lambda b: (n_sizes[b], -abs(b - beta_0)))
    obs = [d for d in obs if np.isclose(float(d.attrs["beta"]), beta)]
    sizes = sorted({int(d.attrs["L"]) for d in obs})
    sources = _present(obs)
    fig = plt.figure(figsize=(max(11.0, 3.6 * len(sizes)), 10.5 + 0.3 * len(sizes)))
    grid = fig.add_gridspec(3, 1, height_ratios=[3, 2.6, 0.5 + 0.25 * len(sizes) if table is not None else 0.05])
    top, mid = grid[0].subgridspec(1, 2), grid[1].subgridspec(1, len(sizes))
    ax_p, ax_c = fig.add_subplot(top[0]), fig.add_subplot(top[1])
    for ax, name, exact in ((ax_p, "plaquette", "plaquette_exact"), (ax_c, "chi_t", "chi_t_exact")):
        for i, source in enumerate(sources):   # sources side by side around each L
            shift = 2 ** (0.04 * (i - (len(sources) - 1) / 2))
            for d in obs:
                if d.attrs["source"] == source:
                    _point(ax, int(d.attrs["L"]) * shift, _get(d, name), _err(d, name), source,
                           flagged=bool(row_flag(d, name)))
        ref = {int(d.attrs["L"]): float(d.attrs[exact]) for d in obs if exact in d.attrs}
        ax.plot(list(ref), list(ref.values()), "_", color="k", ms=22, mew=1.5)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(L) for L in sizes])
        ax.minorticks_off()
        _legend(ax, sources, [("exact, finite L", dict(marker="_", color="k", ms=12, ls="none")),
                              (OPEN_NOTE, dict(marker="o", color="gray", mfc="none", ls="none"))])
    ax_p.set(xlabel="L", ylabel=r"$\langle\cos\theta_P\rangle$",
             title=f"(a) plaquette at beta = {beta:g} against the exact finite-volume value")
    ax_c.set(xlabel="L", ylabel=r"$\chi_t = \langle Q^2\rangle / V$",
             title=f"(b) topological susceptibility at beta = {beta:g}")
    for j, L in enumerate(sizes):
        ax = fig.add_subplot(mid[j])
        here = [d for d in obs if int(d.attrs["L"]) == L]
        exact = max((d for d in here if "P_Q_exact" in d), key=lambda d: d.sizes["Q"], default=None)
        if exact is not None:   # measure_u1 stores the exact P(Q) over every likely charge
            ax.plot(exact["Q"].values, exact["P_Q_exact"].values, "-", color="0.6", lw=3, alpha=0.6,
                    label="exact P(Q)")
        for i, source in enumerate(sources):
            for d in here:
                if d.attrs["source"] == source and "P_Q" in d:
                    style = SOURCES[source]
                    ax.errorbar(d["Q"].values + 0.12 * (i - (len(sources) - 1) / 2), d["P_Q"].values,
                                yerr=np.nan_to_num(d["P_Q_err"].values), fmt=style["marker"], ms=3,
                                capsize=1.5, color=style["color"], label=style["label"],
                                mfc="none" if row_flag(d, "P_Q") else style["color"])
        ax.set(xlabel="Q", ylabel="P(Q)", title=f"(c) P(Q), L = {L}, beta = {beta:g}")
        ax.legend(fontsize=6)
    ax_t = fig.add_subplot(grid[2])
    ax_t.axis("off")
    if table is not None:
        cols = [(name, source) for source in PULL_SOURCES for name in ("plaquette", "chi_t")]
        rows = [[str(L)] + [_pull_cell(table, name, s, L, beta) for name, s in cols] for L in sizes]
        labels = ["L"] + [f"{name}: {SOURCES[s]['label']}" for name, s in cols]
        tab = ax_t.table(cellText=rows, colLabels=labels, loc="center", cellLoc="center")
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        tab.auto_set_column_width(list(range(len(labels))))
        tab.scale(1, 1.4)
        ax_t.set_title(f"pull against the exact sampler at beta = {beta:g}: (source - exact) / combined "
                       f"error (* flagged row; -: no data; MALA only is the control DM + MALA must beat)",
                       fontsize=9)
    fig.suptitle(f"U(1) diffusion model trained at beta_0 = {beta_0:g}, L = {L_0}, generating at "
                 f"L = {', '.join(map(str, sizes))}: every sampler against the exact torus results")
    fig.tight_layout()
    return fig


def plot_u1_coupling(datasets: list[xr.Dataset]):
    """Coupling dependence at the training L (else the volume with the most couplings): (a)
    plaquette and (b) chi_t (log) against beta of every source with the exact curves
    (reweighted points annotated with their Kish ESS; flagged points open), (c) HMC
    tau_int(Q) from the rate of Q changes (log; triangles: lower bounds, Q frozen) and
    (d) generation cost per independent Q of every source in ``COST_SOURCES`` (model-free:
    hmc, hmc_flux, exact, mala_only, smc; with the model: dm_mala, dm_authors, dm_smc)."""
    _, obs = _split(datasets)
    beta_0, L_0 = _trained_at(obs)
    sizes = sorted({int(d.attrs["L"]) for d in obs})
    L = L_0 if L_0 in sizes else max(sizes, key=lambda s: len({float(d.attrs["beta"]) for d in obs
                                                                        if int(d.attrs["L"]) == s}))
    obs = sorted((d for d in obs if int(d.attrs["L"]) == L), key=lambda d: float(d.attrs["beta"]))
    betas = [float(d.attrs["beta"]) for d in obs]
    grid = np.linspace(0.8 * min(betas), 1.1 * max(betas), 150)
    sources = _present(obs)
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    ax_p, ax_c, ax_t, ax_k = axes.ravel()
    ax_p.plot(grid, [u1_exact.plaquette(b, L) for b in grid], "-", color="0.5", lw=1)
    chi_exact = np.array([u1_exact.chi_t(b, L) for b in grid])
    ax_c.plot(grid, chi_exact, "-", color="0.5", lw=1)
    floor = 0.3 * chi_exact.min()   # chi_t = 0 (no charge seen) is drawn there as a down triangle
    for i, source in enumerate(sources):
        shift = 0.012 * (max(betas) - min(betas) or 1) * (i - (len(sources) - 1) / 2)
        for d in (d for d in obs if d.attrs["source"] == source):
            b = float(d.attrs["beta"]) + shift
            _point(ax_p, b, _get(d, "plaquette"), _err(d, "plaquette"), source, bool(row_flag(d, "plaquette")))
            if "ess" in d:
                ax_p.annotate(f"ESS={float(d['ess']):.0f}", (b, _get(d, "plaquette")), fontsize=6,
                              xytext=(4, -8), textcoords="offset points", color=SOURCES[source]["color"])
            chi = _get(d, "chi_t")
            _point(ax_c, b, max(chi, floor), _err(d, "chi_t"), source, bool(row_flag(d, "chi_t")),
                   marker=None if chi > 0 else "v")
    extra = [("exact, L = %d" % L, dict(color="0.5", lw=1)),
             (OPEN_NOTE, dict(marker="o", color="gray", mfc="none", ls="none"))]
    _legend(ax_p, sources, extra)
    _legend(ax_c, sources, extra + [("chi_t = 0 (drawn at the floor)", dict(marker="v", color="gray",
                                                                             ls="none"))])
    ax_p.set(xlabel=r"$\beta$", ylabel=r"$\langle\cos\theta_P\rangle$",
             title=f"(a) plaquette at L = {L} against the exact value")
    ax_c.set(xlabel=r"$\beta$", ylabel=r"$\chi_t = \langle Q^2\rangle / V$", yscale="log",
             title=f"(b) topological susceptibility at L = {L}")
    hmc = [d for d in obs if d.attrs["source"] == "hmc" and np.isfinite(_get(d, "tau_int_Q_rate"))]
    title_t = rf"(c) HMC $\tau_{{\rm int}}(Q)$ at L = {L} (rate of Q changes)"
    if hmc:
        b = [float(d.attrs["beta"]) for d in hmc]
        ax_t.plot(b, [_get(d, "tau_int_Q_rate") for d in hmc], "-", color="k", lw=0.8)
        for bi, d in zip(b, hmc):
            lower = bool(int(d["tau_int_Q_rate_is_lower_bound"]))
            ax_t.plot([bi], [_get(d, "tau_int_Q_rate")], "^" if lower else "o", color="k", ms=7 if lower else 4)
        _legend(ax_t, ["hmc"], [("lower bound (Q never changed)", dict(marker="^", color="k", ls="none"))])
        ax_t.set(xlabel=r"$\beta$", ylabel=r"$\tau_{\rm int}(Q)$ [trajectories]", yscale="log", title=title_t)
    else:
        _empty(ax_t, title_t)
    costly = [d for d in obs if d.attrs["source"] in COST_SOURCES and np.isfinite(_get(d, "cost_per_independent_Q"))]
    title_k = f"(d) generation cost per independent Q at L = {L}"
    if costly:
        for d in costly:
            source = d.attrs["source"]
            lower = "tau_int_Q_rate_is_lower_bound" in d and bool(int(d["tau_int_Q_rate_is_lower_bound"]))
            _point(ax_k, float(d.attrs["beta"]), _get(d, "cost_per_independent_Q"), 0.0, source,
                   bool(row_flag(d, "cost_per_independent_Q")), marker="^" if lower else None)
        _legend(ax_k, _present(costly, COST_SOURCES),
                [("lower bound (HMC, Q never changed)", dict(marker="^", color="gray", ls="none"))])
        ax_k.set(xlabel=r"$\beta$", ylabel="seconds per independent Q", yscale="log",
                 title=title_k)
    else:
        _empty(ax_k, title_k)
    fig.suptitle(f"U(1) at L = {L}: samplers against the exact torus results across beta "
                 f"(DM trained at beta_0 = {beta_0:g}, L = {L_0}; MALA only is the control)")
    fig.tight_layout()
    return fig


def plot_u1_exact_dm(datasets: list[xr.Dataset]):
    """How far physics conditioning carries: for the model trained at beta_0, generating at
    beta with the score times beta / beta_0, the Kish ESS/N of the importance weights
    p_beta / q (dm_q ensembles with their density) and the independence Metropolis
    acceptance (dm_imh) against beta, one curve per L; log scale, with 1 / N (the floor
    where one proposal carries all the weight) dotted, and points where the sampler's map
    folds (flagged rows) circled."""
    proposals = [d for d in datasets if d.attrs.get("source") == "dm_q" and "ess_fraction" in d.attrs]
    chains = {(int(d.attrs["L"]), float(d.attrs["beta"])): d for d in datasets if d.attrs.get("source") == "dm_imh"}
    if not proposals:
        raise ValueError("fig_u1_exact_dm needs dm_q ensembles with a density (physml diffusion sample --density)")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, L in enumerate(sorted({int(d.attrs["L"]) for d in proposals})):
        pts = sorted((float(d.attrs["beta"]), d) for d in proposals if int(d.attrs["L"]) == L)
        betas = [b for b, _ in pts]
        ax.plot(betas, [float(d.attrs["ess_fraction"]) for _, d in pts], "o-", color=f"C{i}",
                label=f"ESS/N, L={L}")
        acc = [float(chains[(L, b)].attrs["imh_acceptance"]) if (L, b) in chains else np.nan for b in betas]
        ax.plot(betas, acc, "s--", color=f"C{i}", label=f"IMH acceptance, L={L}")
        ax.plot(betas, [1.0 / d.sizes["config"] for _, d in pts], ":", color=f"C{i}", lw=1,
                label=f"1 / N, L={L}")
        folds = [(b, float(d.attrs["ess_fraction"])) for b, d in pts
                 if 0 < float(d.attrs.get("jacobian_sign_negative", 0.0)) < 1]
        if folds:
            ax.plot(*zip(*folds), "o", ms=11, mfc="none", color="C3",
                    label="the map folds (Jacobian sign varies): log q is no density" if i == 0 else None)
    beta0 = proposals[0].attrs.get("train_beta")
    if beta0 is not None:
        ax.axvline(float(beta0), color="0.6", lw=0.8)
    floor = min(1.0 / d.sizes["config"] for d in proposals)
    ax.set(yscale="log", ylim=(0.5 * floor, 1.5), xlabel="beta (score x beta / beta_0)", ylabel="fraction",
           title=f"The conditioned model as an exact sampler (trained at beta_0 = {beta0})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
