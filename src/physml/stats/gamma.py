"""Autocorrelation-aware errors with the Gamma method (Wolff, hep-lat/0306017).

We use ``pyerrors``, the lattice community's implementation: automatic windowing
with S = 2 (Wolff's default), error propagation to derived quantities by
automatic differentiation, and several Markov chains combined as replicas of one
ensemble.  Convention: ``tau_int`` = 1/2 + sum_{t>=1} rho(t), so uncorrelated
data have tau_int = 0.5 and the error is sqrt(2 tau_int var / N).
"""

from __future__ import annotations

import numpy as np
import pyerrors as pe

from physml.stats.estimate import Estimate

ENSEMBLE = "ens"
MIN_REPLICA_LENGTH = 5


def primary(samples: np.ndarray) -> pe.Obs:
    """A pyerrors observable from measurements shaped ``(n_chains, n_meas)``.

    Each chain is one replica of the same ensemble, so all observables built from
    one ensemble are correlated correctly.  Chains shorter than
    ``MIN_REPLICA_LENGTH`` measurements (pyerrors needs 5; e.g. many independent
    chains with one configuration each) are concatenated into a single replica:
    the true correlation across a chain boundary is zero, so this only dilutes
    the autocorrelation estimate by a fraction ~ n_chains / n_total.
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 2 or samples.size == 0:
        raise ValueError(f"samples must have shape (n_chains, n_meas), got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples contain non-finite values")
    if samples.shape[1] < MIN_REPLICA_LENGTH:
        samples = samples.reshape(1, -1)
    if samples.shape[1] < MIN_REPLICA_LENGTH:
        raise ValueError(f"need at least {MIN_REPLICA_LENGTH} measurements, got {samples.size}")
    names = [f"{ENSEMBLE}|c{i}" for i in range(samples.shape[0])]
    return pe.Obs([row for row in samples], names)


def estimate(obs: pe.Obs, S: float = 2.0) -> Estimate:
    """Run the Gamma method on ``obs`` and return value, error and tau_int."""
    obs.gamma_method(S=S)
    tau = float(obs.e_tauint.get(ENSEMBLE, 0.5)) if obs.e_tauint else 0.5
    dtau = float(obs.e_dtauint.get(ENSEMBLE, 0.0)) if obs.e_dtauint else 0.0
    return Estimate(float(obs.value), float(obs.dvalue), tau, dtau)


def gamma_error(samples: np.ndarray, S: float = 2.0) -> Estimate:
    """Shortcut: :func:`estimate` of :func:`primary` (a plain mean)."""
    return estimate(primary(samples), S=S)


def chain_jackknife_error(chain_means: dict[str, np.ndarray], formula) -> float:
    """Error of ``formula(means)`` from the spread over chains: the jackknife that leaves
    out one whole chain at a time.  ``chain_means`` maps each primary to its per-chain
    means ``(n_chains,)`` (chains of equal length); ``formula`` takes such a dict (of
    arrays) to the observable.  It holds whatever the autocorrelation inside a chain, as
    long as the chains are independent and thermalised, so it checks the Gamma method's
    window where chains are short against tau_int (then the window sees too little of
    the autocorrelation and the Gamma error comes out too small)."""
    n = len(next(iter(chain_means.values())))
    if n < 2:
        raise ValueError("the jackknife over chains needs at least 2 chains")
    loo = {k: (v.sum() - v) / (n - 1) for k, v in chain_means.items()}
    f = np.asarray(formula(loo), dtype=float)
    return float(np.sqrt((n - 1) / n * np.square(f - f.mean()).sum()))
