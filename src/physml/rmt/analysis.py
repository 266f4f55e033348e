"""Artifact-level analyses of the RMT study: spectra of recorded weights and the temperature
of the linear teacher-student grid (datasets in, datasets out; the CLI writes them)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from physml.rmt import spectra as sp
from physml.rmt import temperature as tm
from physml.rmt.linear_sgd import stationary_variance


def _pool_dim(W: xr.DataArray) -> str:
    other = [d for d in W.dims if d not in ("step", "row", "col")]
    if W.dims[-2:] != ("row", "col") or "step" not in W.dims or len(other) != 1:
        raise ValueError(f"weights W must have dims (step, one pooled dim, row, col), got {W.dims}")
    return other[0]


def departure_step(steps: np.ndarray, p: np.ndarray, threshold: float) -> int:
    """First snapshot step from which every p-value is below ``threshold`` (-1 if none)."""
    below = np.asarray(p) < threshold
    if not below[-1]:
        return -1
    keep = np.flatnonzero(~below)
    return int(steps[0] if len(keep) == 0 else steps[keep[-1] + 1])


def spectra_dataset(ds: xr.Dataset, *, n_null: int, seed: int, p_threshold: float) -> xr.Dataset:
    """Eigenvalues of every recorded W, MP test per step (pooled over seeds or matrices, and per
    matrix) against the iid Gaussian null, and Hill tail fits at the last step."""
    W = ds["W"]
    pool = _pool_dim(W)
    W = W.transpose("step", pool, "row", "col")
    shape = W.shape[-2:]
    N, q = sp.aspect(shape)
    eig = sp.gram_eigenvalues(W.values)                       # (step, pool, k)
    rng = np.random.default_rng(seed)
    null_pooled = sp.mp_null(shape, eig.shape[1], n_null, rng)
    null_single = sp.mp_null(shape, 1, n_null, rng)
    null_bulk = sp.mp_null(shape, eig.shape[1], n_null, rng, exclude_top=1)
    n_step, n_pool = eig.shape[:2]
    D, p, D_bulk, p_bulk, top, p_top = (np.empty(n_step) for _ in range(6))
    sigma2, D1, p1 = (np.empty((n_step, n_pool)) for _ in range(3))
    for t in range(n_step):
        res = sp.mp_test(eig[t], shape, null_pooled)
        D[t], p[t], sigma2[t], top[t], p_top[t] = res.distance, res.p_value, res.sigma2, res.top, res.p_top
        bulk = sp.mp_test(eig[t], shape, null_bulk, exclude_top=1)
        D_bulk[t], p_bulk[t] = bulk.distance, bulk.p_value
        for m in range(n_pool):
            single = sp.mp_test(eig[t, m:m + 1], shape, null_single)
            D1[t, m], p1[t, m] = single.distance, single.p_value
    steps = W["step"].values
    out = ds.drop_vars("W")
    out = out.assign(
        eigenvalue=(("step", pool, "k"), eig, {"long_name": "eigenvalues of the smaller Gram matrix "
                                                "(W^T W or W W^T), unnormalised"}),
        mp_sigma2=(("step", pool), sigma2, {"long_name": "MP variance of the entries fitted by "
                                                          "matching the median eigenvalue"}),
        mp_distance=(("step",), D, {"long_name": f"pooled KS distance from MP over the {pool} dim"}),
        mp_p_value=(("step",), p, {"long_name": "fraction of iid-null pooled distances >= observed"}),
        mp_distance_bulk=(("step",), D_bulk, {"long_name": "pooled KS distance of the bulk (each "
                                              "matrix's top eigenvalue excluded) from MP"}),
        mp_p_bulk=(("step",), p_bulk, {"long_name": "iid-null p-value of the bulk distance"}),
        mp_top=(("step",), top, {"long_name": "largest eigenvalue over the pooled matrices in units "
                                 "of its matrix's fitted MP upper edge"}),
        mp_p_top=(("step",), p_top, {"long_name": "iid-null p-value of mp_top (small: an outlier)"}),
        mp_distance_single=(("step", pool), D1, {"long_name": "KS distance of each matrix from MP"}),
        mp_p_single=(("step", pool), p1, {"long_name": "null p-value of each matrix"}),
        mp_null_median=((), float(np.median(null_pooled.distance)), {"long_name": "median pooled null distance"}),
    )
    tail = tail_fits(eig[-1])
    out = out.assign(
        tail_alpha=(("tail_sample", "tail_k"), tail["alpha"],
                    {"long_name": "Hill estimate of the survival exponent of lambda / median(lambda)"}),
        tail_alpha_err=(("tail_sample", "tail_k"), tail["err"]),
        tail_kvalue=(("tail_sample", "tail_k"), tail["k"], {"long_name": "top values used"}),
    ).assign_coords(tail_sample=["all", "without_each_top"])
    out.attrs.update(aspect_N=N, aspect_q=q, pool_dim=pool, n_null=n_null, p_threshold=p_threshold,
                     mp_departure_step=departure_step(steps, p, p_threshold),
                     mp_departure_step_bulk=departure_step(steps, p_bulk, p_threshold),
                     mp_outlier_step=departure_step(steps, p_top, p_threshold),
                     tail_stable=json.dumps(tail["stable"]), tail_verdict=tail["verdict"],
                     tail_estimator="Hill estimator of the survival exponent alpha "
                                    "(P(x > t) ~ t^-alpha), eigenvalues pooled over matrices after "
                                    "dividing each matrix's by its median; stable = all k within "
                                    "2 standard errors of the middle k")
    return out


def tail_fits(eig: np.ndarray, n_k: int = 8) -> dict:
    """Hill plots of eigenvalues ``(n_matrices, M)`` pooled after dividing each matrix's by its
    median: of all of them, and with each matrix's largest removed (a tail made of one outlier
    per matrix changes drastically).  k runs log-spaced from n_matrices to a quarter of the pool."""
    eig = np.asarray(eig, float)
    scaled = eig / np.median(eig, axis=-1, keepdims=True)
    samples = {"all": scaled.ravel(), "without_each_top": np.sort(scaled, axis=-1)[:, :-1].ravel()}
    k_min = max(5, eig.shape[0])
    fits = {name: sp.tail_fit(x, k_min, max(k_min + n_k, len(x) // 4), n_k) for name, x in samples.items()}
    width = max(len(f.k) for f in fits.values())

    def padded(attr, fill=np.nan):
        return np.array([np.pad(np.asarray(getattr(f, attr), float), (0, width - len(f.k)),
                                constant_values=fill) for f in fits.values()])

    stable = {name: f.stable for name, f in fits.items()}
    if all(stable.values()):
        a = fits["all"]
        verdict = f"alpha = {a.alpha_claim:.2f} +- {a.alpha_claim_err:.2f} (stable in k)"
    else:
        verdict = ("no exponent claimed: the Hill estimate drifts with k ("
                   + "; ".join(f"{n}: {f.alpha.min():.2f}..{f.alpha.max():.2f}" for n, f in fits.items())
                   + ")")
    return {"alpha": padded("alpha"), "err": padded("alpha_err"), "k": padded("k"),
            "stable": stable, "verdict": verdict}


def temperature_dataset(weights: list[xr.Dataset], *, lr_linear_max: float) -> xr.Dataset:
    """Per (lr, B) point of the linear teacher-student: measured entry variance against the
    closed form, effective temperature from eigenvalue widths, degenerate-pair spacings; and
    the linear-scaling fits and collapse checks (attribute ``fits``, JSON)."""
    if len(weights) < 3:
        raise ValueError(f"need at least three (lr, B) points, got {len(weights)}")
    for ds in weights:
        if ds.attrs.get("kind") != "rmt_linear":
            raise ValueError("temperature needs weights of `physml rmt linear`, got kind "
                             f"{ds.attrs.get('kind')!r}")
    ref = weights[0]
    s = ref["teacher_singular_values"].values
    n, sigma = int(ref.attrs["n"]), float(ref.attrs["sigma"])
    for ds in weights:
        if (int(ds.attrs["n"]), float(ds.attrs["sigma"])) != (n, sigma) or not np.array_equal(
                ds["teacher_singular_values"].values, s):
            raise ValueError("all points must share the teacher (n, singular values) and sigma")
    weights = sorted(weights, key=lambda d: (float(d.attrs["lr"]), int(d.attrs["batch"])))
    lr = np.array([float(d.attrs["lr"]) for d in weights])
    B = np.array([int(d.attrs["batch"]) for d in weights])
    rows = {k: [] for k in ("entry", "entry_err", "teff", "teff_err", "var", "var_err", "pairs")}
    for ds in weights:
        eig = sp.gram_eigenvalues(ds["W"].transpose("seed", "step", "row", "col").values)
        steps, burn = ds["step"].values, int(ds.attrs["burn_in"])
        d2 = ds["delta_sq"].values
        rows["entry"].append(d2.mean())
        rows["entry_err"].append(d2.std(ddof=1) / np.sqrt(len(d2)))
        t, te = tm.effective_temperature(eig, steps, burn, s)
        rows["teff"].append(t)
        rows["teff_err"].append(te)
        v, ve = tm.eigenvalue_variances(eig, steps, burn)
        rows["var"].append(v)
        rows["var_err"].append(ve)
        rows["pairs"].append(tm.pair_spacings(eig[:, -1], s))
    c = stationary_variance(lr, B, n, sigma)
    x_naive, x_corr = lr / B, c / sigma ** 2
    teff = np.array(rows["teff"])
    small = lr <= lr_linear_max
    if small.sum() < 3:
        raise ValueError(f"only {small.sum()} points have lr <= lr_linear_max = {lr_linear_max}; "
                         "the naive linear fit needs three")
    naive = tm.fit_line(x_naive[small], teff[small])
    corrected = tm.fit_line(x_corr, teff)
    entry = np.array(rows["entry"])
    fits = {
        "naive": {"slope": naive.slope, "intercept": naive.intercept, "r2": naive.r2,
                  "lr_max": lr_linear_max, "span": float(x_naive[small].max() / x_naive[small].min()),
                  "expected_slope": sigma ** 2 / 2},
        "corrected": {"slope": corrected.slope, "intercept": corrected.intercept, "r2": corrected.r2,
                      "expected_slope": sigma ** 2},
        "collapse_naive": tm.collapse_spread(x_naive, teff),
        "collapse_corrected": tm.collapse_spread(x_naive, teff / x_corr),
        "entry_over_closed_form_max_abs_z": float(np.max(np.abs(entry - c) / np.array(rows["entry_err"]))),
    }
    fits = json.loads(json.dumps(fits, default=float).replace("NaN", "null"))
    point = np.arange(len(weights))
    ds = xr.Dataset(
        {"lr": (("point",), lr), "batch": (("point",), B),
         "lr_over_B": (("point",), x_naive, {"long_name": "naive scaling variable lr / B"}),
         "x_corrected": (("point",), x_corr,
                         {"long_name": "corrected variable lr / (B (2 - lr - lr (n+1)/B)) = c / sigma^2"}),
         "closed_form": (("point",), c, {"long_name": "exact stationary entry variance c"}),
         "entry_variance": (("point",), entry, {"long_name": "measured stationary variance of W - W_t"}),
         "entry_variance_err": (("point",), np.array(rows["entry_err"])),
         "T_eff": (("point",), teff, {"long_name": "effective temperature from eigenvalue widths"}),
         "T_eff_err": (("point",), np.array(rows["teff_err"])),
         "eig_variance": (("point", "k"), np.array(rows["var"]),
                          {"long_name": "variance of each eigenvalue of W^T W over seeds, late steps"}),
         "eig_variance_err": (("point", "k"), np.array(rows["var_err"])),
         "pair_spacing": (("point", "pair_sample"), np.array(rows["pairs"]),
                          {"long_name": "degenerate-pair spacings at the last step, mean 1 per pair"}),
         "teacher_singular_values": (("k",), s)},
        coords={"point": point})
    ds.attrs.update(kind="rmt_temperature", n=n, sigma=sigma, fits=json.dumps(fits, sort_keys=True))
    return ds
