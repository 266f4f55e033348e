"""Reweighting of independent samples from coupling beta_0 to beta.

For a Boltzmann weight exp(-beta S_0), samples drawn at beta_0 represent beta with
weights w_i proportional to exp(-(beta - beta_0) S_0(x_i)), normalised to sum 1
(computed with the maximum subtracted, so no overflow).  Expectations are the
self-normalised estimates <O>_beta = sum_i w_i O_i, with the delta-method error of
independent samples

    var = sum_i w_i^2 (O_i - <O>_beta)^2         (weights summing to 1),

which reduces to var(O) / N for equal weights.  The Kish effective sample size
ESS = 1 / sum_i w_i^2 (between 1 and N) says how many samples the estimate rests
on; below :data:`MIN_ESS` the estimate (and its error) is flagged as unreliable.
"""

from __future__ import annotations

import numpy as np

from physml.stats.estimate import Estimate

MIN_ESS = 100.0


def reweighting_weights(action0: np.ndarray, delta_beta: float) -> np.ndarray:
    """Normalised weights w_i ~ exp(-delta_beta S_0(x_i)), ``action0`` = S_0 (the action at
    unit coupling) of each sample, ``delta_beta`` = beta - beta_0."""
    log_w = -float(delta_beta) * np.asarray(action0, dtype=float)
    if log_w.ndim != 1 or log_w.size == 0 or not np.all(np.isfinite(log_w)):
        raise ValueError("reweighting needs a non-empty, finite 1-d array of actions")
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def kish_ess(weights: np.ndarray) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.square(w).sum())


def weighted_estimate(values: np.ndarray, weights: np.ndarray) -> Estimate:
    """Self-normalised weighted mean and its delta-method error (independent samples;
    tau_int reported as 0.5)."""
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if v.shape != w.shape:
        raise ValueError(f"values {v.shape} and weights {w.shape} differ in shape")
    w = w / w.sum()
    mean = float(np.sum(w * v))
    err = float(np.sqrt(np.sum(np.square(w * (v - mean)))))
    return Estimate(mean, err, 0.5, 0.0)
