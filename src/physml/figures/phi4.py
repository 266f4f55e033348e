"""Figures of the phi^4 HMC ensembles."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

TABLE_OBSERVABLES = ("mag", "abs_mag", "chi2", "binder", "action_density")


def format_value(value: float, error: float) -> str:
    """value(error) with the error rounded to two significant digits."""
    if not np.isfinite(error) or error <= 0:
        return f"{value:.4g}"
    digits = max(0, 1 - int(np.floor(np.log10(error))))
    return f"{value:.{digits}f}({round(error * 10 ** digits)})"


def plot_phi4_hmc(observables: list[xr.Dataset]):
    """Histogram of phibar per kappa, connected G(r), and a table of observables with errors."""
    observables = sorted(observables, key=lambda d: float(d.attrs["kappa"]))
    fig = plt.figure(figsize=(12, 4.2 + 0.35 * len(observables)))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 0.4 + 0.3 * len(observables)])
    ax_h, ax_g, ax_t = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    rows = []
    for ds in observables:
        label = f"kappa={float(ds.attrs['kappa']):g}, L={int(ds.attrs['L'])}"
        ax_h.hist(ds["phibar"].values, bins=60, density=True, histtype="step", label=label)
        r = ds["r"].values
        ax_g.errorbar(r, ds["G"].values, yerr=ds["G_err"].values, marker="o", ms=3, capsize=2, label=label)
        rows.append([f"{float(ds.attrs['kappa']):g}"] + [
            format_value(float(ds[o]), float(ds[f"{o}_err"])) + f"  [{float(ds[f'tau_int_{o}']):.1f}]"
            for o in TABLE_OBSERVABLES])
    ax_h.set(xlabel=r"$\bar\phi$", ylabel="density", title=r"HMC: distribution of $\bar\phi$")
    ax_h.legend(fontsize=8)
    ax_g.set(xlabel="r", ylabel="G(r)", yscale="symlog", title="connected two-point function")
    ax_g.set_yscale("symlog", linthresh=1e-3)
    ax_g.legend(fontsize=8)
    ax_t.axis("off")
    table = ax_t.table(cellText=rows, colLabels=["kappa", "<phibar>", "<|phibar|>", "chi_2", "U_L", "<S>/V"],
                       loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax_t.set_title("value(error)  [tau_int in measurements], Gamma method", fontsize=9)
    fig.tight_layout()
    return fig
