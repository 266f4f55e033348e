"""Effective temperature of SGD from the stationary fluctuations of weight-matrix eigenvalues.

For the linear teacher-student (:mod:`physml.rmt.linear_sgd`) write ``W = W_t + D``.  The
entries of D have stationary variance c and are uncorrelated (row covariance ``c I``), so every
rotated entry ``u^T D v`` (u, v orthonormal pairs) has variance c and distinct rotated entries
are uncorrelated.  D is **not** Gaussian at finite lr (at lr = 0.4, B = 4 its entries have
kurtosis about 3.4), so the estimators below use second moments only, to first order in D:

* at a non-degenerate teacher singular value s the eigenvalue of ``W^T W`` moves by
  ``2 s u^T D v``: ``var(lambda) = 4 s^2 c``;
* at a doubly degenerate s the pair is ``s^2 + 2 s mu_+-``, with ``mu = m +- r`` the eigenvalues
  of the symmetric part of the 2 x 2 block ``A = U_d^T D V_d``: ``m = (A_11 + A_22)/2`` and
  ``r^2 = ((A_11 - A_22)/2)^2 + ((A_12 + A_21)/2)^2``, so ``var(lambda_1 + lambda_2) = 8 s^2 c``
  and ``E[(lambda_2 - lambda_1)^2] = 16 s^2 E[r^2] = 16 s^2 c``.

(The variance of *each* member of a pair needs ``(E r)^2``, which is ``c pi/4`` only for
Gaussian D; it is not used.  For Gaussian D, r is Rayleigh and the pair spacing ``4 s r``
follows the Wigner surmise exactly at this order.)

The effective temperature ``T_eff`` is the mean of the c that these relations infer (one
estimate per non-degenerate eigenvalue, two per pair); it equals the exact per-entry variance
``lr sigma^2 / (B (2 - lr - lr (n+1)/B))`` as long as first-order perturbation theory holds
(fluctuations small against the teacher's gaps).  Naive scaling variable: lr/B; corrected
variable: ``c / sigma^2`` of the closed form, in which all (lr, B) must collapse.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def eigenvalue_order(singular_values) -> np.ndarray:
    """Teacher singular values in the ascending order of the eigenvalues of W^T W."""
    return np.sort(np.asarray(singular_values, dtype=float))


def degenerate_pairs(singular_values) -> list[tuple[int, int]]:
    """Index pairs (i, i+1) of ascending eigenvalues whose teacher singular values are equal
    (exactly doubly degenerate; a higher degeneracy is an error)."""
    s = eigenvalue_order(singular_values)
    pairs, i = [], 0
    while i < len(s) - 1:
        if s[i] == s[i + 1]:
            if i + 2 < len(s) and s[i + 2] == s[i]:
                raise ValueError(f"singular value {s[i]} is more than doubly degenerate")
            pairs.append((i, i + 1))
            i += 2
        else:
            i += 1
    return pairs


def temperature_observables(eigs: np.ndarray, singular_values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The quantities T_eff is inferred from, as columns of ``eigs (..., k)``: lambda_i for a
    non-degenerate eigenvalue; for a pair (i, j) the sum lambda_i + lambda_j in column i and the
    spacing lambda_j - lambda_i in column j.  Returns (y (..., k), coef (k,), raw (k,)):
    ``second moment / c = coef``, the second moment being the variance, or ``E[y^2]`` where
    ``raw`` (the spacings)."""
    s = eigenvalue_order(singular_values)
    eigs = np.asarray(eigs, float)
    if eigs.shape[-1] != len(s):
        raise ValueError(f"{eigs.shape[-1]} eigenvalues per spectrum but {len(s)} "
                         "teacher singular values")
    y, coef, raw = eigs.copy(), 4 * s ** 2, np.zeros(len(s), bool)
    for i, j in degenerate_pairs(singular_values):
        y[..., i], y[..., j] = eigs[..., i] + eigs[..., j], eigs[..., j] - eigs[..., i]
        coef[i], coef[j] = 8 * s[i] ** 2, 16 * s[i] ** 2
        raw[j] = True
    return y, coef, raw


def late(steps: np.ndarray, burn_in: int) -> np.ndarray:
    """Boolean mask of snapshot steps after the burn-in."""
    mask = np.asarray(steps) > burn_in
    if not mask.any():
        raise ValueError(f"no snapshot after burn-in step {burn_in} (last step {np.max(steps)})")
    return mask


def _jackknife(values_per_block: np.ndarray, estimator) -> tuple[np.ndarray, np.ndarray]:
    """Estimate and delete-one-block jackknife error of ``estimator`` over axis 0 blocks."""
    full = estimator(values_per_block)
    n = values_per_block.shape[0]
    leave = np.stack([estimator(np.delete(values_per_block, b, axis=0)) for b in range(n)])
    return full, np.sqrt((n - 1) / n * np.sum((leave - leave.mean(0)) ** 2, axis=0))


def _block_moments(eigs: np.ndarray, steps: np.ndarray, burn_in: int, n_blocks: int) -> np.ndarray:
    """Per block of seeds: (sum x, sum x^2, count) of each eigenvalue over the block's seeds and
    late snapshots, ``(n_blocks, 3, k)``; the variance of any union of blocks follows exactly."""
    x = np.asarray(eigs, float)[:, late(steps, burn_in)]
    n_blocks = min(n_blocks, x.shape[0])
    if n_blocks < 2:
        raise ValueError("need at least two seeds for an error")
    return np.stack([np.stack([b.sum((0, 1)), (b ** 2).sum((0, 1)),
                               np.full(x.shape[-1], b.shape[0] * b.shape[1])])
                     for b in np.array_split(x, n_blocks, axis=0)])


def _variance(moments: np.ndarray) -> np.ndarray:
    s1, s2, count = moments.sum(0)
    return s2 / count - (s1 / count) ** 2


def eigenvalue_variances(eigs: np.ndarray, steps: np.ndarray, burn_in: int,
                         n_blocks: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Variance of each eigenvalue over seeds and late snapshots, ``eigs (seed, step, k)``, with a
    jackknife error over ``n_blocks`` blocks of seeds (seeds are independent; snapshots of one
    seed are not).  Returns (var (k,), err (k,))."""
    return _jackknife(_block_moments(eigs, steps, burn_in, n_blocks), _variance)


def effective_temperature(eigs: np.ndarray, steps: np.ndarray, burn_in: int, singular_values,
                          n_blocks: int = 16) -> tuple[float, float]:
    """T_eff = mean over :func:`temperature_observables` of second moment / coefficient (see the
    module docstring), with a jackknife error over blocks of seeds."""
    y, coef, raw = temperature_observables(eigs, singular_values)

    def estimate(m):
        s1, s2, count = m.sum(0)
        return np.mean(np.where(raw, s2 / count, _variance(m)) / coef)

    value, err = _jackknife(_block_moments(y, steps, burn_in, n_blocks), estimate)
    return float(value), float(err)


def pair_spacings(eigs: np.ndarray, singular_values) -> np.ndarray:
    """Spacings of the degenerate pairs in spectra ``eigs (..., k)``, each pair's spacings
    normalised to mean 1 over the sample, pooled over pairs."""
    pairs = degenerate_pairs(singular_values)
    if not pairs:
        raise ValueError("the teacher has no degenerate singular values")
    eigs = np.asarray(eigs, float)
    out = [(eigs[..., j] - eigs[..., i]).ravel() for i, j in pairs]
    return np.concatenate([s / s.mean() for s in out])


@dataclass(frozen=True)
class LineFit:
    """Ordinary least-squares line y = slope x + intercept and its coefficient of determination."""

    slope: float
    intercept: float
    r2: float


def fit_line(x, y) -> LineFit:
    """Least-squares straight line through (x, y) with R^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        raise ValueError("need at least three points for a line with a meaningful R^2")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    r2 = 1 - np.sum(resid ** 2) / np.sum((y - y.mean()) ** 2)
    return LineFit(float(slope), float(intercept), float(r2))


def collapse_spread(key, value, digits: int = 9) -> dict[float, float]:
    """For each key shared by two or more points (e.g. lr/B, equal when rounded to ``digits``
    significant digits, so 0.3/3 and 0.1 are one key), max/min - 1 of their values."""
    key = np.array([float(f"{k:.{digits}g}") for k in np.asarray(key, float)])
    value = np.asarray(value, float)
    out = {}
    for k in np.unique(key):
        sel = key == k
        if sel.sum() > 1:
            out[float(k)] = float(value[sel].max() / value[sel].min() - 1)
    return out
