"""Comparison tables: observables of generated ensembles against a reference (HMC).

The table is tidy long form, one row per (observable, source, L, coupling), with
``value`` and ``error`` (Gamma-method errors from the observable artifacts):

- the scalar observables present in the artifacts (phi^4: ``mag``, ``abs_mag``,
  ``chi2``, ``binder``, ``action_density``; U(1): ``plaquette``, ``chi_t``,
  ``top_charge``, ``W_RxR``, ``action_density``, ``cost_per_independent_Q`` (seconds,
  no error)), the connected two-point function as ``G_r0``, ``G_r1``, ... and the
  Q distribution as ``P_Q-1``, ``P_Q0``, ``P_Q1``, ... and ``P_Q_pvalue`` (its chi^2
  p-value against the exact P(Q), independent samples only; same names as the
  observable artifacts);
- ``frac_phibar_pos``: fraction of configurations with phibar > 0, with the
  binomial error sqrt(f (1 - f) / N) (Z2 symmetry demands 1/2);
- for every non-reference source: ``action_hist_ks``, the Kolmogorov-Smirnov
  distance between its distribution of the action density S/V and the
  reference's at the same (L, coupling), and ``action_hist_ks_pvalue``, the
  two-sample KS p-value (the reference configurations are treated as
  independent, which holds where tau_int of S/V is about 1/2).

``pull`` = (value - reference value) / sqrt(error^2 + reference error^2), the
deviation in combined sigma, is stored beside each non-reference row (NaN on
reference rows and where undefined); ``reference`` names the source it was taken
against.  ``ess`` is the Kish effective sample size of reweighted sources, and ESS/N
for sources with importance weights from the model's density (``ess_fraction``; NaN
elsewhere); ``acceptance`` the acceptance rate of the exactness stage (independence
Metropolis, MALA; NaN elsewhere); ``flag`` says why a row cannot be trusted (empty when
it can): a chi_t or P(Q) of a run with frozen topology, any row of a reweighted source
whose ESS is too small, or the reason an observable artifact records in its ``flag``
attribute (:func:`physml.observables.phi4.correction_flag`).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import xarray as xr
from scipy import stats

SCALARS = ("mag", "abs_mag", "chi2", "binder", "plaquette", "chi_t", "top_charge",
           "action_density")
COUPLINGS = ("kappa", "beta")


def _coupling(ds: xr.Dataset) -> tuple[str, float]:
    for name in COUPLINGS:
        if name in ds.attrs:
            return name, round(float(ds.attrs[name]), 10)
    raise ValueError(f"observable artifact has none of the coupling attributes {COUPLINGS}")


def observable_rows(ds: xr.Dataset) -> list[tuple[str, float, float]]:
    """(name, value, error) of every tabulated observable of one artifact."""
    rows = [(o, float(ds[o]), float(ds[f"{o}_err"])) for o in SCALARS if o in ds]
    loops = sorted((str(v) for v in ds.data_vars if str(v).startswith("W_") and not str(v).endswith("_err")),
                   key=lambda v: int(v[2:].split("x")[0]))
    rows += [(o, float(ds[o]), float(ds[f"{o}_err"])) for o in loops]
    if "P_Q" in ds:
        rows += [(f"P_Q{int(q)}", float(v), float(e))
                 for q, v, e in zip(ds["Q"].values, ds["P_Q"].values, ds["P_Q_err"].values)]
    if "P_Q_pvalue" in ds:
        rows.append(("P_Q_pvalue", float(ds["P_Q_pvalue"]), np.nan))
    if "cost_per_independent_Q" in ds:
        rows.append(("cost_per_independent_Q", float(ds["cost_per_independent_Q"]), np.nan))
    if "G" in ds:
        rows += [(f"G_r{int(r)}", float(v), float(e))
                 for r, v, e in zip(ds["r"].values, ds["G"].values, ds["G_err"].values)]
    if "phibar" in ds:
        pb = ds["phibar"].values
        f = float(np.mean(pb > 0))
        rows.append(("frac_phibar_pos", f, float(np.sqrt(f * (1 - f) / len(pb)))))
    return rows


def row_flag(ds: xr.Dataset, name: str) -> str:
    """Why a row of this artifact cannot be trusted ('' if it can): the topological rows
    of an unreliable chi_t, and every row of a reweighted artifact with too small an ESS."""
    if ds.attrs.get("flag"):
        return str(ds.attrs["flag"])
    if "chi_t_reliable" not in ds or int(ds["chi_t_reliable"]):
        return ""
    topological = name in ("chi_t", "cost_per_independent_Q") or name.startswith("P_Q")
    return ds["chi_t_reliable"].attrs.get("reason", "unreliable") if topological or "ess" in ds else ""


def comparison_table(datasets: list[xr.Dataset], reference: str = "hmc") -> xr.Dataset:
    """The long table of all ``datasets`` (observable artifacts of any sources), with pulls
    and action-density distances of every non-reference source against ``reference``."""
    by_point: dict[tuple, dict[str, xr.Dataset]] = defaultdict(dict)
    param = None
    for ds in datasets:
        name, value = _coupling(ds)
        if param not in (None, name):
            raise ValueError(f"artifacts mix couplings {param} and {name}")
        param = name
        key = (int(ds.attrs["L"]), value)
        source = str(ds.attrs.get("source", "unknown"))
        if source in by_point[key]:
            raise ValueError(f"two '{source}' artifacts at L={key[0]}, {param}={key[1]}")
        by_point[key][source] = ds
    records = []
    for (L, coupling), sources in sorted(by_point.items()):
        ref = sources.get(reference)
        ref_rows = {n: (v, e) for n, v, e in observable_rows(ref)} if ref is not None else {}
        for source in sorted(sources, key=lambda s: (s != reference, s)):
            ds = sources[source]
            ess = float(ds["ess"]) if "ess" in ds else float(ds.attrs.get("ess_fraction", np.nan))
            acc = float(ds.attrs.get("imh_acceptance", ds.attrs.get("mala_acceptance_rate", np.nan)))
            against = reference if source != reference else ""
            for name, value, error in observable_rows(ds):
                pull = np.nan
                if source != reference and name in ref_rows:
                    rv, re = ref_rows[name]
                    comb = np.hypot(error, re)
                    pull = (value - rv) / comb if comb > 0 else np.nan
                records.append((name, source, L, coupling, value, error, pull, ess,
                                row_flag(ds, name), acc, against))
            if source != reference and ref is not None and "action_per_site" in ds \
                    and "action_per_site" in ref:
                ks = stats.ks_2samp(ds["action_per_site"].values, ref["action_per_site"].values)
                records.append(("action_hist_ks", source, L, coupling, float(ks.statistic), np.nan,
                                np.nan, ess, "", acc, against))
                records.append(("action_hist_ks_pvalue", source, L, coupling, float(ks.pvalue),
                                np.nan, np.nan, ess, "", acc, against))
    if not records:
        raise ValueError("no observables to tabulate")
    cols = list(zip(*records))
    return xr.Dataset(
        {
            "observable": ("row", np.array(cols[0], dtype=str)),
            "source": ("row", np.array(cols[1], dtype=str)),
            "L": ("row", np.array(cols[2], dtype=np.int64)),
            param: ("row", np.array(cols[3], dtype=float)),
            "value": ("row", np.array(cols[4], dtype=float)),
            "error": ("row", np.array(cols[5], dtype=float)),
            "pull": ("row", np.array(cols[6], dtype=float),
                     {"long_name": f"(value - {reference}) / combined error"}),
            "ess": ("row", np.array(cols[7], dtype=float),
                    {"long_name": "Kish effective sample size (reweighted sources); ESS/N (importance "
                                  "weights from the model's density)"}),
            "flag": ("row", np.array(cols[8], dtype=str),
                     {"long_name": "why the row cannot be trusted ('' if it can)"}),
            "acceptance": ("row", np.array(cols[9], dtype=float),
                           {"long_name": "acceptance rate of the exactness stage (IMH, MALA)"}),
            "reference": ("row", np.array(cols[10], dtype=str),
                          {"long_name": "the source the pull is taken against"}),
        },
        coords={"row": np.arange(len(records))},
        attrs={"reference": reference, "coupling": param,
               "theory": str(datasets[0].attrs.get("theory", ""))},
    )


def table_frame(table: xr.Dataset):
    """The CSV columns ``observable, source, L, <coupling>, value, error, pull, ess, flag,
    acceptance, reference`` as a DataFrame."""
    param = table.attrs["coupling"]
    cols = ["observable", "source", "L", param, "value", "error", "pull", "ess", "flag", "acceptance",
            "reference"]
    return table[cols].to_dataframe().reset_index(drop=True)
