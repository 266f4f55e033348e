"""Effective temperature over an (lr, B) grid of training runs (docs/rmt.md).

:func:`temperature_dataset` takes the weights of one model at every grid point (``rmt
linear``, ``rmt rbm`` or ``rmt mlp --data online``), measures the width temperature T_eff of
each point (:mod:`physml.rmt.temperature`) and fits it:

* ``lr_over_B``: weighted line T_eff = slope lr/B + intercept over every point; for the
  linear teacher-student also ``naive``, the same over the points with lr <= lr_linear_max;
* ``finite_lr``: weighted line against the model's finite-lr variable, which tends to
  lr / (2B) for small lr: the closed form c / sigma^2 of the linear teacher-student, the
  linearised prediction of :func:`physml.rmt.rbm.linearised_temperature` for the RBM, none for
  the MLP;
* ``scaling``: whether lr/B alone sets T (:func:`physml.rmt.temperature.scaling_test`: a
  collapse over every point, singletons included, and the coefficient of an explicit lr term);
* ``coulomb``: the local Coulomb gas fitted to the stationary eigenvalues
  (:func:`physml.rmt.temperature.coulomb_gas_fit`), its T against lr/B and its beta (models
  with degenerate pairs: linear, RBM).

Every slope and intercept carries its error (from the points' errors, not rescaled) and every
fit its chi^2 per degree of freedom.  :func:`temperature_table` is the tidy table of the fits.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from physml.rmt import rbm as rb
from physml.rmt import spectra as sp
from physml.rmt import temperature as tm
from physml.rmt.linear_sgd import stationary_variance

MODELS = {"rmt_linear": "linear", "rmt_rbm": "rbm", "rmt_mlp": "mlp"}
TABLE_COLUMNS = ("model", "fit", "variable", "n_points", "slope", "slope_err", "intercept",
                 "intercept_err", "expected_slope", "chi2", "dof", "chi2_dof", "p_value",
                 "lr_coef", "lr_coef_err", "lr_coef_z", "max_abs_z", "worst_lr", "worst_batch")


def _eigs(ds: xr.Dataset) -> np.ndarray:
    """Eigenvalues of W^T W (the smaller Gram matrix), ``(seed, step, k)``."""
    return sp.gram_eigenvalues(ds["W"].transpose("seed", "step", "row", "col").values)


def _check_grid(weights: list[xr.Dataset]) -> str:
    kinds = {d.attrs.get("kind") for d in weights}
    if len(kinds) != 1 or not kinds <= set(MODELS):
        raise ValueError(f"temperature needs the weights of one of `physml rmt linear`, `rmt rbm`, "
                         f"`rmt mlp --data online`; got kinds {sorted(map(str, kinds))}")
    kind = kinds.pop()
    if kind == "rmt_mlp" and any(d.attrs.get("data") != "online" for d in weights):
        raise ValueError("MLP weights for a temperature must come from `rmt mlp --data online` "
                         "(a fixed noiseless training set has no stationary width)")
    if len(weights) < 3:
        raise ValueError(f"need at least three (lr, B) points, got {len(weights)}")
    shared = {k: v for k, v in weights[0].attrs.items()
              if k not in ("lr", "batch") and k in ("n", "sigma", "label_noise", "L", "m2",
                                                   "mu2", "sigma_h", "sigma_w")}
    for d in weights:
        if any(d.attrs.get(k) != v for k, v in shared.items()):
            raise ValueError(f"all points must share the model settings {shared}, got "
                             f"lr = {d.attrs.get('lr')}, B = {d.attrs.get('batch')} with "
                             f"{ {k: d.attrs.get(k) for k in shared} }")
    return kind


def _linear_points(weights, point):
    ref = weights[0]
    s = ref["teacher_singular_values"].values
    n, sigma = int(ref.attrs["n"]), float(ref.attrs["sigma"])
    if any(not np.array_equal(d["teacher_singular_values"].values, s) for d in weights):
        raise ValueError("all points must share the teacher's singular values")
    for ds in weights:
        eig, steps, burn = _eigs(ds), ds["step"].values, int(ds.attrs["burn_in"])
        d2 = ds["delta_sq"].values
        v, ve = tm.eigenvalue_variances(eig, steps, burn)
        point(*tm.effective_temperature(eig, steps, burn, s),
              coulomb=tm.coulomb_gas_fit(eig, steps, burn, s), pairs=tm.pair_spacings(eig[:, -1], s),
              entry=d2.mean(), entry_err=d2.std(ddof=1) / np.sqrt(len(d2)), var=v, var_err=ve)
    lr = np.array([float(d.attrs["lr"]) for d in weights])
    B = np.array([int(d.attrs["batch"]) for d in weights])
    c = stationary_variance(lr, B, n, sigma)
    finite = {"values": c / sigma ** 2, "name": "x_corrected",
              "long_name": "finite-lr variable lr / (B (2 - lr - lr (n+1)/B)) = c / sigma^2 (exact)",
              "expected_slope": sigma ** 2}
    extra = {"closed_form": (("point",), c, {"long_name": "exact stationary entry variance c"}),
             "teacher_singular_values": (("k",), s)}
    return finite, sigma ** 2 / 2, extra, {"n": n, "sigma": sigma}


def _rbm_points(weights, point):
    ref = weights[0]
    model = rb.GaussianRBM(L=int(ref.attrs["L"]), m2=float(ref.attrs["m2"]), mu2=float(ref.attrs["mu2"]),
                           sigma_h=float(ref.attrs["sigma_h"]))
    s = np.sqrt(model.stationary_eigenvalues())
    t_lin = []
    for ds in weights:
        keep = ds["diverged"].values == 0
        if keep.sum() < 2:
            raise ValueError(f"lr = {ds.attrs['lr']}, B = {ds.attrs['batch']}: fewer than two runs "
                             "stayed normalisable")
        eig, steps, burn = _eigs(ds)[keep], ds["step"].values, int(ds.attrs["burn_in"])
        point(*tm.effective_temperature(eig, steps, burn, s),
              coulomb=tm.coulomb_gas_fit(eig, steps, burn, s), pairs=tm.pair_spacings(eig[:, -1], s),
              diverged=int((~keep).sum()))
        t_lin.append(rb.linearised_temperature(model, float(ds.attrs["lr"]), int(ds.attrs["batch"])))
    finite = {"values": np.array(t_lin), "name": "T_linearised",
              "long_name": "T_eff of the linearised learning map (physml.rmt.rbm), -> lr / (2B) "
                           "for small lr", "expected_slope": 1.0}
    extra = {"stationary_eigenvalues": (("k",), s ** 2,
                                        {"long_name": "fixed point of the eigenvalues of W^T W"})}
    return finite, 0.5, extra, {k: ref.attrs[k] for k in ("L", "m2", "mu2", "sigma_h")}


def _mlp_points(weights, point):
    for ds in weights:
        keep = ds["diverged"].values == 0
        w = _eigs(ds)[keep]
        r = tm.window_temperature(w, ds["step"].values, int(ds.attrs["burn_in"]))
        point(r["T"], r["T_err"], halves=(r["T_first_half"], r["T_second_half"]),
              diverged=int((~keep).sum()))
    ref = weights[0]
    return None, float("nan"), {}, {"label_noise": ref.attrs["label_noise"], "sigma_w": ref.attrs["sigma_w"]}


def temperature_dataset(weights: list[xr.Dataset], *, lr_linear_max: float) -> xr.Dataset:
    """Per (lr, B) point: T_eff with its error (and, by model, the Coulomb-gas T and beta, the
    degenerate-pair spacings, the closed form or the linearised prediction); the fits of the
    module docstring in the attribute ``fits`` (JSON)."""
    kind = _check_grid(weights)
    model = MODELS[kind]
    weights = sorted(weights, key=lambda d: (float(d.attrs["lr"]), int(d.attrs["batch"])))
    lr = np.array([float(d.attrs["lr"]) for d in weights])
    B = np.array([int(d.attrs["batch"]) for d in weights])
    rows: dict[str, list] = {}

    def point(T, T_err, **more):
        for key, value in {"T": T, "T_err": T_err, **more}.items():
            rows.setdefault(key, []).append(value)

    finite, naive_slope, extra, attrs = {"linear": _linear_points, "rbm": _rbm_points,
                                         "mlp": _mlp_points}[model](weights, point)
    x = lr / B
    T, err = np.array(rows["T"]), np.array(rows["T_err"])
    fits = {"lr_over_B": {**tm.line_fit(x, T, err), "expected_slope": naive_slope},
            "scaling": tm.scaling_test(lr, B, T, err)}
    if model == "linear":
        small = lr <= lr_linear_max
        if small.sum() < 3:
            raise ValueError(f"only {small.sum()} points have lr <= lr_linear_max = {lr_linear_max}; "
                             "the naive linear fit needs three")
        fits["naive"] = {**tm.line_fit(x[small], T[small], err[small]), "lr_max": lr_linear_max,
                         "expected_slope": naive_slope}
    data = {"lr": (("point",), lr), "batch": (("point",), B),
            "lr_over_B": (("point",), x, {"long_name": "naive scaling variable lr / B"}),
            "T_eff": (("point",), T, {"long_name": "effective temperature from eigenvalue widths"}),
            "T_eff_err": (("point",), err), **extra}
    if finite is not None:
        fits["finite_lr"] = {**tm.line_fit(finite["values"], T, err), "variable": finite["name"],
                             "expected_slope": finite["expected_slope"]}
        data[finite["name"]] = (("point",), finite["values"], {"long_name": finite["long_name"]})
    if "coulomb" in rows:
        cg = {k: np.array([c[k] for c in rows["coulomb"]]) for k in ("T", "T_err", "beta", "beta_err")}
        w = 1 / cg["beta_err"] ** 2
        beta = float(np.sum(w * cg["beta"]) / w.sum())
        chi2 = float(np.sum(w * (cg["beta"] - beta) ** 2))
        fits["coulomb"] = {**tm.line_fit(x, cg["T"], cg["T_err"]), "expected_slope": naive_slope,
                           "beta_mean": beta, "beta_mean_err": float(w.sum() ** -0.5),
                           "beta_chi2_dof": chi2 / (len(w) - 1)}
        data.update({"T_coulomb": (("point",), cg["T"], {"long_name": "T of the local Coulomb gas fitted "
                                                         "to the stationary eigenvalues"}),
                     "T_coulomb_err": (("point",), cg["T_err"]),
                     "beta_coulomb": (("point",), cg["beta"], {"long_name": "fitted level-repulsion "
                                                               "exponent of the degenerate pairs"}),
                     "beta_coulomb_err": (("point",), cg["beta_err"]),
                     "pair_spacing": (("point", "pair_sample"), np.array(rows["pairs"]),
                                      {"long_name": "degenerate-pair spacings at the last step, "
                                                    "mean 1 per pair"})})
    if model == "linear":
        entry, entry_err = np.array(rows["entry"]), np.array(rows["entry_err"])
        fits["entry_over_closed_form_max_abs_z"] = float(
            np.max(np.abs(entry - extra["closed_form"][1]) / entry_err))
        data.update({"entry_variance": (("point",), entry, {"long_name": "measured stationary variance "
                                                            "of W - W_t"}),
                     "entry_variance_err": (("point",), entry_err),
                     "eig_variance": (("point", "k"), np.array(rows["var"]),
                                      {"long_name": "variance of each eigenvalue of W^T W over seeds, "
                                                    "late steps"}),
                     "eig_variance_err": (("point", "k"), np.array(rows["var_err"]))})
    if "halves" in rows:
        data["T_eff_halves"] = (("point", "half"), np.array(rows["halves"]),
                                {"long_name": "T_eff over the first and the second half of the window"})
    if "diverged" in rows:
        data["diverged_runs"] = (("point",), np.array(rows["diverged"]))
    fits = json.loads(json.dumps(fits, default=float).replace("NaN", "null"))
    ds = xr.Dataset(data, coords={"point": np.arange(len(weights))})
    ds.attrs.update(kind="rmt_temperature", model=model, fits=json.dumps(fits, sort_keys=True), **attrs)
    return ds


def temperature_table(ds: xr.Dataset) -> pd.DataFrame:
    """One row per fit of :func:`temperature_dataset` (:data:`TABLE_COLUMNS`; nan where a
    column does not apply to the fit)."""
    fits = json.loads(ds.attrs["fits"])
    rows = []
    for name in ("naive", "lr_over_B", "finite_lr", "coulomb", "scaling"):
        if name not in fits:
            continue
        f = fits[name]
        variable = {"finite_lr": f.get("variable"), "scaling": "ln(T / x) vs ln x (+ lr)"}.get(name, "lr_over_B")
        row = {"model": ds.attrs["model"], "fit": name, "variable": variable, "n_points": ds.sizes["point"]}
        if name == "scaling":
            row.update(chi2=f["collapse_chi2"], dof=f["collapse_dof"], chi2_dof=f["collapse_chi2_dof"],
                       p_value=f["collapse_p"], **{k: f[k] for k in ("lr_coef", "lr_coef_err", "lr_coef_z",
                                                                    "max_abs_z", "worst_lr", "worst_batch")})
        else:
            row.update({k: f[k] for k in ("n_points", "slope", "slope_err", "intercept", "intercept_err",
                                          "expected_slope", "chi2", "dof", "chi2_dof", "p_value")})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
