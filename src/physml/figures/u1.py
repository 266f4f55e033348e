"""Figures of the 2D U(1) ensembles against the exact torus results."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from physml.lattice import u1_exact


def _points(observables: list[xr.Dataset], source: str, L: int, name: str):
    """(beta, value, error, dataset) of the ensembles of one source and L, sorted by beta."""
    rows = sorted(((float(d.attrs["beta"]), float(d[name]), float(d[f"{name}_err"]), d)
                   for d in observables if d.attrs.get("source") == source and int(d.attrs["L"]) == L),
                  key=lambda r: r[0])
    return rows


def plot_u1_hmc(observables: list[xr.Dataset]):
    """Plaquette and chi_t against beta with the exact finite-volume curves for each L
    (HMC: filled markers; exact sampler: crosses; chi_t flagged unreliable: open
    markers), the plaquette deviation from the exact value in units of its error, and
    tau_int(Q) of HMC against beta (rate of Q changes; triangles: lower bounds)."""
    if not observables or any(d.attrs.get("theory") != "u1" for d in observables):
        raise ValueError("fig_u1_hmc needs U(1) observables artifacts")
    sizes = sorted({int(d.attrs["L"]) for d in observables})
    betas = [float(d.attrs["beta"]) for d in observables]
    grid = np.linspace(min(0.5, min(betas)), max(betas) * 1.05, 200)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax_p, ax_z, ax_c, ax_t = axes.ravel()
    ax_p.plot(grid, [u1_exact.plaquette_infinite(b) for b in grid], "k--", lw=1, label="exact, L = inf")
    ax_c.plot(grid, [u1_exact.chi_t_infinite(b) for b in grid], "k--", lw=1, label="exact, L = inf")
    for i, L in enumerate(sizes):
        color = f"C{i}"
        ax_p.plot(grid, [u1_exact.plaquette(b, L) for b in grid], color=color, lw=1, label=f"exact, L = {L}")
        ax_c.plot(grid, [u1_exact.chi_t(b, L) for b in grid], color=color, lw=1, label=f"exact, L = {L}")
        for source, marker, text in (("hmc", "o", "HMC"), ("exact", "x", "exact sampler")):
            rows = _points(observables, source, L, "plaquette")
            if not rows:
                continue
            b, v, e, ds = map(list, zip(*rows))
            ax_p.errorbar(b, v, yerr=e, fmt=marker, color=color, ms=4, capsize=2, label=f"{text}, L = {L}")
            z = [(vi - u1_exact.plaquette(bi, L)) / ei for bi, vi, ei in zip(b, v, e)]
            ax_z.plot(b, z, marker, color=color, label=f"{text}, L = {L}")
            for bi, (_, c, ce, d) in zip(b, _points(observables, source, L, "chi_t")):
                ok = bool(int(d["chi_t_reliable"]))
                ax_c.errorbar([bi], [max(c, 1.5e-5)], yerr=[ce], fmt=marker if c > 0 else "v", color=color,
                              ms=5, capsize=2, mfc=color if ok else "none")
            if source == "hmc":
                taus = [float(d["tau_int_Q_rate"]) for d in ds]
                lower = [bool(int(d["tau_int_Q_rate_is_lower_bound"])) for d in ds]
                ax_t.plot(b, taus, "-", color=color, lw=0.8)
                for bi, ti, lo in zip(b, taus, lower):
                    ax_t.plot([bi], [ti], "^" if lo else "o", color=color, ms=6 if lo else 4)
                ax_t.plot([], [], "o-", color=color, ms=4, label=f"L = {L}")
    ax_c.plot([], [], "o", color="gray", mfc="none", label="HMC, chi_t flagged unreliable")
    ax_c.plot([], [], "v", color="gray", mfc="none", label="chi_t = 0 (drawn at the axis)")
    ax_t.plot([], [], "^", color="gray", label="lower bound (Q never changed)")
    for z in (-3, 3):
        ax_z.axhline(z, color="gray", lw=0.8, ls=":")
    ax_z.axhline(0, color="k", lw=0.8)
    ax_p.set(xlabel=r"$\beta$", ylabel=r"$\langle\cos\theta_P\rangle$", title="average plaquette")
    ax_z.set(xlabel=r"$\beta$", ylabel="(measured - exact) / error", title="plaquette against the exact torus value")
    ax_c.set(xlabel=r"$\beta$", ylabel=r"$\chi_t = \langle Q^2\rangle / V$", yscale="log",
             title="topological susceptibility")
    ax_t.set(xlabel=r"$\beta$", ylabel=r"$\tau_{\rm int}(Q)$ [trajectories]", yscale="log",
             title=r"HMC $\tau_{\rm int}(Q)$ from the rate of Q changes")
    ax_c.set_ylim(bottom=1e-5)
    for ax in axes.ravel():
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
