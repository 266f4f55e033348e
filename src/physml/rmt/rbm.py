"""Gaussian restricted Boltzmann machine learning a free scalar field (arXiv:2407.16427).

Model (docs/rmt.md, "Gaussian RBM").  N_v visible fields phi and N_h hidden fields h, both
real, with the action (no biases: the target has zero mean)::

    S(phi, h) = mu^2/2 phi.phi + h.h / (2 sigma_h^2) - phi.W h,    p(phi, h) ~ exp(-S).

Integrating h out leaves a Gaussian ``p(phi) ~ exp(-phi.K phi / 2)`` with the kernel
``K = mu^2 - sigma_h^2 W W^T`` (normalisable while K is positive definite).  The target is the
free field on a periodic chain of L = N_v sites, ``K_t = (m^2 + 2) 1 - S - S^T`` (S the shift),
diagonal in the lattice momenta with eigenvalues ``kappa_k = m^2 + 4 sin^2(pi k / L)``: modes
k and L - k are degenerate, so the target spectrum comes in pairs.

Learning: gradient ascent of the log likelihood, with the data term from a mini-batch::

    W <- W + lr sigma_h^2 (C_B - K^{-1}) W,      C_B = (1/B) sum_b phi_b phi_b^T,

``<phi h^T>_data - <phi h^T>_model`` with both expectations exact given the batch (h | phi is
Gaussian with mean sigma_h^2 W^T phi, and the model covariance of phi is K^{-1}): the only
noise is the mini-batch, B configurations drawn afresh from the target at every step (an
infinite training set).  C_B is drawn directly as a Wishart matrix (Bartlett decomposition)
when B >= L, which has exactly the law of the sample covariance of B draws.  mu^2 and
sigma_h are fixed, not learned.

With ``A = sigma_h^2 W W^T`` one step is ``A' = (1 + eps G) A (1 + eps G)`` with
``G = C_B - (mu^2 - A)^{-1}`` and ``eps = lr sigma_h^2``: the eigenvalues of ``X = W^T W``
(those of A / sigma_h^2) follow a closed stochastic map, and the hidden-side rotation W -> W O
is a flat direction that does not touch them.  Its fixed point is ``A* = mu^2 - K_t``: the
eigenvalues of X go to ``x*_k = (mu^2 - kappa_k) / sigma_h^2`` (pairs included), which needs
``mu^2 > m^2 + 4``.

Linearised fluctuations (:func:`linearised_covariance`).  With ``A = A* + D`` and
``C_B = K_t^{-1} + Delta`` (``E[Delta_ij Delta_kl] = (C_ik C_jl + C_il C_jk) / B``), to first
order in D and in Delta, in the momentum basis::

    D' = (1 - r) o D + eps (A* Delta + Delta A*) + eps (Delta D + D Delta)
         - eps^2 (Delta A* C D C + C D C A* Delta),     r_kl = eps (a_k + a_l) / (kappa_k kappa_l),

with ``C = K_t^{-1}`` and ``a = mu^2 - kappa``: the exact discrete-time relaxation and the
multiplicative mini-batch noise (the analogue of the Wishart term of the linear
teacher-student) are kept; dropped are terms of second order in D (the curvature of
K^{-1} and the coupling of neighbouring eigenvalues) and the ``eps^2 Delta A* Delta`` noise.
The stationary covariance of D solves a linear equation, solved by iteration.  For small lr
every eigenvalue of X has ``var(x_k) = 2 lr x*_k / B``, i.e. the width temperature of
:mod:`physml.rmt.temperature`, ``var / (4 x*)``, is ``lr / (2 B)`` for every mode and every
sigma_h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physml.rmt import temperature as tm


@dataclass(frozen=True)
class GaussianRBM:
    """Sizes and fixed parameters: ``L`` sites (= visible = hidden units), target mass
    ``m2``, model mass ``mu2``, hidden width ``sigma_h``."""

    L: int = 10
    m2: float = 4.0
    mu2: float = 12.0
    sigma_h: float = 1.0

    def __post_init__(self):
        if self.L < 3 or self.m2 <= 0 or self.sigma_h <= 0:
            raise ValueError(f"need L >= 3, m2 > 0, sigma_h > 0; got {self.L}, {self.m2}, {self.sigma_h}")
        if self.mu2 <= self.m2 + 4:
            raise ValueError(f"mu2 = {self.mu2} must exceed m2 + 4 = {self.m2 + 4} (the largest target "
                             "eigenvalue), or W W^T cannot reach mu2 - K_t")

    @property
    def momenta(self) -> np.ndarray:
        """Momentum index k of each column of :meth:`basis`: 0, then 1, 1, 2, 2, ... (cos and
        sin), and L/2 once for even L."""
        pairs = [k for k in range(1, (self.L - 1) // 2 + 1) for _ in "cs"]
        return np.array([0, *pairs] + ([self.L // 2] if self.L % 2 == 0 else []))

    @property
    def kappa(self) -> np.ndarray:
        """Target kernel eigenvalue of each basis column, m^2 + 4 sin^2(pi k / L) (equal floats
        for degenerate partners)."""
        return self.m2 + 4 * np.sin(np.pi * self.momenta / self.L) ** 2

    def basis(self) -> np.ndarray:
        """Orthonormal real momentum basis (columns, in the order of :attr:`momenta`): cos and
        sin of 2 pi k x / L for each pair, a cosine alone for k = 0 and k = L/2."""
        x, k = np.arange(self.L), self.momenta
        sine = np.zeros(self.L, bool)
        sine[2:1 + 2 * ((self.L - 1) // 2):2] = True
        cols = np.where(sine[None, :], np.sin(2 * np.pi * np.outer(x, k) / self.L),
                        np.cos(2 * np.pi * np.outer(x, k) / self.L))
        return cols / np.linalg.norm(cols, axis=0)

    def target_kernel(self) -> np.ndarray:
        """``K_t = (m^2 + 2) 1 - S - S^T`` of the periodic chain."""
        shift = np.roll(np.eye(self.L), 1, axis=0)
        return (self.m2 + 2) * np.eye(self.L) - shift - shift.T

    def stationary_eigenvalues(self) -> np.ndarray:
        """Fixed point of the eigenvalues of X = W^T W, ``(mu^2 - kappa) / sigma_h^2``, ascending."""
        return np.sort((self.mu2 - self.kappa) / self.sigma_h ** 2)


def log_likelihood(W: np.ndarray, phi: np.ndarray, rbm: GaussianRBM) -> float:
    """Mean log p(phi) of configurations ``phi (n, L)`` under the RBM with weights W."""
    K = rbm.mu2 * np.eye(rbm.L) - rbm.sigma_h ** 2 * W @ W.T
    sign, logdet = np.linalg.slogdet(K)
    if sign <= 0:
        raise ValueError("K = mu^2 - sigma_h^2 W W^T is not positive definite")
    quad = np.einsum("ni,ij,nj->n", phi, K, phi)
    return float(0.5 * logdet - 0.5 * rbm.L * np.log(2 * np.pi) - 0.5 * quad.mean())


class _Indices(dict):
    """Index arrays by matrix size, made once (they cost more than a step's arithmetic)."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, n):
        self[n] = self.make(n)
        return self[n]


_DIAG = _Indices(np.diag_indices)
_LOWER = _Indices(lambda n: np.tril_indices(n, -1))


def sample_covariance(chol: np.ndarray, B: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` sample covariances (1/B) sum_b phi_b phi_b^T of B draws phi ~ N(0, chol chol^T):
    through the Bartlett decomposition of the Wishart law when B >= L, else from the draws."""
    n = chol.shape[0]
    if B < n:
        phi = rng.standard_normal((size, B, n)) @ chol.T
        return np.swapaxes(phi, 1, 2) @ phi / B
    T = np.zeros((size, n, n))
    T[:, _DIAG[n][0], _DIAG[n][1]] = np.sqrt(rng.chisquare(B - np.arange(n), size=(size, n)))
    T[:, _LOWER[n][0], _LOWER[n][1]] = rng.standard_normal((size, len(_LOWER[n][0])))
    F = chol @ T
    return F @ np.swapaxes(F, 1, 2) / B


@dataclass
class RBMRun:
    """Output of :func:`train_rbm` (numpy arrays)."""

    steps: np.ndarray        # (n_snap,) snapshot steps, 0 = initialisation
    W: np.ndarray            # (n_runs, n_snap, L, L) weights (rows: visible, columns: hidden)
    diverged: np.ndarray     # (n_runs,) bool: K lost positivity and the run was stopped


def train_rbm(rbm: GaussianRBM, *, lr: float, batch: int, n_runs: int, n_steps: int,
              snapshot_every: int, seed: int, progress=None) -> RBMRun:
    """Mini-batch gradient ascent of ``n_runs`` RBMs at once.  Start: ``W = s0 O`` with O a
    Haar-random orthogonal matrix per run and ``s0^2`` the mean of the stationary eigenvalues
    (every eigenvalue of X starts there).  A run whose K stops being positive definite is
    frozen and marked diverged.  ``progress(step)`` is called every 100 steps."""
    if lr <= 0 or batch < 1 or n_runs < 1 or n_steps < 1 or snapshot_every < 1:
        raise ValueError("need lr > 0 and batch, n_runs, n_steps, snapshot_every >= 1")
    rng = np.random.default_rng(seed)
    n, eps = rbm.L, lr * rbm.sigma_h ** 2
    chol = np.linalg.cholesky(np.linalg.inv(rbm.target_kernel()))
    q, r = np.linalg.qr(rng.standard_normal((n_runs, n, n)))
    W = np.sqrt(rbm.stationary_eigenvalues().mean()) * q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    eye = np.eye(n)
    alive = np.ones(n_runs, bool)
    snaps, steps = [W.copy()], [0]
    for step in range(1, n_steps + 1):
        K = rbm.mu2 * eye - rbm.sigma_h ** 2 * W @ np.swapaxes(W, 1, 2)
        ok = np.linalg.eigvalsh(K)[:, 0] > 0 if step % 50 == 0 else np.ones(n_runs, bool)
        alive &= ok & np.isfinite(W).all(axis=(1, 2))
        G = sample_covariance(chol, batch, n_runs, rng) - np.linalg.inv(K)
        W = np.where(alive[:, None, None], W + eps * G @ W, W)
        if step % snapshot_every == 0:
            snaps.append(W.copy())
            steps.append(step)
        if progress is not None and step % 100 == 0:
            progress(step)
    return RBMRun(np.array(steps), np.stack(snaps, axis=1), ~alive)


def linearised_covariance(rbm: GaussianRBM, lr: float, batch: int, *, tol: float = 1e-12,
                          max_iter: int = 500) -> np.ndarray:
    """Stationary covariance ``V[(i, j), (k, l)] = E[D_ij D_kl]`` (L^2 x L^2, row-major pairs)
    of ``D = A - A*`` in the momentum basis of :meth:`GaussianRBM.basis` under the linearised
    map of the module docstring, by fixed-point iteration of
    ``V = L V L + N + sum_b T_b V T_b^T`` (the relaxation L is diagonal; b runs over a basis of
    the mini-batch noise Delta with unit-variance coefficients)."""
    n, eps = rbm.L, lr * rbm.sigma_h ** 2
    kappa = rbm.kappa
    a = rbm.mu2 - kappa
    A, C = np.diag(a), np.diag(1 / kappa)
    ell = (1 - eps * (a[:, None] + a[None, :]) / (kappa[:, None] * kappa[None, :])).ravel()
    if np.any(np.abs(ell) >= 1):
        raise ValueError(f"lr = {lr} is beyond the linear stability of the learning map")
    root, eye = np.sqrt(1 / kappa), np.eye(n)
    N, T = np.zeros((n * n, n * n)), []
    for i in range(n):
        for j in range(i, n):
            E = np.zeros((n, n))
            E[i, j] = E[j, i] = 1.0 if i != j else np.sqrt(2.0)
            Db = root[:, None] * E * root[None, :] / np.sqrt(batch)
            noise = (eps * (A @ Db + Db @ A)).ravel()
            N += np.outer(noise, noise)
            T.append(eps * (np.kron(Db, eye) + np.kron(eye, Db))
                     - eps ** 2 * (np.kron(Db @ A @ C, C) + np.kron(C, (C @ A @ Db).T)))
    T = np.array(T)
    den = 1 - np.outer(ell, ell)
    V = N / den
    for _ in range(max_iter):
        new = (N + np.matmul(np.matmul(T, V), np.swapaxes(T, 1, 2)).sum(axis=0)) / den
        if np.max(np.abs(new - V)) <= tol * np.max(np.abs(new)):
            return new
        V = new
    raise RuntimeError(f"linearised covariance did not converge in {max_iter} iterations (lr = {lr})")


def linearised_temperature(rbm: GaussianRBM, lr: float, batch: int) -> float:
    """The width temperature (:func:`physml.rmt.temperature.effective_temperature`, with the
    fixed point's eigenvalues as the 'teacher') that the linearised covariance predicts."""
    V = linearised_covariance(rbm, lr, batch) / rbm.sigma_h ** 4      # of the elements of X
    n = rbm.L
    x_star = (rbm.mu2 - rbm.kappa) / rbm.sigma_h ** 2
    order = np.argsort(x_star, kind="stable")                          # basis column of each level
    s = np.sqrt(x_star[order])

    def cov(p, q):   # E[D_pp D_qq] of diagonal elements p, q (basis columns)
        return V[p * n + p, q * n + q]

    moments = np.empty(n)
    _, coef, _ = tm.temperature_observables(np.zeros((1, n)), s)
    for k in range(n):
        moments[k] = cov(order[k], order[k])
    for i, j in tm.degenerate_pairs(s):
        p, q = order[i], order[j]
        moments[i] = cov(p, p) + cov(q, q) + 2 * cov(p, q)
        moments[j] = cov(p, p) + cov(q, q) - 2 * cov(p, q) + 4 * V[p * n + q, p * n + q]
    return float(np.mean(moments / coef))
