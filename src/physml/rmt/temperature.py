"""Effective temperature of SGD from the stationary fluctuations of weight-matrix eigenvalues.

For the linear teacher-student (:mod:`physml.rmt.linear_sgd`) write ``W = W_t + D`` with the
entries of D of stationary variance c and a law invariant under ``D -> O D O'`` (x and the
label noise are isotropic).  To first order in D, the eigenvalue of ``W^T W`` at a
non-degenerate teacher singular value s moves by ``2 s u^T D v`` (variance ``4 s^2 c``).  At a
doubly degenerate s the pair is ``s^2 + 2 s mu_+-``, with mu_+- the eigenvalues of the
symmetric part of the 2 x 2 block ``A = U_d^T D V_d``: ``mu = m +- r``, m of variance c/2 and
r Rayleigh-distributed with ``E r^2 = c``, so each member of the pair has variance
``4 s^2 c (3/2 - pi/4)`` and the pair spacing ``4 s r`` follows the Wigner surmise exactly
(to this order, for Gaussian D).

The effective temperature ``T_eff`` is defined as the c that these coefficients infer from the
measured eigenvalue variances (an average over eigenvalues); it equals the exact per-entry
variance ``lr sigma^2 / (B (2 - lr - lr (n+1)/B))`` as long as first-order perturbation
theory holds (fluctuations small against the teacher's gaps).  Naive scaling variable: lr/B;
corrected variable: ``c / sigma^2`` of the closed form, in which all (lr, B) must collapse.
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


def variance_coefficients(singular_values) -> np.ndarray:
    """var(lambda_i) / c to first order, ascending eigenvalue order: 4 s^2 for a non-degenerate
    singular value, 4 s^2 (3/2 - pi/4) for each member of a degenerate pair."""
    s = eigenvalue_order(singular_values)
    coef = 4 * s ** 2
    for i, j in degenerate_pairs(singular_values):
        coef[[i, j]] *= 1.5 - np.pi / 4
    return coef


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
    """T_eff = mean_i var(lambda_i) / coefficient_i (see the module docstring) and its error."""
    coef = variance_coefficients(singular_values)
    if np.shape(eigs)[-1] != len(coef):
        raise ValueError(f"{np.shape(eigs)[-1]} eigenvalues per spectrum but {len(coef)} "
                         "teacher singular values")
    value, err = _jackknife(_block_moments(eigs, steps, burn_in, n_blocks),
                            lambda m: np.mean(_variance(m) / coef))
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


def collapse_spread(key, value, rtol: float = 1e-9) -> dict[float, float]:
    """For each key shared by two or more points (e.g. lr/B), max/min - 1 of their values."""
    key, value = np.asarray(key, float), np.asarray(value, float)
    out = {}
    for k in np.unique(key):
        sel = np.isclose(key, k, rtol=rtol)
        if sel.sum() > 1:
            out[float(k)] = float(value[sel].max() / value[sel].min() - 1)
    return out
