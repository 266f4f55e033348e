"""Artifact-level analyses of the RMT study: spectra of recorded weights and tail exponents of
the transformer's per-head spectra (datasets in, datasets out; the CLI writes them).  The
temperature of an (lr, B) grid is in :mod:`physml.rmt.grid`."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from physml.rmt import spectra as sp
from physml.rmt import tails as tl


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


def level_statistics(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Level statistics of spectra ``x (n_spectra, M)`` (each scaled to its own MP variance):
    the KS distance of their nearest-neighbour spacings from the GOE Wigner surmise, after
    unfolding with the pooled staircase (:func:`spectra.unfold_spectrum`), and the spacing
    ratios of each spectrum, ``(n_spectra, M - 2)`` (no unfolding)."""
    x = np.atleast_2d(x)
    D = sp.ks_distance(sp.spacings(sp.unfold_spectrum(x)), sp.wigner_surmise_cdf)
    return D, sp.spacing_ratios(x).reshape(len(x), -1)


def bulk_ratio(x: np.ndarray, cut: float) -> tuple[np.ndarray, np.ndarray]:
    """The outlier rule: in each spectrum of ``x (n_spectra, M)`` (in units of its fitted MP
    variance) the levels above ``cut`` are outliers.  Returns (number of outliers, <r> of the
    levels below the cut: nan where fewer than three remain)."""
    x = np.atleast_2d(x)
    n_out = np.sum(x > cut, axis=-1)
    r = np.full(len(x), np.nan)
    for i, row in enumerate(x):
        bulk = row[row <= cut]
        if len(bulk) >= 3:
            r[i] = sp.spacing_ratios(bulk).mean()
    return n_out, r


def spectra_dataset(ds: xr.Dataset, *, n_null: int, seed: int, p_threshold: float) -> xr.Dataset:
    """Eigenvalues of every recorded W, MP test per step (pooled over seeds or matrices, and per
    matrix) against the iid Gaussian null, level spacings against the Wigner surmise (pooled)
    and spacing ratios <r> per matrix with errors, averaged over matrices, and again for the
    bulk below the outlier cut (:func:`bulk_ratio`; the cut from the null's largest level)."""
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
    null_levels = [level_statistics(x / sp.fit_mp(x, q)[:, None])
                   for x in (sp.gram_eigenvalues(rng.standard_normal((n_pool, *shape))) / N
                             for _ in range(n_null))]
    null_wigner = np.array([d for d, _ in null_levels])
    null_ratios = np.concatenate([r for _, r in null_levels])             # (n_null n_pool, M - 2)
    null_r = null_ratios.mean(axis=1)
    # a head's <r> error: std(r) / sqrt(M - 2), scaled by the factor that makes it the spread
    # of <r> over iid matrices of this shape (consecutive ratios are correlated)
    se_factor = float(null_r.std(ddof=1) / np.sqrt(np.mean(null_ratios.var(axis=1, ddof=1)
                                                              / null_ratios.shape[1])))
    cut = float(np.quantile(null_single.top, 0.99) * sp.mp_edges(1.0, q)[1])
    D, p, D_bulk, p_bulk, top, p_top, D_wig, p_wig = (np.empty(n_step) for _ in range(8))
    sigma2, D1, p1, mean_r, r_err, r_bulk, n_out = (np.empty((n_step, n_pool)) for _ in range(7))
    for t in range(n_step):
        x = eig[t] / N
        scaled = x / sp.fit_mp(x, q)[:, None]
        D_wig[t], ratios = level_statistics(scaled)
        mean_r[t] = ratios.mean(axis=1)
        r_err[t] = se_factor * ratios.std(axis=1, ddof=1) / np.sqrt(ratios.shape[1])
        n_out[t], r_bulk[t] = bulk_ratio(scaled, cut)
        p_wig[t] = (np.sum(null_wigner >= D_wig[t]) + 1) / (n_null + 1)
        res = sp.mp_test(eig[t], shape, null_pooled)
        D[t], p[t], sigma2[t], top[t], p_top[t] = res.distance, res.p_value, res.sigma2, res.top, res.p_top
        bulk = sp.mp_test(eig[t], shape, null_bulk, exclude_top=1)
        D_bulk[t], p_bulk[t] = bulk.distance, bulk.p_value
        for m in range(n_pool):
            single = sp.mp_test(eig[t, m:m + 1], shape, null_single)
            D1[t, m], p1[t, m] = single.distance, single.p_value
    with warnings.catch_warnings():   # a step with no bulk <r> gives nan, as it should
        warnings.simplefilter("ignore", RuntimeWarning)
        bulk_mean = np.nanmean(r_bulk, axis=1)
        bulk_err = np.nanstd(r_bulk, axis=1, ddof=1) / np.sqrt(np.sum(np.isfinite(r_bulk), axis=1))
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
        wigner_distance=(("step",), D_wig, {"long_name": "KS distance of the pooled unfolded "
                                            "nearest-neighbour spacings from the GOE Wigner surmise"}),
        wigner_p_value=(("step",), p_wig, {"long_name": "fraction of iid-null distances >= observed"}),
        wigner_null_median=((), float(np.median(null_wigner)),
                            {"long_name": "median Wigner distance of iid Gaussian matrices"}),
        spacing_ratio=(("step", pool), mean_r, {"long_name": "mean ratio <r> of consecutive level "
                                                 "spacings of each matrix"}),
        spacing_ratio_err=(("step", pool), r_err, {"long_name": "error of each matrix's <r>: std(r) / "
                                                   "sqrt(M - 2) times the attribute spacing_ratio_err_factor"}),
        spacing_ratio_mean=(("step",), mean_r.mean(axis=1), {"long_name": f"<r> averaged over the {pool} dim"}),
        spacing_ratio_mean_err=(("step",), mean_r.std(axis=1, ddof=1) / np.sqrt(n_pool),
                                {"long_name": "its standard error (spread over matrices)"}),
        n_outliers=(("step", pool), n_out.astype(np.int16),
                    {"long_name": "levels above the outlier cut (attribute outlier_cut)"}),
        spacing_ratio_bulk=(("step", pool), r_bulk, {"long_name": "<r> of the levels below the outlier "
                                                     "cut (nan: fewer than three)"}),
        spacing_ratio_bulk_mean=(("step",), bulk_mean, {"long_name": "bulk <r> averaged over matrices"}),
        spacing_ratio_bulk_mean_err=(("step",), bulk_err, {"long_name": "its standard error"}),
        spacing_ratio_null_mean=((), float(null_r.mean()), {"long_name": "<r> of one iid Gaussian "
                                                             "matrix of the same shape, mean"}),
        spacing_ratio_null_std=((), float(null_r.std(ddof=1)), {"long_name": "its standard deviation"}),
    )
    out.attrs.update(outlier_cut=cut, spacing_ratio_err_factor=se_factor,
                     outlier_rule="a level is an outlier when lambda / (N sigma^2_fit) exceeds the 99% "
                                  "quantile of the largest level of one iid Gaussian matrix of the same "
                                  "shape (in units of the MP upper edge) times that edge")
    out.attrs.update(aspect_N=N, aspect_q=q, pool_dim=pool, n_null=n_null, p_threshold=p_threshold,
                     mp_departure_step=departure_step(steps, p, p_threshold),
                     mp_departure_step_bulk=departure_step(steps, p_bulk, p_threshold),
                     mp_outlier_step=departure_step(steps, p_top, p_threshold))
    return out


TAIL_METHODS = ("powerlaw", "weightwatcher", "hill")
TAIL_COLUMNS = ("matrix", "step", "method", "alpha", "alpha_err", "xmin", "n_tail", "p_value", "xmin_at_floor")


def _head_groups(names) -> dict[str, list[int]]:
    """Pools of the per-head matrices ``b{layer}.h{head}.{kind}``: each kind over every head of
    every layer (``q``, ``k``, ``v``) and over the heads of one layer (``b{layer}.{kind}``)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        m = re.fullmatch(r"b(\d+)\.h(\d+)\.([qkv])", str(name))
        if m is None:
            raise ValueError(f"matrix name {name!r} is not of the form b<layer>.h<head>.<q|k|v>: "
                             "tails need the per-head matrices of `physml rmt transformer`")
        layer, _, kind = m.groups()
        groups.setdefault(kind, []).append(i)
        groups.setdefault(f"b{layer}.{kind}", []).append(i)
    return dict(sorted(groups.items(), key=lambda kv: (len(kv[0]) > 1, kv[0])))


def tails_dataset(spec: xr.Dataset, *, n_boot: int, seed: int, xmin_quantile: float) -> xr.Dataset:
    """Tail exponents of the transformer's per-head spectra (``rmt spectra`` of an
    ``rmt_transformer`` run) by three methods (:mod:`physml.rmt.tails`).

    Each head's eigenvalues are scaled to the unit Marchenko-Pastur law,
    ``x = lambda / (N sigma^2_fit)`` with its median-matched sigma^2, and pooled: per kind over
    all heads and layers (``q``, ``k``, ``v``) and per layer over its heads (``b0.q``, ...), at
    every snapshot; each head alone (16 values) at the last snapshot.  Variables
    ``(method, matrix, step)``: alpha (density exponent), alpha_err, xmin, n_tail, p_value (CSN
    bootstrap goodness of fit, nan for the other methods); ``(matrix, step)``: the CSN KS
    distance, likelihood ratios and whether a tail is supported (pooled samples only: single
    heads get no likelihood ratios and are never marked supported); ``(kind, step)``: chi^2 test
    that the per-layer CSN exponents share one value (``common_*``); attributes: verdicts."""
    if spec.attrs.get("kind") != "rmt_transformer":
        raise ValueError(f"tails need the spectra of an rmt_transformer run, got kind "
                         f"{spec.attrs.get('kind')!r}")
    names = [str(m) for m in spec["matrix"].values]
    groups = _head_groups(names)
    steps = spec["step"].values
    x = (spec["eigenvalue"].transpose("step", "matrix", "k").values
         / float(spec.attrs["aspect_N"]) / spec["mp_sigma2"].transpose("step", "matrix").values[..., None])
    rows = list(groups) + names
    shape = (len(TAIL_METHODS), len(rows), len(steps))
    cols = {c: np.full(shape, np.nan) for c in ("alpha", "alpha_err", "xmin", "n_tail", "p_value")}
    detail = {c: np.full(shape[1:], np.nan) for c in ("ks_distance", "R_lognormal", "p_lognormal",
                                                      "R_exponential", "p_exponential")}
    supported = np.zeros(shape[1:], dtype=np.int8)
    at_floor = np.zeros(shape[1:], dtype=np.int8)
    rng = np.random.default_rng(seed)
    verdicts = {}
    for t in range(len(steps)):
        todo = [(r, groups[r]) for r in groups] + ([(n, [i]) for i, n in enumerate(names)]
                                                  if t == len(steps) - 1 else [])
        for name, idx in todo:
            r = rows.index(name)
            sample = x[t, idx].ravel()
            pooled = len(idx) > 1
            fit = tl.fit_power_law(sample, n_boot, rng, compare=pooled, xmin_quantile=xmin_quantile)
            per_method = {"powerlaw": (fit.alpha, fit.alpha_err, fit.xmin, fit.n_tail, fit.p_value),
                          "weightwatcher": (*tl.weightwatcher_alpha(sample), np.nan),
                          "hill": (*tl.hill(sample), np.nan)}
            for m, method in enumerate(TAIL_METHODS):
                for c, v in zip(cols, per_method[method]):
                    cols[c][m, r, t] = v
            detail["ks_distance"][r, t] = fit.distance
            detail["R_lognormal"][r, t], detail["p_lognormal"][r, t] = fit.R_lognormal, fit.p_lognormal
            detail["R_exponential"][r, t], detail["p_exponential"][r, t] = fit.R_exponential, fit.p_exponential
            supported[r, t] = fit.supported
            at_floor[r, t] = fit.xmin_at_floor
            if t == len(steps) - 1 and pooled:
                verdicts[name] = fit.verdict()
    kinds = [k for k in "qkv" if k in groups]
    chi2, dof, p_common = (np.full((len(kinds), len(steps)), np.nan) for _ in range(3))
    pl = TAIL_METHODS.index("powerlaw")
    for j, kind in enumerate(kinds):
        layer_rows = [rows.index(g) for g in groups if g.endswith(f".{kind}")]
        a, e = cols["alpha"][pl, layer_rows], cols["alpha_err"][pl, layer_rows]
        chi2[j], dof[j], p_common[j] = common_value_test(a, e)
    first = {}
    for kind in kinds:
        ok = np.flatnonzero(supported[rows.index(kind)])
        first[kind] = int(steps[ok[0]]) if ok.size else -1
    coords = {"method": list(TAIL_METHODS), "matrix": rows, "step": steps, "kind": kinds}
    dims3, dims2 = ("method", "matrix", "step"), ("matrix", "step")
    ds = xr.Dataset(
        {"alpha": (dims3, cols["alpha"], {"long_name": "tail exponent of the density, p(x) ~ x^-alpha"}),
         "alpha_err": (dims3, cols["alpha_err"], {"long_name": "powerlaw: bootstrap std; weightwatcher: "
                                                  "its sigma; hill: (alpha - 1) / sqrt(k)"}),
         "xmin": (dims3, cols["xmin"], {"long_name": "start of the tail in x = lambda / (N sigma^2_fit)"}),
         "n_tail": (dims3, cols["n_tail"], {"long_name": "values in the tail"}),
         "p_value": (dims3, cols["p_value"], {"long_name": "CSN bootstrap goodness-of-fit p-value"}),
         "ks_distance": (dims2, detail["ks_distance"], {"long_name": "CSN KS distance of the tail"}),
         "R_lognormal": (dims2, detail["R_lognormal"], {"long_name": "normalised log-likelihood ratio "
                                                        "power law / lognormal (> 0: power law)"}),
         "p_lognormal": (dims2, detail["p_lognormal"]),
         "R_exponential": (dims2, detail["R_exponential"], {"long_name": "normalised log-likelihood "
                                                            "ratio power law / exponential"}),
         "p_exponential": (dims2, detail["p_exponential"]),
         "supported": (dims2, supported, {"long_name": "1: the CSN tail passes physml.rmt.tails' rule"}),
         "xmin_at_floor": (dims2, at_floor, {"long_name": "1: the CSN x_min is the lowest value the "
                                             "scan may pick (xmin_quantile): a tail set by the search floor"}),
         "common_chi2": (("kind", "step"), chi2, {"long_name": "chi^2 of the per-layer CSN alphas "
                                                   "around their weighted mean"}),
         "common_dof": (("kind", "step"), dof),
         "common_p": (("kind", "step"), p_common, {"long_name": "chi^2 p-value: small = the layers' "
                                                     "exponents differ"})},
        coords=coords)
    keep = ("val_loss", "vocab_size", "corpus_sha256", "corpus_python_version", "aspect_N", "aspect_q")
    ds.attrs.update({k: spec.attrs[k] for k in keep if k in spec.attrs})
    ds.attrs.update(kind="rmt_tails", n_boot=n_boot, xmin_quantile=xmin_quantile,
                    verdicts=json.dumps(verdicts), tail_first_step=json.dumps(first),
                    rule_p_gof=tl.P_GOF, rule_p_lr=tl.P_LR, rule_min_tail=tl.MIN_TAIL)
    return ds


def common_value_test(alpha: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``alpha (n_estimates, n_steps)`` with errors: chi^2 of the estimates around
    their inverse-variance weighted mean, its degrees of freedom (n - 1) and p-value."""
    from scipy import stats   # here: scipy.stats costs every rmt verb a second of start-up

    alpha, err = np.atleast_2d(alpha), np.atleast_2d(err)
    w = 1 / err ** 2
    mean = np.sum(w * alpha, axis=0) / np.sum(w, axis=0)
    chi2 = np.sum(((alpha - mean) / err) ** 2, axis=0)
    dof = np.full(chi2.shape, alpha.shape[0] - 1.0)
    return chi2, dof, stats.chi2.sf(chi2, dof)


def tails_table(ds: xr.Dataset) -> pd.DataFrame:
    """The tidy table of :func:`tails_dataset`: one row per fitted (matrix, step) and method
    (a failed weightwatcher fit stays as a row of nan), columns :data:`TAIL_COLUMNS`
    (``xmin_at_floor``: 1 or 0 for the CSN rows, empty for the others)."""
    computed = np.isfinite(ds["alpha"].sel({"method": "powerlaw"})).broadcast_like(ds["alpha"])
    floor = ds["xmin_at_floor"].astype(float).where(ds["method"] == "powerlaw")   # CSN rows only
    df = ds[["alpha", "alpha_err", "xmin", "n_tail", "p_value"]].assign(computed=computed, xmin_at_floor=floor)
    df = df.to_dataframe().reset_index()
    df = df[df["computed"]].astype({"n_tail": int})
    return df[list(TAIL_COLUMNS)].reset_index(drop=True)
