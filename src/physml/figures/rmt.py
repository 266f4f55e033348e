"""Figures of the SGD / random-matrix study (docs/rmt.md).

Each function takes the artifacts named in its docstring (found by their ``kind`` attribute,
in any order) and returns a matplotlib Figure.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from physml.rmt import dbm
from physml.rmt import spectra as sp


def _by_kind(datasets: list[xr.Dataset], kind: str) -> xr.Dataset:
    found = [d for d in datasets if d.attrs.get("kind") == kind]
    if len(found) != 1:
        raise ValueError(f"expected exactly one artifact of kind {kind!r}, got {len(found)}")
    return found[0]


def _by_model(datasets: list[xr.Dataset], model: str) -> xr.Dataset:
    found = [d for d in datasets if d.attrs.get("kind") == "rmt_temperature" and d.attrs.get("model", "linear") == model]
    if len(found) != 1:
        raise ValueError(f"expected exactly one rmt_temperature artifact of model {model!r}, got {len(found)}")
    return found[0]


def _models(datasets: list[xr.Dataset]) -> dict[str, xr.Dataset]:
    """The rmt_temperature artifacts by model (linear, rbm, mlp), each at most once."""
    temps = [d for d in datasets if d.attrs.get("kind") == "rmt_temperature"]
    return {m: _by_model(datasets, m) for m in sorted({d.attrs.get("model", "linear") for d in temps})}


def _ratio_pdf_goe(r):
    """Atas et al. surmise for the ratio distribution on [0, 1] (GOE)."""
    return 2 * 27 / 8 * (r + r * r) / (1 + r + r * r) ** 2.5


def _pm(value, err, digits=3):
    return f"{value:.{digits}g} +- {err:.2g}"


def plot_rmt_spacing(datasets: list[xr.Dataset]):
    """``rmt_dbm`` and ``rmt_temperature`` (linear, and the RBM if given): the stationary DBM
    levels (divided by sqrt(T)) against the exact finite-n Coulomb gas (GOE of the same n,
    sampled), their spacing ratios against it, the degenerate-pair spacings of the linear
    teacher-student and the RBM against the Coulomb-gas law with the fitted beta, and beta
    against lr/B."""
    d = _by_kind(datasets, "rmt_dbm")
    models = {m: t for m, t in _models(datasets).items() if "beta_coulomb" in t}
    n = int(d.attrs["n"])
    spectra = {"matrix": dbm.stationary_spectra(d["eig_matrix"].values, d["T"].values, d["time"].values,
                                                float(d.attrs["burn_in_time"]), scale=1 / (1 - float(d.attrs["dt"]) / 2)),
               "sde": dbm.stationary_spectra(d["eig_sde"].values, d["T"].values, d["time"].values,
                                             float(d.attrs["burn_in_time"]))}
    goe = np.linalg.eigvalsh(sp.goe_matrices(n, 4000, np.random.default_rng(0)))
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    ax = axes[0]
    bins = np.linspace(-2.4, 2.4, 49)
    ax.hist(goe.ravel(), bins=bins, density=True, color="0.8", label=f"GOE n = {n} (sampled: the exact law)")
    for name, x in spectra.items():
        c = d.sel(process=name)
        ax.hist(x.ravel(), bins=bins, density=True, histtype="step", lw=1.3,
                label=f"{name}: KS p = {float(c['cg_density_p']):.2f} ({len(x)} spectra)")
    grid = np.linspace(-2, 2, 200)
    ax.plot(grid, sp.semicircle_pdf(grid, 2.0), "k:", lw=1, label="semicircle (n -> infinity)")
    ax.set(xlabel="lambda / sqrt(T)", ylabel="density",
           title=f"DBM stationary density vs the finite-n Coulomb gas\n(dt = {float(d.attrs['dt']):g}, "
                 f"dt_sde = {float(d.attrs['dt_sde']):g})")
    ax.legend(fontsize=7)

    ax = axes[1]
    rr = np.linspace(0, 1, 200)
    ax.hist(sp.spacing_ratios(goe), bins=40, range=(0, 1), density=True, color="0.8", label=f"GOE n = {n}")
    for name, x in spectra.items():
        c = d.sel(process=name)
        ax.hist(sp.spacing_ratios(x), bins=40, range=(0, 1), density=True, histtype="step", lw=1.3,
                label=f"{name}: <r> = {_pm(float(c['cg_ratio_mean']), float(c['cg_ratio_mean_err']), 4)}, "
                      f"KS p = {float(c['cg_ratio_p']):.2f}")
    ax.plot(rr, _ratio_pdf_goe(rr), "k-", lw=0.8, label="GOE surmise (Atas et al.)")
    ax.plot(rr, 2 / (1 + rr) ** 2, "k--", lw=0.8, label="Poisson")
    goe_r = float(d["cg_ratio_mean_goe"].values[0])
    ax.set(xlabel="r = min(s_n, s_n+1) / max", ylabel="P(r)",
           title=f"DBM spacing ratios (GOE n = {n}: <r> = {goe_r:.4f})")
    ax.legend(fontsize=7)

    ax = axes[2]
    s_grid = np.linspace(0, 3.5, 200)
    for c, (model, t) in enumerate(models.items()):
        i = int(np.argmin(t["lr_over_B"].values))
        ps = t["pair_spacing"].values[i]
        beta = float(t["beta_coulomb"][i])
        ax.hist(ps, bins=25, range=(0, 3.5), density=True, histtype="step", color=f"C{c}",
                label=f"{model}, lr = {float(t['lr'][i]):g}, B = {int(t['batch'][i])} ({len(ps)} pairs)")
        ax.plot(s_grid, _pair_law(s_grid, beta), "--", color=f"C{c}", lw=1,
                label=f"Coulomb gas, fitted beta = {_pm(beta, float(t['beta_coulomb_err'][i]))}")
    ax.plot(s_grid, sp.wigner_surmise_pdf(s_grid), "k-", lw=0.8, label="beta = 1: Wigner surmise")
    ax.plot(s_grid, sp.poisson_spacing_pdf(s_grid), "k:", lw=0.8, label="Poisson")
    ax.set(xlabel="s (pair spacing / mean)", ylabel="P(s)", title="degenerate pairs of W^T W, smallest lr/B")
    ax.legend(fontsize=7)

    ax = axes[3]
    for c, (model, t) in enumerate(models.items()):
        fit = json.loads(t.attrs["fits"])["coulomb"]
        ax.errorbar(t["lr_over_B"], t["beta_coulomb"], yerr=t["beta_coulomb_err"], fmt="os"[c % 2], color=f"C{c}",
                    capsize=2, ms=4, label=f"{model}: weighted mean {_pm(fit['beta_mean'], fit['beta_mean_err'])}, "
                                           f"chi^2/dof {fit['beta_chi2_dof']:.2f}")
    ax.axhline(1, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="lr / B", ylabel="fitted beta",
           title="level-repulsion exponent of the pairs (Coulomb gas: 1)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _pair_law(s, beta):
    """Density of a spacing normalised to mean 1 when P(s) ~ s^beta exp(-s^2 / w)."""
    from scipy.special import gammaln

    a = (beta + 1) / 2
    w = np.exp(2 * (gammaln(a) - gammaln(a + 0.5)))            # the scale that makes <s> = 1
    return 2 * s ** beta * np.exp(-s * s / w) / (w ** a * np.exp(gammaln(a)))


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


def _fit_label(f: dict, name: str) -> str:
    return (f"{name}: slope {_pm(f['slope'], f['slope_err'])}, intercept {_pm(f['intercept'], f['intercept_err'])}, "
            f"chi^2/dof {f['chi2_dof']:.2f}")


def _grid_panel(ax, t: xr.Dataset, xname: str, fit: dict, title: str, xlabel: str):
    """T_eff against a grid variable, markers by lr (open: alone at its lr/B), the weighted fit
    and the expected small-lr slope."""
    lr, x = t["lr"].values, t[xname].values
    T, err = t["T_eff"].values, t["T_eff_err"].values
    key = np.round(t["lr_over_B"].values, 12)
    alone = np.array([np.sum(key == k) == 1 for k in key])
    for c, value in enumerate(sorted(set(lr))):
        label = f"lr = {value:g}"
        for sel, mfc in (((lr == value) & ~alone, None), ((lr == value) & alone, "none")):
            if sel.any():
                ax.errorbar(x[sel], T[sel], yerr=err[sel], fmt="osD^v<>"[c % 7], color=f"C{c}", mfc=mfc, ms=5,
                            capsize=2, label=label)
                label = None
    xx = np.geomspace(x.min(), x.max(), 50)
    ax.plot(xx, fit["slope"] * xx + fit["intercept"], "k-", lw=1, label=_fit_label(fit, "weighted fit"))
    if np.isfinite(fit.get("expected_slope") or np.nan):
        ax.plot(xx, fit["expected_slope"] * xx, "k:", lw=1, label=f"small-lr slope {fit['expected_slope']:g}")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="T_eff (eigenvalue widths)", title=title)
    ax.legend(fontsize=6)


def plot_rmt_temperature(datasets: list[xr.Dataset]):
    """``rmt_temperature`` of the linear teacher-student, the Gaussian RBM and the online MLP
    (any of them) and ``rmt_dbm``: T_eff against lr/B and against the finite-lr variable with
    weighted fits (slope, intercept, errors, chi^2/dof), whether lr/B alone sets T (T / (lr/B)
    against lr/B, points of equal lr joined, the lr term's significance), and the DBM width
    against T, a consistency check of the simulator only (exact by construction)."""
    models, d = _models(datasets), _by_kind(datasets, "rmt_dbm")
    panels = [(m, v) for m in ("linear", "rbm", "mlp") if m in models
              for v in ("lr_over_B", "finite_lr") if v in json.loads(models[m].attrs["fits"])]
    fig, axes = plt.subplots(2, 4, figsize=(23, 9.5))
    flat = axes.ravel()
    for ax, (model, which) in zip(flat[:5], panels[:5]):
        t = models[model]
        fit = json.loads(t.attrs["fits"])[which]
        if which == "lr_over_B":
            _grid_panel(ax, t, "lr_over_B", fit, f"{model}: T_eff against lr/B (open: alone at its lr/B)", "lr / B")
        else:
            _grid_panel(ax, t, fit["variable"], fit, f"{model}: against the finite-lr variable",
                        t[fit["variable"]].attrs.get("long_name", fit["variable"]))
    for ax in flat[len(panels):5]:
        ax.axis("off")

    ax = flat[5]
    for c, (model, t) in enumerate(models.items()):
        sc = json.loads(t.attrs["fits"])["scaling"]
        ratio = t["T_eff"].values / t["lr_over_B"].values
        norm = ratio.max()
        lr = t["lr"].values
        for j, value in enumerate(sorted(set(lr))):
            sel = lr == value
            ax.errorbar(t["lr_over_B"].values[sel], ratio[sel] / norm, yerr=t["T_eff_err"].values[sel]
                        / t["lr_over_B"].values[sel] / norm, fmt="osD^v<>"[j % 7] + "-", color=f"C{c}", ms=4,
                        capsize=2, lw=0.8, label=(f"{model}: collapse chi^2/dof {sc['collapse_chi2_dof']:.2f} "
                                                  f"(p {sc['collapse_p']:.2g}), lr term "
                                                  f"{_pm(sc['lr_coef'], sc['lr_coef_err'])} ({sc['lr_coef_z']:+.1f} sd)")
                        if j == 0 else None)
    ax.set(xscale="log", xlabel="lr / B", ylabel="T_eff / (lr/B), each model over its largest",
           title="does lr/B alone set T?  lines join equal lr (markers: lr)")
    ax.legend(fontsize=6)

    ax = flat[6]
    for c, (model, t) in enumerate(models.items()):
        if "T_coulomb" not in t:
            continue
        f = json.loads(t.attrs["fits"])["coulomb"]
        x = t["lr_over_B"].values
        ax.errorbar(x, t["T_coulomb"], yerr=t["T_coulomb_err"], fmt="o", color=f"C{c}", ms=4, capsize=2,
                    label=_fit_label(f, model))
        xx = np.geomspace(x.min(), x.max(), 50)
        ax.plot(xx, f["slope"] * xx + f["intercept"], "-", color=f"C{c}", lw=0.8)
        ax.plot(xx, f["expected_slope"] * xx, ":", color=f"C{c}", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="lr / B", ylabel="T of the fitted Coulomb gas",
           title="local Coulomb gas fitted to the stationary spectra\n(dotted: small-lr slope)")
    ax.legend(fontsize=6)

    ax = flat[7]
    T = d["T"].values
    for var, label in (("eig_matrix", "matrix DBM"), ("eig_sde", "eigenvalue SDE")):
        e = d[var].sel(time=d["time"] > float(d.attrs["burn_in_time"])).values
        width, err = dbm.rms_width(e)
        slope, serr = dbm.width_exponent(T, width, err)
        ax.loglog(T, width, "o" if var == "eig_matrix" else "s",
                  label=f"{label}: slope {slope:.4f}({round(1e4 * serr)})")
    ax.loglog(T, np.sqrt(dbm.stationary_mean_square(int(d.attrs["n"]), T)), "k-",
              label="exact sqrt(T (1 + 1/n))")
    ax.set(xlabel="DBM temperature T", ylabel="rms eigenvalue",
           title="DBM: simulator consistency check only\n(width ~ sqrt(T) by scale invariance, not evidence)")
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
    fig, axes = plt.subplots(2, 4, figsize=(24, 9.5))

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
        floor = tails["xmin_at_floor"].sel(matrix=kind).values.astype(bool)
        a = tails["alpha"].sel({"method": "powerlaw", "matrix": kind}).values
        ax.plot(steps[ok & ~floor] + 1, a[ok & ~floor], "*", color=f"C{c}", ms=10)
        ax.plot(steps[ok & floor] + 1, a[ok & floor], "*", color=f"C{c}", mfc="none", ms=10)
    first = json.loads(tails.attrs["tail_first_step"])
    ax.set(xscale="log", ylim=(1, 12), xlabel="AdamW step + 1", ylabel="alpha (density ~ lambda^-alpha)",
           title=f"pooled heads (error bars > {SHOWN_ERR:g} not drawn)\nstar: tail supported (open: x_min at "
                 "the search floor); first at " + ", ".join(f"{k} {v}" for k, v in first.items()) + " (-1: never)")
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
    ax.set(xlabel="AdamW step + 1", ylabel="iid-null p-value", title=f"MP departure: step {dep}")
    ax.legend(fontsize=7, loc="lower left")
    twin = ax.twinx()
    rn = float(spec["spacing_ratio_null_mean"])
    for var, color, label in (("spacing_ratio_mean", "C1", "<r>, mean over heads"),
                              ("spacing_ratio_bulk_mean", "C4", "<r> of the bulk (outliers dropped)")):
        m, e = spec[var].values, spec[f"{var}_err"].values
        twin.plot(steps + 1, m, "-", color=color, lw=1.2, label=label)
        twin.fill_between(steps + 1, m - e, m + e, color=color, alpha=0.2)
    twin.axhline(rn, color="C1", ls="--", lw=0.8, label=f"iid 64 x 16: {rn:.4f}")
    twin.axhline(sp.GOE_MEAN_R, color="k", ls="-.", lw=0.8, label=f"GOE {sp.GOE_MEAN_R}")
    twin.axhline(sp.POISSON_MEAN_R, color="k", ls=":", lw=0.8, label=f"Poisson {sp.POISSON_MEAN_R:.4f}")
    twin.set(ylabel="mean spacing ratio <r> (bands: +-1 error)", ylim=(0.35, 0.6))
    twin.legend(fontsize=7, loc="lower right")

    ax = axes[0, 3]
    pos = np.arange(len(names))
    cut = float(spec.attrs["outlier_cut"])
    for off, t, color in ((-0.2, 0, "C0"), (0.2, len(steps) - 1, "C3")):
        r, e = spec["spacing_ratio"].values[t], spec["spacing_ratio_err"].values[t]
        m, me = float(spec["spacing_ratio_mean"][t]), float(spec["spacing_ratio_mean_err"][t])
        ax.errorbar(pos + off, r, yerr=e, fmt="o", ms=3, capsize=1.5, color=color,
                    label=f"step {int(steps[t])}: mean {_pm(m, me)}, {int(spec['n_outliers'][t].sum())} outliers")
    ax.axhline(sp.GOE_MEAN_R, color="k", ls="-.", lw=0.8, label="GOE")
    ax.axhline(sp.POISSON_MEAN_R, color="k", ls=":", lw=0.8, label="Poisson")
    ax.set_xticks(pos[::3], [h.rsplit(".", 1)[0] for h in names[::3]], rotation=90, fontsize=6)
    ax.set(ylim=(0, 1), ylabel="<r> of one head (14 ratios)",
           title=f"per head, no pooling (outlier: x > {cut:.2f}, the iid null's 99% top level)")
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    t = len(steps) - 1
    rb, nout = spec["spacing_ratio_bulk"].values[t], spec["n_outliers"].values[t]
    m, me = float(spec["spacing_ratio_bulk_mean"][t]), float(spec["spacing_ratio_bulk_mean_err"][t])
    ax.plot(pos, rb, "o", ms=3, color="C4", label=f"bulk <r>, step {int(steps[t])}: mean {_pm(m, me)}")
    ax.axhline(rn, color="C1", ls="--", lw=0.8, label=f"iid 64 x 16: {rn:.4f}")
    ax.axhline(sp.POISSON_MEAN_R, color="k", ls=":", lw=0.8, label="Poisson")
    ax.set_xticks(pos[::3], [h.rsplit(".", 1)[0] for h in names[::3]], rotation=90, fontsize=6)
    ax.set(ylim=(0, 1), ylabel="<r> of the levels below the outlier cut")
    twin = ax.twinx()
    twin.bar(pos, nout, color="0.7", alpha=0.5, label="outliers per head")
    twin.set(ylabel="outliers", ylim=(0, 16))
    ax.legend(fontsize=7, loc="upper left")
    twin.legend(fontsize=7, loc="upper right")
    ax.set_title("per head at the last step: bulk <r> and outliers")

    ax = axes[1, 3]
    ax.plot(spec["train_step"].values, spec["train_loss"].values, lw=0.5)
    ax.set(xscale="log", xlabel="AdamW step", ylabel="cross entropy (nats/char)",
           title=f"training loss (val {float(spec.attrs['val_loss']):.3f})")
    fig.tight_layout()
    return fig
