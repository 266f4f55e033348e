"""phi^4 observables with Gamma-method errors.

phibar = (1/V) sum_x phi_x with V = L^2.  Reported, each with ``_err`` and
``tau_int_`` companions (tau_int in units of stored measurements, Wolff's
convention: 0.5 for independent data):

- ``mag`` = <phibar>, ``abs_mag`` = <|phibar|>;
- ``chi2`` = V (<phibar^2> - <phibar>^2);
- ``binder`` = 1 - <phibar^4> / (3 <phibar^2>^2);
- ``G`` over ``r`` = 0 .. L/2: G(r) = <C(r)> - <phibar>^2 with
  C(r) = (1/2V) sum_x phi_x (phi_{x + r e_x} + phi_{x + r e_y}), averaged over both axes;
- ``action_density`` = <S>/V.

Per-configuration ``phibar`` and ``action_per_site`` are kept for histograms.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from physml.stats.gamma import estimate, primary


def momentum_propagator(phi: torch.Tensor) -> torch.Tensor:
    """|phi~(p)|^2 / V per configuration, phi~(p) = sum_x e^{-ipx} phi_x; shape ``(n, L, L)``."""
    volume = phi.shape[-1] * phi.shape[-2]
    return torch.fft.fftn(phi, dim=(-2, -1)).abs().square() / volume


def two_point(phi: torch.Tensor) -> torch.Tensor:
    """C(r) for r = 0 .. L/2 per configuration, averaged over sites and both axes; ``(n, L/2+1)``."""
    L = phi.shape[-1]
    out = [(phi * (torch.roll(phi, -r, -2) + torch.roll(phi, -r, -1))).mean(dim=(-2, -1)) / 2
           for r in range(L // 2 + 1)]
    return torch.stack(out, dim=-1)


def _by_chain(values: np.ndarray, chain: np.ndarray) -> np.ndarray:
    """Reshape per-configuration values ``(n_configs, ...)`` to ``(n_chains, n_meas, ...)``."""
    n_chains = len(np.unique(chain))
    if len(values) % n_chains:
        raise ValueError("every chain must hold the same number of configurations")
    order = np.argsort(chain, kind="stable")
    return values[order].reshape(n_chains, len(values) // n_chains, *values.shape[1:])


def measure_phi4(ds: xr.Dataset) -> xr.Dataset:
    """Observables of a phi^4 ensemble artifact (variable ``phi`` over ``(config, x, y)``)."""
    if "phi" not in ds or ds["phi"].dims != ("config", "x", "y"):
        raise ValueError("phi^4 ensemble needs a variable 'phi' with dims (config, x, y)")
    phi = torch.from_numpy(ds["phi"].values.astype(np.float64))
    L = phi.shape[-1]
    volume = phi.shape[-1] * phi.shape[-2]
    chain = ds["chain"].values if "chain" in ds else np.arange(phi.shape[0])
    phibar = phi.mean(dim=(-2, -1)).numpy()
    corr = two_point(phi).numpy()
    action = ds["action"].values if "action" in ds else None

    def obs(values):
        return primary(_by_chain(values, chain))

    m1, m2, m4 = obs(phibar), obs(phibar ** 2), obs(phibar ** 4)
    results = {
        "mag": m1,
        "abs_mag": obs(np.abs(phibar)),
        "chi2": volume * (m2 - m1 * m1),
        "binder": 1 - m4 / (3 * m2 * m2),
    }
    if action is not None:
        results["action_density"] = obs(action / volume)
    data_vars = {}
    long_names = {"mag": "<phibar>", "abs_mag": "<|phibar|>", "chi2": "susceptibility chi_2",
                  "binder": "Binder cumulant U_L", "action_density": "<S>/V"}
    for name, o in results.items():
        e = estimate(o)
        data_vars[name] = ((), e.value, {"long_name": long_names[name]})
        data_vars[f"{name}_err"] = ((), e.error)
        data_vars[f"tau_int_{name}"] = ((), e.tau_int, {"units": "measurements"})
    g = [estimate(obs(corr[:, r]) - m1 * m1) for r in range(L // 2 + 1)]
    data_vars["G"] = ("r", [e.value for e in g], {"long_name": "connected G(r)"})
    data_vars["G_err"] = ("r", [e.error for e in g])
    data_vars["tau_int_G"] = ("r", [e.tau_int for e in g], {"units": "measurements"})
    data_vars["phibar"] = ("config", phibar, {"long_name": "field average per configuration"})
    if action is not None:
        data_vars["action_per_site"] = ("config", action / volume, {"long_name": "S/V per configuration"})
    out = xr.Dataset(data_vars, coords={"r": np.arange(L // 2 + 1), "config": ds["config"].values})
    out.attrs.update({k: ds.attrs[k] for k in ("theory", "source", "L") if k in ds.attrs})
    for k in ("kappa", "lam"):
        if k in ds.attrs:
            out.attrs[k] = ds.attrs[k]
    out.attrs["n_configs"] = int(phi.shape[0])
    out.attrs["n_chains"] = int(len(np.unique(chain)))
    return out
