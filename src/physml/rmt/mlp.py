"""Online SGD of the teacher-student MLP (:mod:`physml.phases.teacher_student`) with label noise.

The network, teacher and student initialisation are those of the phases study (3 -> 32 -> 16
-> 1, tanh, only the middle matrix W trained).  There, each run learns a fixed training set
of noiseless teacher labels visited in a fixed order: the student can reach the teacher, where
every mini-batch gradient vanishes, so SGD has no stationary width to measure, and a fixed
visiting order makes the late dynamics a deterministic cycle.  For the effective temperature
the runs here see, at every step, B fresh inputs x ~ N(0, I) with labels
``t = teacher(x) + sigma eta``, ``eta ~ N(0, 1)``: the mini-batch noise then persists at the
teacher and W settles into a stationary distribution around it, as in the linear
teacher-student (:mod:`physml.rmt.linear_sgd`), but with a nonlinear, strongly anisotropic
curvature (a few stiff directions from the 3 input dimensions, many weak ones) and no
closed form for its width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physml.phases.teacher_student import Runs, forward, loss_and_grad


@dataclass
class OnlineRun:
    """Output of :func:`train_mlp_online` (numpy arrays)."""

    steps: np.ndarray            # (n_snap,) snapshot steps, 0 = initialisation
    W: np.ndarray                # (n_snap, n_runs, n2, n1) middle matrices
    diverged: np.ndarray         # (n_runs,) bool: the loss became non-finite; the run was frozen
    last_batch_loss: np.ndarray  # (n_runs,)


def train_mlp_online(runs: Runs, *, lr: float, batch: int, label_noise: float, n_steps: int,
                     snapshot_every: int, seed: int, progress=None) -> OnlineRun:
    """Plain SGD of every run at once on fresh noisy mini-batches (module docstring), in the
    precision of ``runs`` (float32 from :func:`draw_runs` by default, as the phases study); W is
    stored at step 0 and every ``snapshot_every`` steps.  ``progress(step)`` is called every
    100 steps."""
    if lr <= 0 or batch < 1 or n_steps < 1 or snapshot_every < 1 or label_noise < 0:
        raise ValueError("need lr > 0, batch, n_steps, snapshot_every >= 1 and label_noise >= 0")
    rng = np.random.default_rng(seed)
    dtype = runs.M.dtype
    W = runs.W0.copy()
    alive = np.ones(runs.n_runs, bool)
    last = np.full(runs.n_runs, np.nan)
    snaps, steps = [W.copy()], [0]
    for step in range(1, n_steps + 1):
        x = rng.standard_normal((runs.n_runs, batch, runs.arch.n_in), dtype=dtype)
        t = forward(runs, x, runs.W_teacher) + label_noise * rng.standard_normal((runs.n_runs, batch), dtype=dtype)
        loss, grad = loss_and_grad(runs, x, t, W)
        alive &= np.isfinite(loss)
        W -= np.where(alive[:, None, None], lr * grad, 0).astype(dtype)
        last = np.where(alive, loss, last)
        if step % snapshot_every == 0:
            snaps.append(W.copy())
            steps.append(step)
        if progress is not None and step % 100 == 0:
            progress(step)
    return OnlineRun(np.array(steps), np.stack(snaps), ~alive, last)
