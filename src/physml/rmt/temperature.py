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
(fluctuations small against the teacher's gaps).  The same relations hold about any
stationary point with known eigenvalues s^2 (the Gaussian RBM's fixed point,
:mod:`physml.rmt.rbm`); :func:`window_temperature` applies the single-level rule about each
run's own time average where the stationary point is not known (the MLP).

Also here: the local Coulomb gas fitted to stationary spectra (:func:`coulomb_gas_fit`), and
the fits of T_eff over an (lr, B) grid: weighted least squares with errors
(:func:`weighted_fit`, :func:`line_fit`) and the test of whether lr/B alone sets T
(:func:`scaling_test`).
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


def window_temperature(eigs: np.ndarray, steps: np.ndarray, burn_in: int) -> dict[str, float]:
    """Width temperature of spectra ``eigs (run, step, k)`` whose runs each sit near a minimum
    of their own (no known stationary point, no degeneracies): per run and eigenvalue,
    ``var_t(lambda) / (4 mean_t(lambda))`` over the snapshots after ``burn_in`` (the
    non-degenerate rule of the module docstring, about the run's own time average), averaged
    over eigenvalues and runs; the error is the spread over runs (independent), and the value
    over the first and the second half of the window shows whether it is still drifting."""
    x = np.asarray(eigs, float)[:, late(steps, burn_in)]
    if x.shape[0] < 2 or x.shape[1] < 4:
        raise ValueError(f"need >= 2 runs and >= 4 late snapshots, got {x.shape[:2]}")

    def per_run(window):
        return np.mean(window.var(axis=1) / (4 * window.mean(axis=1)), axis=-1)

    t = per_run(x)
    half = x.shape[1] // 2
    return {"T": float(t.mean()), "T_err": float(t.std(ddof=1) / np.sqrt(len(t))),
            "T_first_half": float(per_run(x[:, :half]).mean()),
            "T_second_half": float(per_run(x[:, half:]).mean())}


def coulomb_gas_fit(eigs: np.ndarray, steps: np.ndarray, burn_in: int, singular_values,
                    n_blocks: int = 16) -> dict[str, float]:
    """Maximum-likelihood fit of the local Coulomb gas to the stationary eigenvalues
    ``eigs (seed, step, k)`` of W^T W near a stationary point with eigenvalues s^2::

        P(x) ~ prod_pairs |x_j - x_i|^beta  prod_i exp(-(x_i - m_g)^2 / (8 m_g T))

    (each degenerate pair a two-level gas, each other level a Gaussian, m_g the sample mean
    of the level or of the pair's centre).  Then ``var(x) = 4 m T`` for a single level, the
    pair centre has variance ``2 m T`` and the pair spacing s the density
    ``~ s^beta exp(-s^2 / (16 m T))`` (beta = 1: the Wigner surmise).  T has a closed form
    given beta; beta is found by a bounded scalar search.  Errors: delete-one-block jackknife
    over blocks of seeds.  Returns T, T_err, beta, beta_err."""
    from scipy.optimize import minimize_scalar
    from scipy.special import gammaln

    pairs = degenerate_pairs(singular_values)
    if not pairs:
        raise ValueError("the Coulomb-gas fit needs degenerate pairs; the teacher has none")
    x = np.asarray(eigs, float)[:, late(steps, burn_in)]
    paired = {i for p in pairs for i in p}
    singles = [i for i in range(x.shape[-1]) if i not in paired]
    centre = np.stack([(x[..., i] + x[..., j]) / 2 for i, j in pairs], axis=-1)
    gap = np.stack([x[..., j] - x[..., i] for i, j in pairs], axis=-1)
    if np.any(gap <= 0):
        raise ValueError("a degenerate pair has a zero or negative spacing")
    blocks = np.array_split(np.arange(x.shape[0]), min(n_blocks, x.shape[0]))
    if len(blocks) < 2:
        raise ValueError("need at least two seeds for an error")

    def sums(v):   # per block: count, sum, sum of squares over seeds and snapshots
        return np.stack([np.stack([np.full(v.shape[-1], v[b].shape[0] * v[b].shape[1]),
                                   v[b].sum((0, 1)), (v[b] ** 2).sum((0, 1))]) for b in blocks])

    S1, S2, S3 = sums(x[..., singles]), sums(centre), sums(gap)
    L3 = np.stack([np.log(gap[b]).sum((0, 1)) for b in blocks])

    def estimate(keep):
        s1, s2, s3, l3 = S1[keep].sum(0), S2[keep].sum(0), S3[keep].sum(0), L3[keep].sum(0)
        m1, m2 = s1[1] / s1[0], s2[1] / s2[0]
        Q = (np.sum((s1[2] - s1[0] * m1 ** 2) / (8 * m1)) + np.sum((s2[2] - s2[0] * m2 ** 2) / (4 * m2))
             + np.sum(s3[2] / (16 * m2)))
        n1, n2, n3 = s1[0].sum(), s2[0].sum(), s3[0].sum()

        def T_of(beta):
            return 2 * Q / (n1 + n2 + (beta + 1) * n3)

        def minus_loglik(beta):
            T = T_of(beta)
            return -(-Q / T - (n1 + n2) / 2 * np.log(T) + beta * l3.sum()
                     - np.sum(s3[0] * ((beta + 1) / 2 * np.log(16 * m2 * T) + gammaln((beta + 1) / 2))))

        beta = minimize_scalar(minus_loglik, bounds=(-0.95, 8.0), method="bounded",
                               options={"xatol": 1e-7}).x
        return np.array([T_of(beta), beta])

    full = estimate(np.arange(len(blocks)))
    leave = np.stack([estimate(np.delete(np.arange(len(blocks)), b)) for b in range(len(blocks))])
    n = len(blocks)
    err = np.sqrt((n - 1) / n * np.sum((leave - leave.mean(0)) ** 2, axis=0))
    return {"T": float(full[0]), "T_err": float(err[0]), "beta": float(full[1]), "beta_err": float(err[1])}


@dataclass(frozen=True)
class WeightedFit:
    """Weighted least squares ``y = X coef`` with independent errors on y."""

    coef: np.ndarray
    cov: np.ndarray         # from the errors given, not rescaled by chi^2 / dof
    chi2: float
    dof: int
    residual_z: np.ndarray  # (y - X coef) / err, per point

    @property
    def err(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def p_value(self) -> float:
        """Probability of a chi^2 at least this large if the model and the errors hold."""
        from scipy.stats import chi2

        return float(chi2.sf(self.chi2, self.dof)) if self.dof > 0 else float("nan")


def weighted_fit(X, y, err) -> WeightedFit:
    """Weighted least squares of ``y`` (errors ``err``) on the columns of ``X``."""
    X, y, err = np.atleast_2d(np.asarray(X, float)), np.asarray(y, float), np.asarray(err, float)
    if X.shape[0] != len(y) or len(y) != len(err):
        raise ValueError(f"shapes differ: X {X.shape}, y {y.shape}, err {err.shape}")
    if len(y) < X.shape[1] or np.any(~(err > 0)):
        raise ValueError(f"need at least {X.shape[1]} points with positive errors, got {len(y)}")
    A = X / err[:, None]
    if np.linalg.matrix_rank(A) < X.shape[1]:
        raise ValueError(f"the {len(y)} points do not determine the {X.shape[1]} parameters of the fit "
                         "(too few distinct values of the variables)")
    cov = np.linalg.inv(A.T @ A)
    coef = cov @ A.T @ (y / err)
    z = (y - X @ coef) / err
    return WeightedFit(coef, cov, float(z @ z), len(y) - X.shape[1], z)


def line_fit(x, y, err) -> dict[str, float]:
    """Weighted straight line ``y = slope x + intercept``: both with errors, chi^2 per degree
    of freedom and its p-value."""
    f = weighted_fit(np.stack([np.asarray(x, float), np.ones(len(x))], axis=1), y, err)
    return {"slope": float(f.coef[0]), "slope_err": float(f.err[0]), "intercept": float(f.coef[1]),
            "intercept_err": float(f.err[1]), "chi2": f.chi2, "dof": f.dof,
            "chi2_dof": f.chi2 / f.dof if f.dof else float("nan"), "p_value": f.p_value,
            "n_points": len(x)}


def scaling_test(lr, batch, T, err) -> dict:
    """Does lr/B alone set T?  Two weighted fits of ``ln(T / x)``, ``x = lr/B``, over every
    point (those alone at their lr/B included):

    * collapse: ``a + b ln x + c (ln x)^2`` (fewer powers when there are fewer than three
      distinct x), a smooth function of x only; its chi^2 / dof, the p-value and each point's
      residual in units of its error (the largest and where);
    * lr term: the same plus ``g lr``.  ``g`` (relative change of T per unit lr at fixed lr/B)
      with its error and significance ``z = g / err``; g = 0 when lr/B alone sets T (nan when
      no two points share an lr/B and the grid cannot tell).

    With errors err on T the errors on ln T are err / T."""
    lr, batch, T, err = (np.asarray(v, float) for v in (lr, batch, T, err))
    if np.any(T <= 0):
        raise ValueError("the scaling test needs positive temperatures")
    x = lr / batch
    lx = np.log(x)
    degree = min(2, len(np.unique(np.round(lx, 9))) - 1)
    base = np.stack([lx ** k for k in range(degree + 1)], axis=1)
    y, ey = np.log(T / x), err / T
    collapse = weighted_fit(base, y, ey)
    worst = int(np.argmax(np.abs(collapse.residual_z)))
    out = {"collapse_degree": degree, "collapse_chi2": collapse.chi2, "collapse_dof": collapse.dof,
           "collapse_chi2_dof": collapse.chi2 / collapse.dof if collapse.dof else float("nan"),
           "collapse_p": collapse.p_value, "residual_z": collapse.residual_z.tolist(),
           "max_abs_z": float(abs(collapse.residual_z[worst])), "worst_lr": float(lr[worst]),
           "worst_batch": float(batch[worst]), "lr_coef": float("nan"), "lr_coef_err": float("nan"),
           "lr_coef_z": float("nan"), "lr_term_chi2_dof": float("nan")}
    try:
        full = weighted_fit(np.column_stack([base, lr]), y, ey)
    except ValueError:
        return out
    g, g_err = float(full.coef[-1]), float(full.err[-1])
    out.update(lr_coef=g, lr_coef_err=g_err, lr_coef_z=g / g_err,
               lr_term_chi2_dof=full.chi2 / full.dof if full.dof else float("nan"))
    return out
