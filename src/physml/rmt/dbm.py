"""Dyson Brownian motion (DBM) of symmetric matrices and of their eigenvalues.

Matrix process (an Ornstein-Uhlenbeck process on real symmetric n x n matrices)::

    dH = -gamma H dt + sqrt(2 gamma T) dG,   E[dG_ij^2] = (1 + delta_ij) dt / n,

whose stationary law is the GOE with off-diagonal variance T/n: a Coulomb gas at inverse
temperature beta = 1 with semicircle density of radius 2 sqrt(T) for large n.  The mean
square eigenvalue in equilibrium is exactly ``(1/n) E tr H^2 = T (1 + 1/n)``, so the
spectral width grows as sqrt(T).  :func:`simulate_matrix_dbm` integrates it with the
Euler-Maruyama step ``H <- (1 - gamma dt) H + sqrt(2 gamma T dt) G``, whose stationary
variance is larger by the exact factor ``1 / (1 - gamma dt / 2)``.

Eigenvalue SDE (second-order perturbation theory of the matrix process, Ito)::

    d lambda_i = [-gamma lambda_i + (2 gamma T / n) sum_{j != i} 1/(lambda_i - lambda_j)] dt
                 + sqrt(4 gamma T / n) dW_i,

with stationary density ``prod_{i<j} |lambda_i - lambda_j| exp(-n sum_i lambda_i^2 / (4 T))``
(the same GOE).  :func:`simulate_eigenvalue_dbm` integrates it by Euler-Maruyama, re-sorting
the levels after each step; a crossing can only come from a finite step.  Pairs closer than
one step's noise scale sqrt(4 gamma T dt / n) feel the repulsion of that distance (without
this floor a pair that nearly touched receives an O(1/dt) kick and the gas explodes); the
bias this leaves vanishes as dt -> 0, and dt << 1 / (gamma n) is needed.

Both run a batch of independent systems for several temperatures as one array computation
(numpy, float64) and return snapshots of the eigenvalues.  :func:`coulomb_gas_check` holds
their stationary levels against the exact finite-n Coulomb gas (the GOE, sampled directly):
a test that a wrong drift, a wrong noise or too coarse a step fails.  The sqrt(T) growth of
the width is no such test: both processes are scale invariant (lambda / sqrt(T) follows a
T-independent process), so it holds by construction and only checks the simulator's
bookkeeping.
"""

from __future__ import annotations

import numpy as np

from physml.rmt import spectra as sp


def _check(n: int, temperatures, dt: float, n_steps: int, batch: int, gamma: float) -> np.ndarray:
    T = np.asarray(temperatures, dtype=float).ravel()
    if n < 2 or batch < 1 or n_steps < 1:
        raise ValueError(f"need n >= 2, batch >= 1, n_steps >= 1; got {n}, {batch}, {n_steps}")
    if np.any(T <= 0) or dt <= 0 or gamma <= 0:
        raise ValueError("temperatures, dt and gamma must be positive")
    if gamma * dt >= 1:
        raise ValueError(f"gamma dt = {gamma * dt} must be < 1 for a stable Euler step")
    return T


def simulate_matrix_dbm(n: int, temperatures, *, dt: float, n_steps: int, batch: int,
                        snapshot_every: int, rng: np.random.Generator, gamma: float = 1.0) -> np.ndarray:
    """Euler-Maruyama DBM of ``batch`` symmetric n x n matrices per temperature, from H = 0.

    Returns eigenvalues ``(n_T, n_snapshots, batch, n)`` after steps
    ``snapshot_every, 2 snapshot_every, ...`` (see :func:`snapshot_steps`)."""
    T = _check(n, temperatures, dt, n_steps, batch, gamma)
    H = np.zeros((len(T), batch, n, n))
    noise = np.sqrt(2 * gamma * T * dt)[:, None, None, None]
    out = []
    for step in range(1, n_steps + 1):
        A = rng.standard_normal(H.shape) / np.sqrt(n)
        H *= 1 - gamma * dt
        H += noise * (A + np.swapaxes(A, -1, -2)) / np.sqrt(2)
        if step % snapshot_every == 0:
            out.append(np.linalg.eigvalsh(H))
    return np.stack(out, axis=1)


def simulate_eigenvalue_dbm(n: int, temperatures, *, dt: float, n_steps: int, batch: int,
                            snapshot_every: int, rng: np.random.Generator,
                            gamma: float = 1.0) -> np.ndarray:
    """Euler-Maruyama of the eigenvalue SDE for ``batch`` systems of n levels per temperature,
    started from equally spaced levels on [-sqrt(T), sqrt(T)].  Returns eigenvalues
    ``(n_T, n_snapshots, batch, n)`` like :func:`simulate_matrix_dbm`."""
    T = _check(n, temperatures, dt, n_steps, batch, gamma)
    Tb = T[:, None, None]
    lam = np.broadcast_to(np.linspace(-1, 1, n) * np.sqrt(Tb), (len(T), batch, n)).copy()
    eye = np.eye(n, dtype=bool)
    floor = np.sqrt(4 * gamma * Tb[..., None] * dt / n)  # one step's noise scale
    out = []
    for step in range(1, n_steps + 1):
        diff = lam[..., :, None] - lam[..., None, :]
        diff = np.copysign(np.maximum(np.abs(diff), floor), diff)
        diff[..., eye] = np.inf
        repulsion = np.sum(1.0 / diff, axis=-1)
        lam += (-gamma * lam + 2 * gamma * Tb / n * repulsion) * dt
        lam += np.sqrt(4 * gamma * Tb * dt / n) * rng.standard_normal(lam.shape)
        lam.sort(axis=-1)
        if step % snapshot_every == 0:
            out.append(lam.copy())
    return np.stack(out, axis=1)


def snapshot_steps(n_steps: int, snapshot_every: int) -> np.ndarray:
    """Steps at which the simulators store eigenvalues."""
    return np.arange(snapshot_every, n_steps + 1, snapshot_every)


def stationary_mean_square(n: int, T, dt: float = 0.0, gamma: float = 1.0):
    """Exact equilibrium (1/n) E tr H^2 = T (1 + 1/n), times 1 / (1 - gamma dt / 2) for the
    Euler-Maruyama matrix step of size dt (dt = 0: the continuous process)."""
    return np.asarray(T, dtype=float) * (1 + 1 / n) / (1 - gamma * dt / 2)


def rms_width(eigs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS eigenvalue per temperature of ``eigs (T, time, sample, n)`` and its error from the
    spread over independent samples (snapshots of one sample are correlated and are averaged
    first)."""
    per_sample = np.mean(np.asarray(eigs, float) ** 2, axis=(1, 3))        # (T, sample)
    ms = per_sample.mean(axis=1)
    ms_err = per_sample.std(axis=1, ddof=1) / np.sqrt(per_sample.shape[1])
    return np.sqrt(ms), ms_err / (2 * np.sqrt(ms))


def width_exponent(T: np.ndarray, width: np.ndarray, width_err: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of log width against log T, with the standard error that
    follows from the widths' errors."""
    x, y = np.log(np.asarray(T, float)), np.log(np.asarray(width, float))
    sy = np.asarray(width_err, float) / np.asarray(width, float)
    if len(x) < 2:
        raise ValueError("need at least two temperatures to fit an exponent")
    A = np.stack([x, np.ones_like(x)], axis=1) / sy[:, None]
    cov = np.linalg.inv(A.T @ A)
    slope = (cov @ A.T @ (y / sy))[0]
    return float(slope), float(np.sqrt(cov[0, 0]))


def stationary_spectra(levels: np.ndarray, T, times: np.ndarray, burn_in_time: float, *,
                       scale: float = 1.0, spacing: float = 2.0) -> np.ndarray:
    """Levels ``(T, time, sample, n)`` divided by ``sqrt(T scale)`` (``scale``: the known
    stationary inflation of a discretised process, 1 for the continuous law), from the snapshots
    after ``burn_in_time`` at least ``spacing`` apart in time (about independent: the slowest
    mode relaxes in 1/gamma = 1), as spectra ``(n_spectra, n)``."""
    keep, last = [], -np.inf
    for i, t in enumerate(times):
        if t > burn_in_time and t - last >= spacing - 1e-9:
            keep.append(i)
            last = t
    if not keep:
        raise ValueError(f"no snapshot after burn-in time {burn_in_time} (last {np.max(times)})")
    levels, T = np.asarray(levels, float), np.asarray(T, float)
    return (levels[:, keep] / np.sqrt(T * scale)[:, None, None, None]).reshape(-1, levels.shape[-1])


class GOEReference:
    """The exact finite-n Coulomb gas at beta = 1 (the GOE, off-diagonal variance 1/n, sampled
    directly: no large-n or surmise approximation) as ``n_reference`` spectra, and the null
    distribution of :meth:`statistics` for sets of ``n_spectra`` GOE spectra (``n_null`` sets
    drawn without replacement within a set from a separate pool of ``n_pool`` spectra)."""

    def __init__(self, n: int, n_spectra: int, rng: np.random.Generator, *, n_reference: int = 10000,
                 n_pool: int = 5000, n_null: int = 100):
        def goe(size):
            return np.linalg.eigvalsh(sp.goe_matrices(n, size, rng))

        self.n, self.n_spectra = n, n_spectra
        ref = goe(n_reference)
        self.levels, self.ratios = np.sort(ref.ravel()), np.sort(sp.spacing_ratios(ref))
        pool = goe(max(n_pool, n_spectra))
        self.null = np.array([self.statistics(pool[rng.choice(len(pool), n_spectra, replace=False)])
                              for _ in range(n_null)])

    def statistics(self, spectra: np.ndarray) -> np.ndarray:
        """(KS distance of the pooled levels from the GOE level density, KS distance of the
        spacing ratios from the GOE ratio law, <r>) of spectra ``(n_spectra, n)``."""
        def ecdf(sorted_sample):
            return lambda v: np.searchsorted(sorted_sample, v, side="right") / len(sorted_sample)

        r = sp.spacing_ratios(spectra)
        return np.array([sp.ks_distance(spectra, ecdf(self.levels)), sp.ks_distance(r, ecdf(self.ratios)),
                         r.mean()])


def coulomb_gas_check(spectra: np.ndarray, reference: GOEReference) -> dict[str, float]:
    """Stationary spectra (:func:`stationary_spectra`) against the finite-n GOE: the level
    density and the spacing-ratio law by KS distance, with p-values from the reference's null
    (fraction of null distances >= observed), and <r> with the null's spread as its error."""
    if spectra.shape != (reference.n_spectra, reference.n):
        raise ValueError(f"spectra of shape {spectra.shape}, but the reference's null is of "
                         f"{reference.n_spectra} spectra of {reference.n} levels")
    D, D_r, r_mean = reference.statistics(spectra)
    null = reference.null

    def p(observed, sample):
        return float((np.sum(sample >= observed) + 1) / (len(sample) + 1))

    return {"n_spectra": len(spectra), "density_distance": float(D), "density_p": p(D, null[:, 0]),
            "ratio_distance": float(D_r), "ratio_p": p(D_r, null[:, 1]), "ratio_mean": float(r_mean),
            "ratio_mean_goe": float(reference.ratios.mean()), "ratio_mean_err": float(null[:, 2].std(ddof=1)),
            "mean_square": float(np.mean(spectra ** 2)), "mean_square_exact": 1 + 1 / spectra.shape[-1]}
