"""Exact corrections from a proposal density: independence Metropolis and importance weights.

Proposals x_i ~ q with known log q (:mod:`physml.diffusion.density`) and the target
p(x) = exp(-S(x)) / Z, both in physical units with the measure prod_x dphi_x, have the
log-weights

    log w_i = -S(x_i) - log q(x_i),       E_q[w] = Z.

- **Independence Metropolis-Hastings** (Albergo et al. 2019): a chain over the proposals
  in their order accepts x_i with probability min(1, w_i / w_current), else repeats the
  current state.  Exact for any q with the target's support; its acceptance rate and
  tau_int grade q, and errors need the chain's autocorrelation.
- **Self-normalised importance weights** (Nicoli et al. 2020): <O> = sum_i w_i O_i / sum_i w_i,
  consistent with an O(1/N) bias; Kish ESS / N = (sum w)^2 / (N sum w^2) in (0, 1]
  (1: q exact).
- **Free energy**: log Z = log mean(w) with the delta-method error std(w) / (sqrt(N) mean(w)).

Non-finite log q or S (a singular Jacobian, an overflow) give a NaN log-weight: such
proposals are left out of every estimate and counted (``n_nonfinite``), never used.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def log_weights(action, log_q) -> np.ndarray:
    """-S - log q per proposal, float64; NaN where either is not finite."""
    s, q = (np.asarray(v, dtype=np.float64) for v in (action, log_q))
    if s.shape != q.shape or s.ndim != 1:
        raise ValueError(f"action {s.shape} and log q {q.shape} must be 1-d and of equal length")
    out = -s - q
    out[~np.isfinite(out)] = np.nan
    return out


def _finite(log_w: np.ndarray) -> np.ndarray:
    lw = np.asarray(log_w, dtype=np.float64)
    finite = lw[np.isfinite(lw)]
    if finite.size == 0:
        raise ValueError(f"no finite log-weight among {lw.size} proposals")
    return finite


def normalised_weights(log_w: np.ndarray) -> np.ndarray:
    """w_i / sum w (0 for non-finite log-weights; all 0 when none is finite), computed with
    the maximum subtracted."""
    lw = np.asarray(log_w, dtype=np.float64)
    if not np.isfinite(lw).any():
        return np.zeros_like(lw)
    top = _finite(lw).max()
    w = np.where(np.isfinite(lw), np.exp(np.where(np.isfinite(lw), lw, top) - top), 0.0)
    return w / w.sum()


def ess_fraction(log_w: np.ndarray) -> float:
    """Kish ESS / N over the finite log-weights."""
    w = normalised_weights(_finite(log_w))
    return float(1.0 / (len(w) * np.square(w).sum()))


def log_partition(log_w: np.ndarray) -> tuple[float, float]:
    """(log Z, its error) = (log mean(w), std(w) / (sqrt(N) mean(w))) over the finite
    log-weights (module docstring)."""
    lw = _finite(log_w)
    top = lw.max()
    w = np.exp(lw - top)
    mean = w.mean()
    err = w.std(ddof=1) / (math.sqrt(len(w)) * mean) if len(w) > 1 else math.inf
    return float(top + math.log(mean)), float(err)


def independence_chain(log_w: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The independence Metropolis chain over the proposals with finite log-weights, in
    their order: (index of the state after each proposal, whether it was accepted).  The
    chain starts at the first finite proposal (accepted); one uniform per later proposal
    from ``generator``.  Without a finite log-weight there is no chain: one state, proposal
    0, not accepted."""
    lw = np.asarray(log_w, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(lw))
    if idx.size == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=bool)
    u = torch.rand(idx.size, generator=generator, dtype=torch.float64).numpy()
    states, accepted = np.empty(idx.size, dtype=np.int64), np.zeros(idx.size, dtype=bool)
    current = idx[0]
    accepted[0] = True
    for k, i in enumerate(idx):
        if k and math.log(u[k]) < lw[i] - lw[current]:
            current, accepted[k] = i, True
        states[k] = current
    return states, accepted


def density_summary(log_w: np.ndarray) -> dict[str, float]:
    """Attributes of a run with log-weights: ESS/N, log Z and its error, proposals left out."""
    n_bad = int(np.sum(~np.isfinite(log_w)))
    if n_bad == len(log_w):
        return {"ess_fraction": math.nan, "log_Z": math.nan, "log_Z_err": math.nan, "n_nonfinite": n_bad}
    log_z, err = log_partition(log_w)
    return {"ess_fraction": ess_fraction(log_w), "log_Z": log_z, "log_Z_err": err, "n_nonfinite": n_bad}


def imh_ensemble(theory, x: torch.Tensor, log_w: np.ndarray, generator: torch.Generator, **attrs):
    """The independence Metropolis chain over proposals ``x`` as an ensemble of one chain
    (source ``dm_imh``): its states in order, repeats included, with ``imh_accepted`` per
    state and the attributes ``imh_acceptance`` and ``n_nonfinite``."""
    from physml.mc.ensembles import independent_ensemble

    states, accepted = independence_chain(log_w, generator)
    ds = independent_ensemble(theory, x[torch.from_numpy(states)], "dm_imh", **attrs,
                              imh_acceptance=float(accepted[1:].mean()) if len(accepted) > 1 else math.nan,
                              imh_n_accepted=int(accepted.sum()),
                              n_nonfinite=int(np.sum(~np.isfinite(log_w))))
    ds["chain"] = ("config", np.zeros(len(states), dtype=np.int64),
                   {"long_name": "one independence Metropolis chain"})
    ds["imh_accepted"] = ("config", accepted.astype(np.int8),
                          {"long_name": "1 where the state is a newly accepted proposal"})
    return ds


def weighted_ensemble(theory, x: torch.Tensor, log_w: np.ndarray, **attrs):
    """The proposals ``x`` with normalised importance weights (source ``dm_rw``): variables
    ``weight`` (0 where the log-weight is not finite) and ``log_weight``, attributes of
    :func:`density_summary`."""
    from physml.mc.ensembles import independent_ensemble

    ds = independent_ensemble(theory, x, "dm_rw", **attrs, **density_summary(log_w))
    ds["weight"] = ("config", normalised_weights(log_w),
                    {"long_name": "normalised importance weight w / sum w, w = exp(-S - log q)"})
    ds["log_weight"] = ("config", np.asarray(log_w, dtype=np.float64),
                        {"long_name": "log w = -S - log q (NaN: left out)"})
    return ds
