"""Figures of the SGD / random-matrix study (docs/rmt.md).

Each function takes the artifacts named in its docstring (found by their ``kind`` attribute,
in any order) and returns a matplotlib Figure.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from scipy import stats

from physml.rmt import dbm
from physml.rmt import spectra as sp


def _by_kind(datasets: list[xr.Dataset], kind: str) -> xr.Dataset:
    found = [d for d in datasets if d.attrs.get("kind") == kind]
    if len(found) != 1:
        raise ValueError(f"expected exactly one artifact of kind {kind!r}, got {len(found)}")
    return found[0]


def _stationary(d: xr.Dataset, var: str) -> np.ndarray:
    """DBM levels after the burn-in, ``(T, samples, n)``."""
    e = d[var].sel(time=d["time"] > float(d.attrs["burn_in_time"])).values
    return e.reshape(e.shape[0], -1, e.shape[-1])


def _ratio_pdf_goe(r):
    """Atas et al. surmise for the ratio distribution on [0, 1] (GOE)."""
    return 2 * 27 / 8 * (r + r * r) / (1 + r + r * r) ** 2.5


def plot_rmt_spacing(datasets: list[xr.Dataset]):
    """``rmt_dbm`` and ``rmt_temperature``: unfolded DBM spacings and the degenerate-pair spacings
    of the linear teacher-student against the Wigner surmise and Poisson, with <r>."""
    d, t = _by_kind(datasets, "rmt_dbm"), _by_kind(datasets, "rmt_temperature")
    levels = _stationary(d, "eig_matrix")
    s = np.concatenate([sp.spacings(sp.unfold_spectrum(lv)) for lv in levels])
    r = np.concatenate([sp.spacing_ratios(sp.unfold_spectrum(lv)) for lv in levels])
    grid = np.linspace(0, 4, 200)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax = axes[0]
    ax.hist(s, bins=60, range=(0, 4), density=True, histtype="step", lw=1.5, label="DBM (matrix), unfolded")
    ax.plot(grid, sp.wigner_surmise_pdf(grid), "k-", label="GOE Wigner surmise")
    ax.plot(grid, sp.poisson_spacing_pdf(grid), "k--", label="Poisson")
    ax.set(xlabel="s", ylabel="P(s)", title=f"DBM stationary spacings (n={int(d.attrs['n'])}, "
           f"{len(d['T'])} temperatures)")
    ax.text(0.97, 0.6, f"<r> = {r.mean():.4f}({round(1e4 * r.std() / np.sqrt(len(r)))})\n"
            f"GOE {sp.GOE_MEAN_R}, Poisson {sp.POISSON_MEAN_R:.4f}\n{len(s)} spacings",
            transform=ax.transAxes, ha="right", fontsize=8)
    ax.legend(fontsize=8)

    ax = axes[1]
    rr = np.linspace(0, 1, 200)
    ax.hist(r, bins=40, range=(0, 1), density=True, histtype="step", lw=1.5, label="DBM")
    ax.plot(rr, _ratio_pdf_goe(rr), "k-", label="GOE (Atas surmise)")
    ax.plot(rr, 2 / (1 + rr) ** 2, "k--", label="Poisson")
    ax.set(xlabel="r = min(s_n, s_n+1) / max", ylabel="P(r)", title="ratio of consecutive spacings")
    ax.legend(fontsize=8)

    ax = axes[2]
    small = np.argsort(t["closed_form"].values)[:3]
    for i in small:
        ps = t["pair_spacing"].values[i]
        p = stats.kstest(ps, sp.wigner_surmise_cdf).pvalue
        ax.hist(ps, bins=25, range=(0, 3.5), density=True, histtype="step",
                label=f"lr={float(t['lr'][i]):g}, B={int(t['batch'][i])}: KS p={p:.2f} (n={len(ps)})")
    ax.plot(grid, sp.wigner_surmise_pdf(grid), "k-", label="Wigner surmise")
    ax.plot(grid, sp.poisson_spacing_pdf(grid), "k--", label="Poisson")
    ax.set(xlabel="s (pair spacing / mean)", ylabel="P(s)",
           title="linear teacher-student: degenerate pairs of W^T W")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _mp_panel(ax, spec: xr.Dataset, step_index: int, title: str):
    q = float(spec.attrs["aspect_q"])
    N = float(spec.attrs["aspect_N"])
    x = spec["eigenvalue"].isel(step=step_index).values / N
    x = x / spec["mp_sigma2"].isel(step=step_index).values[:, None]
    lo, hi = sp.mp_edges(1.0, q)
    grid = np.linspace(max(lo, 1e-3), hi, 300)
    ax.hist(x.ravel(), bins=50, range=(0, max(hi * 1.2, np.percentile(x, 99.5))), density=True,
            histtype="stepfilled", alpha=0.4, label=f"{x.shape[0]} matrices pooled")
    ax.plot(grid, sp.mp_pdf(grid, 1.0, q), "k-", label=f"Marchenko-Pastur, q={q:g}")
    step = int(spec["step"][step_index])
    ax.set(xlabel="lambda / (N sigma^2_fit), sigma^2 from the median", ylabel="density", title=f"{title}, step {step}")
    ax.text(0.97, 0.75, f"KS D = {float(spec['mp_distance'][step_index]):.4f}\n"
            f"iid-null median {float(spec['mp_null_median']):.4f}\n"
            f"null p = {float(spec['mp_p_value'][step_index]):.3f}\n"
            f"bulk p = {float(spec['mp_p_bulk'][step_index]):.3f}, "
            f"top p = {float(spec['mp_p_top'][step_index]):.3f}",
            transform=ax.transAxes, ha="right", fontsize=8)
    ax.legend(fontsize=8, loc="upper center")


def plot_rmt_mp(datasets: list[xr.Dataset]):
    """Spectra (``rmt spectra`` of ``rmt_mlp`` and ``rmt_transformer`` weights) at initialisation
    against Marchenko-Pastur with the fitted variance, judged against the iid Gaussian null."""
    specs = {d.attrs.get("kind"): d for d in datasets}
    mlp, tr = specs.get("rmt_mlp"), specs.get("rmt_transformer")
    if mlp is None or tr is None:
        raise ValueError("fig_rmt_mp needs the spectra of an rmt_mlp and an rmt_transformer run")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    point = f"lr={float(mlp.attrs['lr']):g}, B={int(mlp.attrs['batch'])}"
    _mp_panel(axes[0], mlp, 0, f"MLP middle matrix ({point})")
    # the student learns an iid Gaussian teacher matrix: its spectrum may stay MP-like
    _mp_panel(axes[1], mlp, -1, "MLP (teacher W is iid Gaussian)")
    _mp_panel(axes[2], tr, 0, "transformer: every head's 64 x 16 W_Q, W_K, W_V")
    fig.tight_layout()
    return fig


def plot_rmt_temperature(datasets: list[xr.Dataset]):
    """``rmt_temperature`` and ``rmt_dbm``: effective temperature of the linear teacher-student
    against lr/B (naive) and the closed-form variable (corrected), the measured stationary
    variance over the closed form, and the DBM width against its input temperature."""
    t, d = _by_kind(datasets, "rmt_temperature"), _by_kind(datasets, "rmt_dbm")
    fits = json.loads(t.attrs["fits"])
    lr, B = t["lr"].values, t["batch"].values
    teff, terr = t["T_eff"].values, t["T_eff_err"].values
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    markers = dict(zip(sorted(set(lr)), "osD^v<>"))

    def scatter(ax, x):
        for l in sorted(set(lr)):
            sel = lr == l
            ax.errorbar(x[sel], teff[sel], yerr=terr[sel], fmt=markers[l], ms=5, capsize=2,
                        label=f"lr = {l:g}")

    ax = axes[0]
    x = t["lr_over_B"].values
    scatter(ax, x)
    nv = fits["naive"]
    xx = np.geomspace(x.min(), x.max(), 50)
    ax.plot(xx, nv["slope"] * xx + nv["intercept"], "k-",
            label=f"fit lr <= {nv['lr_max']:g}: R^2 = {nv['r2']:.5f}")
    ax.plot(xx, nv["expected_slope"] * xx, "k:", label="small-lr limit sigma^2/2 lr/B")
    spread = max(fits["collapse_naive"].values()) if fits["collapse_naive"] else float("nan")
    factor = 2 * t["x_corrected"].values / x                  # finite-lr factor of the closed form
    small = lr <= nv["lr_max"]
    ax.text(0.97, 0.03, f"linear scaling rule holds to {100 * (factor[small].max() - 1):.0f}% "
            f"for lr <= {nv['lr_max']:g}\n(finite-lr factor up to {factor.max():.2f} at lr = {lr.max():g})",
            transform=ax.transAxes, ha="right", fontsize=7)
    ax.set(xscale="log", yscale="log", xlabel="lr / B",
           ylabel="T_eff (entry variance from eigenvalue widths)",
           title=f"naive: fit lr <= {nv['lr_max']:g}; collapse at equal lr/B fails by {100 * spread:.0f}%")
    ax.legend(fontsize=7)

    ax = axes[1]
    x = t["x_corrected"].values
    scatter(ax, x)
    cv = fits["corrected"]
    xx = np.geomspace(x.min(), x.max(), 50)
    ax.plot(xx, cv["expected_slope"] * xx, "k-", label="exact: T_eff = sigma^2 x")
    spread = max(fits["collapse_corrected"].values()) if fits["collapse_corrected"] else float("nan")
    ax.set(xscale="log", yscale="log", xlabel="x = lr / (B (2 - lr - lr (n+1)/B))", ylabel="T_eff",
           title=f"corrected: R^2 = {cv['r2']:.6f}, collapse within {100 * spread:.1f}%")
    ax.legend(fontsize=7)

    ax = axes[2]
    ratio = t["entry_variance"].values / t["closed_form"].values
    err = t["entry_variance_err"].values / t["closed_form"].values
    idx = np.arange(len(ratio))
    ax.errorbar(idx, ratio, yerr=err, fmt="o", capsize=3, label="measured entry variance / closed form")
    ax.errorbar(idx + 0.15, teff / t["closed_form"].values, yerr=terr / t["closed_form"].values, fmt="s",
                capsize=3, label="T_eff (eigenvalue widths) / closed form")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(idx, [f"{l:g}/{b}" for l, b in zip(lr, B)], rotation=45, fontsize=7)
    ax.set(xlabel="lr / B", ylabel="ratio",
           title=f"closed form c: max |z| = {fits['entry_over_closed_form_max_abs_z']:.2f}")
    s = t["teacher_singular_values"].values
    gap = np.min(np.diff(np.unique(s)))
    ax.text(0.97, 0.97, "T_eff is first order in W - W_t:\n"
            f"corrections ~ c / gap^2 <= {float(t['closed_form'].max()) / gap ** 2:.3f}",
            transform=ax.transAxes, ha="right", va="top", fontsize=7)
    ax.legend(fontsize=7)

    ax = axes[3]
    T = d["T"].values
    for var, label in (("eig_matrix", "matrix DBM"), ("eig_sde", "eigenvalue SDE")):
        e = d[var].sel(time=d["time"] > float(d.attrs["burn_in_time"])).values
        width, err = dbm.rms_width(e)
        slope, serr = dbm.width_exponent(T, width, err)
        ax.loglog(T, width, "o" if var == "eig_matrix" else "s",
                  label=f"{label}: slope {slope:.4f}({round(1e4 * serr)})")
    ax.loglog(T, np.sqrt(dbm.stationary_mean_square(int(d.attrs["n"]), T)), "k-",
              label="exact sqrt(T (1 + 1/n))")
    ax.set(xlabel="DBM temperature T", ylabel="rms eigenvalue", title="DBM: width ~ sqrt(T)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _power_law_density(ax, x_all, fit: xr.Dataset, supported: bool, color):
    """Overlay the CSN power law (``alpha``, ``alpha_err``, ``xmin`` of one fit) on a density
    histogram of ``x_all``: the fitted tail carries the fraction of values at or above x_min."""
    alpha, err, xmin = float(fit["alpha"]), float(fit["alpha_err"]), float(fit["xmin"])
    frac = np.mean(x_all >= xmin)
    grid = np.geomspace(xmin, x_all.max(), 50)
    ax.plot(grid, frac * (alpha - 1) / xmin * (grid / xmin) ** -alpha, "--", color=color, lw=1.5,
            label=f"CSN power law, alpha = {alpha:.2f} +- {err:.2f} "
                  f"({'supported' if supported else 'not supported'})")


SHOWN_ERR = 1.5   # alpha-against-step panels: error bars wider than this are not drawn


def _alpha_curve(ax, steps, a: xr.DataArray, fmt, color, label, open_marker=False):
    """alpha against step + 1, error bars only where they are narrower than ``SHOWN_ERR``."""
    alpha, err = a["alpha"].values, a["alpha_err"].values
    ax.plot(steps + 1, alpha, fmt, ms=3, lw=0.8, color=color, mfc="none" if open_marker else None,
            label=label)
    ok = err < SHOWN_ERR
    ax.errorbar(steps[ok] + 1, alpha[ok], yerr=err[ok], fmt="none", ecolor=color, capsize=1.5, lw=0.8)


def plot_rmt_transformer(datasets: list[xr.Dataset]):
    """``rmt spectra`` of an ``rmt_transformer`` run and its ``rmt tails``: the pooled per-head
    density of W_K from Marchenko-Pastur to the last step with the fitted power law, tail
    exponents against the training step (three methods; per layer with the test of a common
    value), per-head exponents at the end, the MP and Wigner-surmise null p-values with the
    heads' mean spacing ratio against the step, the loss."""
    spec, tails = _by_kind(datasets, "rmt_transformer"), _by_kind(datasets, "rmt_tails")
    N, q = float(spec.attrs["aspect_N"]), float(spec.attrs["aspect_q"])
    steps = spec["step"].values
    names = [str(m) for m in spec["matrix"].values]
    x = spec["eigenvalue"].transpose("step", "matrix", "k").values / N
    x = x / spec["mp_sigma2"].transpose("step", "matrix").values[..., None]
    key = [i for i, n in enumerate(names) if n.endswith(".k")]
    fig, axes = plt.subplots(2, 3, figsize=(18, 9.5))

    ax = axes[0, 0]
    dep = int(spec.attrs["mp_departure_step"])
    show = dict.fromkeys([0] + ([dep] if dep > 0 else []) + [int(steps[len(steps) * 3 // 4]), int(steps[-1])])
    bins = np.geomspace(max(x[:, key].min(), 1e-3), x[:, key].max() * 1.05, 40)
    for s in show:
        t = int(np.flatnonzero(steps == s)[0])
        ax.hist(x[t, key].ravel(), bins=bins, density=True, histtype="step", lw=1.3, label=f"step {s}")
    lo, hi = sp.mp_edges(1.0, q)
    grid = np.linspace(lo * 1.0001, hi * 0.9999, 300)
    ax.plot(grid, sp.mp_pdf(grid, 1.0, q), "k-", lw=1.2, label=f"Marchenko-Pastur, q = {q:g}")
    last = tails.sel({"method": "powerlaw", "matrix": "k", "step": int(steps[-1])})
    _power_law_density(ax, x[-1, key].ravel(), last, bool(tails["supported"].sel(matrix="k")[-1]), "C3")
    ax.set(xscale="log", yscale="log", xlabel="x = lambda / (N sigma^2_fit), each head's W_K",
           ylabel="density", title=f"W_K of all {len(key)} heads pooled (64 x 16 each)")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    styles = {"powerlaw": ("o-", "CSN (powerlaw)"), "weightwatcher": ("s--", "weightwatcher"),
              "hill": ("^:", "Hill (k = sqrt n)")}
    for c, kind in enumerate("qkv"):
        for method, (fmt, label) in styles.items():
            if method != "powerlaw" and kind != "k":
                continue
            _alpha_curve(ax, steps, tails.sel({"method": method, "matrix": kind}), fmt, f"C{c}",
                         f"W_{kind.upper()}: {label}", open_marker=method != "powerlaw")
        ok = tails["supported"].sel(matrix=kind).values.astype(bool)
        a = tails["alpha"].sel({"method": "powerlaw", "matrix": kind}).values
        ax.plot(steps[ok] + 1, a[ok], "*", color=f"C{c}", ms=10)
    first = json.loads(tails.attrs["tail_first_step"])
    ax.set(xscale="log", ylim=(1, 12), xlabel="AdamW step + 1", ylabel="alpha (density ~ lambda^-alpha)",
           title=f"pooled heads (error bars > {SHOWN_ERR:g} not drawn)\nstar: tail supported; first at "
                 + ", ".join(f"{k} {v}" for k, v in first.items()) + " (-1: never)")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[0, 2]
    layers = [str(m) for m in tails["matrix"].values if str(m).startswith("b") and str(m).count(".") == 1
              and str(m).endswith(".k")]
    for c, m in enumerate(layers):
        _alpha_curve(ax, steps, tails.sel({"method": "powerlaw", "matrix": m}), "o-", f"C{c}",
                     f"{m} (4 heads pooled)")
    pk = float(tails["common_p"].sel(kind="k")[-1])
    ax.set(xscale="log", ylim=(1, 12), xlabel="AdamW step + 1", ylabel="CSN alpha",
           title=f"W_K per layer\none common value at the last step: chi^2 p = {pk:.3g}")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    heads = names
    end = tails.sel(step=int(steps[-1]))
    pos = np.arange(len(heads))
    for off, (method, (fmt, label)) in zip((-0.2, 0.0, 0.2), styles.items()):
        a = end.sel({"method": method, "matrix": heads})
        ax.errorbar(pos + off, a["alpha"], yerr=a["alpha_err"], fmt=fmt[0], ms=3, capsize=1.5,
                    label=label)
    ax.set_xticks(pos[::3], [h.rsplit(".", 1)[0] for h in heads[::3]], rotation=90, fontsize=6)
    ax.set(ylim=(0, 20), ylabel="alpha", title=f"single heads (16 eigenvalues; q, k, v per tick), "
           f"step {int(steps[-1])}")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    pth = float(spec.attrs["p_threshold"])
    ax.loglog(steps + 1, spec["mp_p_value"].values, "ko-", ms=3, label="MP, pooled")
    ax.loglog(steps + 1, spec["mp_p_bulk"].values, "ks--", ms=3, mfc="none", label="MP bulk (top of each excluded)")
    ax.loglog(steps + 1, spec["mp_p_top"].values, "^:", color="purple", ms=3, label="MP largest eigenvalue")
    ax.loglog(steps + 1, spec["wigner_p_value"].values, "D-", color="C2", ms=3,
              label="spacings vs Wigner surmise, pooled")
    ax.axhline(pth, color="r", ls="--", lw=0.8, label=f"p = {pth:g}")
    r = spec["spacing_ratio"].values
    rn, rs = float(spec["spacing_ratio_null_mean"]), float(spec["spacing_ratio_null_std"])
    inside = np.mean(np.abs(r[-1] - rn) < 2 * rs)
    ax.set(xlabel="AdamW step + 1", ylabel="iid-null p-value",
           title=f"MP departure: step {dep}; <r> of {100 * inside:.0f}% of heads within 2 sd of iid, "
                 f"last step")
    ax.legend(fontsize=7, loc="lower left")
    twin = ax.twinx()
    band = 2 * rs / np.sqrt(r.shape[1])
    twin.plot(steps + 1, r.mean(axis=1), "-", color="C1", lw=1.2, label="<r>, mean over heads")
    twin.fill_between(steps + 1, rn - band, rn + band, color="C1", alpha=0.15,
                      label="iid 64 x 16: +-2 sd of that mean")
    twin.axhline(sp.POISSON_MEAN_R, color="C1", ls=":", lw=0.8, label="Poisson")
    twin.set(ylabel="mean spacing ratio <r>", ylim=(0.35, 0.6))
    twin.legend(fontsize=7, loc="lower right")

    ax = axes[1, 2]
    ax.plot(spec["train_step"].values, spec["train_loss"].values, lw=0.5)
    ax.set(xscale="log", xlabel="AdamW step", ylabel="cross entropy (nats/char)",
           title=f"training loss (val {float(spec.attrs['val_loss']):.3f})")
    fig.tight_layout()
    return fig
