"""Linear teacher-student trained by plain SGD, many seeds as one batched tensor computation.

Model (docs/rmt.md, the solvable case): inputs x ~ N(0, I_n), labels
``y = W_t x + eta`` with label noise ``eta ~ N(0, sigma^2 I_n)``, a student ``W`` (n x n),
the loss ``L = 1/(2B) sum_b |W x_b - y_b|^2`` on a fresh mini-batch of B points per step, and
``W <- W - lr grad L``.  The teacher ``W_t = U diag(s) V^T`` has chosen singular values ``s``
(degenerate pairs give Wigner-surmise pairs in the spectrum of W^T W) and Haar-random U, V.

Stationary fluctuations (derived; :func:`stationary_variance`)
-----------------------------------------------------------------
Write ``D = W - W_t``, ``X`` the n x B batch of inputs, ``E`` the n x B label noise and
``S = X X^T / B``.  The gradient is ``(D X - E) X^T / B``, so one step is::

    D' = D (I - lr S) + lr E X^T / B.

Each row d of D evolves on its own: ``d' = d (I - lr S) + lr e X^T / B``.  With the row
covariance ``C = E[d^T d]``, and X, E fresh and independent of d (and E of X),

    C' = E[(I - lr S) C (I - lr S)] + lr^2 sigma^2 E[X X^T] / B^2.

``E[X X^T] = B I``.  The forcing is isotropic and x is rotation invariant, so the fixed point is
``C = c I``; then ``E[(I - lr S)^2] = I - 2 lr E[S] + lr^2 E[S^2]`` with ``E[S] = I`` and the
Wishart moment ``E[(X X^T)^2] = B (B + n + 1) I``, i.e. ``E[S^2] = (1 + (n + 1)/B) I``.  Hence

    c = c (1 - 2 lr + lr^2 (1 + (n + 1)/B)) + lr^2 sigma^2 / B
    c = lr sigma^2 / (B (2 - lr - lr (n + 1)/B)),

the per-entry stationary variance of D (entries of different rows are uncorrelated: their
equation has no forcing).  It exists when ``2 - lr - lr (n + 1)/B > 0`` (mean-square
stability).  For small lr, ``c -> (lr / B) sigma^2 / 2``: the linear scaling rule, T ~ lr / B.
The factor ``2 / (2 - lr - lr (n + 1)/B)`` (:func:`finite_lr_factor`) breaks the collapse at
fixed lr / B.  Without label noise (sigma = 0) the gradient noise vanishes at W = W_t and so
does the stationary width.  This is an exact result for the discrete-time dynamics, with no
small-lr or Gaussian approximation.

Seeds: all ``n_seeds`` runs share one torch generator and draw their batches as one tensor
per step, so a run's numbers depend on the number of runs it was batched with (but are
deterministic for a fixed seed and batch size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def finite_lr_factor(lr, batch, n: int):
    """``2 / (2 - lr - lr (n + 1)/B)``: the stationary variance over its small-lr limit."""
    lr, batch = np.asarray(lr, float), np.asarray(batch, float)
    denom = 2 - lr - lr * (n + 1) / batch
    if np.any(denom <= 0):
        raise ValueError(f"lr too large for mean-square stability: 2 - lr - lr (n+1)/B = {denom}")
    return 2 / denom


def stationary_variance(lr, batch, n: int, sigma: float):
    """Exact per-entry stationary variance of W - W_t: lr sigma^2 / (B (2 - lr - lr (n+1)/B))."""
    return np.asarray(lr, float) / np.asarray(batch, float) * sigma ** 2 / 2 * finite_lr_factor(lr, batch, n)


def make_teacher(singular_values, seed: int) -> np.ndarray:
    """``W_t = U diag(s) V^T`` with U, V Haar-random orthogonal matrices (QR of Gaussian
    matrices with the sign convention that makes them Haar), drawn from ``seed``."""
    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or len(s) < 2 or np.any(s < 0):
        raise ValueError(f"singular values must be a list of >= 2 non-negative numbers, got {s}")
    rng = np.random.default_rng(seed)

    def haar(n):
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        return q * np.sign(np.diag(r))

    n = len(s)
    return haar(n) @ np.diag(s) @ haar(n).T


@dataclass
class LinearRun:
    """Output of :func:`train_linear_sgd` (numpy arrays)."""

    steps: np.ndarray        # (n_snap,) snapshot steps (0 = initialisation)
    W: np.ndarray            # (n_seeds, n_snap, n, n) student snapshots
    delta_sq: np.ndarray     # (n_seeds,) mean over steps > burn_in and entries of (W - W_t)^2
    loss: np.ndarray         # (n_snap,) mean mini-batch loss over seeds at each snapshot step


def train_linear_sgd(W_teacher: np.ndarray, *, lr: float, batch: int, sigma: float, n_steps: int,
                     n_seeds: int, snapshot_every: int, burn_in: int, seed: int,
                     init_scale: float = 1.0, device="cpu", dtype=None, progress=None) -> LinearRun:
    """Plain SGD of ``n_seeds`` students at once (tensor ``(n_seeds, n, n)``).

    Students start from iid N(0, init_scale^2 / n) entries.  W is stored every
    ``snapshot_every`` steps (and at step 0); ``delta_sq`` averages (W - W_t)^2 over every
    step after ``burn_in`` (not only snapshots).  ``progress(step)`` is called every 100 steps.
    ``dtype``: a torch dtype, float64 by default (torch is imported here only, so that the
    closed forms above cost no torch import).
    """
    import torch

    dtype = torch.float64 if dtype is None else dtype
    Wt_np = np.asarray(W_teacher, dtype=float)
    n = Wt_np.shape[0]
    if Wt_np.shape != (n, n):
        raise ValueError(f"teacher must be square, got shape {Wt_np.shape}")
    if batch < 1 or n_seeds < 1 or n_steps < 1 or snapshot_every < 1 or lr <= 0 or sigma < 0:
        raise ValueError("need batch, n_seeds, n_steps, snapshot_every >= 1, lr > 0, sigma >= 0")
    if not 0 <= burn_in < n_steps:
        raise ValueError(f"burn_in must lie in [0, n_steps), got {burn_in} with n_steps {n_steps}")
    finite_lr_factor(lr, batch, n)  # raises when the dynamics has no stationary state
    gen = torch.Generator(device=device).manual_seed(int(seed))
    Wt = torch.as_tensor(Wt_np, dtype=dtype, device=device)
    W = init_scale / np.sqrt(n) * torch.randn(n_seeds, n, n, generator=gen, dtype=dtype, device=device)
    snaps, steps, losses = [W.clone()], [0], [float("nan")]
    acc = torch.zeros(n_seeds, dtype=dtype, device=device)
    for step in range(1, n_steps + 1):
        X = torch.randn(n_seeds, n, batch, generator=gen, dtype=dtype, device=device)
        E = sigma * torch.randn(n_seeds, n, batch, generator=gen, dtype=dtype, device=device)
        R = (W - Wt) @ X - E                      # residuals W x - y, (seeds, n, B)
        W -= (lr / batch) * (R @ X.transpose(1, 2))
        if step > burn_in:
            acc += ((W - Wt) ** 2).mean(dim=(1, 2))
        if step % snapshot_every == 0:
            snaps.append(W.clone())
            steps.append(step)
            losses.append(float(0.5 * (R ** 2).sum(dim=1).mean()))
        if progress is not None and step % 100 == 0:
            progress(step)
    return LinearRun(np.array(steps), torch.stack(snaps, dim=1).cpu().numpy(),
                     (acc / (n_steps - burn_in)).cpu().numpy(), np.array(losses))
