"""Online SGD of the teacher-student MLP with label noise, against an exact stationary law."""

import numpy as np
import pytest

from physml.phases.teacher_student import Architecture, draw_runs
from physml.rmt.mlp import train_mlp_online


def test_stationary_excess_loss_of_the_linear_network_is_exact():
    """With the identity activation the network is linear in W with Gaussian features
    phi = Z (x) M x, second moment H = Z Z^T (x) M M^T.  Online SGD with label noise sigma then
    has, in H's eigenbasis (eigenvalues h_j), the exact stationary covariance
    lr (t + sigma^2) / (B (2 - lr h_j (1 + 1/B))) with t = tr(H Sigma), so that
    t = sigma^2 S / (1 - S), S = (lr / B) sum_j h_j / (2 - lr h_j (1 + 1/B)) (Isserlis for the
    fourth moment of the mini-batch), and the excess loss is t / 2: here (lr h up to 0.6) about
    1.3 times its small-lr limit lr sigma^2 tr(H) / (4B)."""
    lr, B, sigma = 0.02, 4, 0.5
    runs = draw_runs(32, 1.0, seed=3, arch=Architecture(3, 32, 16, "identity"))
    res = train_mlp_online(runs, lr=lr, batch=B, label_noise=sigma, n_steps=1000, snapshot_every=2, seed=4)
    assert not res.diverged.any()
    late = res.steps > 100                                              # relaxation: 1/(lr h) < 20 steps
    D = res.W[late] - runs.W_teacher[None]                               # (snap, run, n2, n1)
    v = np.einsum("sri,rik->srk", np.einsum("rj,srji->sri", runs.Z, D), runs.M)    # M^T D^T Z
    measured = 0.5 * np.sum(v ** 2, axis=-1).mean(axis=0)                # per run
    predicted, small_lr = np.empty(runs.n_runs), np.empty(runs.n_runs)
    for r in range(runs.n_runs):
        h = np.sum(runs.Z[r].astype(float) ** 2) * np.linalg.eigvalsh(runs.M[r].T.astype(float) @ runs.M[r])
        S = lr / B * np.sum(h / (2 - lr * h * (1 + 1 / B)))
        predicted[r] = 0.5 * sigma ** 2 * S / (1 - S)
        small_lr[r] = lr * sigma ** 2 * h.sum() / (4 * B)
    ratio = measured / predicted
    err = ratio.std(ddof=1) / np.sqrt(len(ratio))
    assert abs(ratio.mean() - 1) < 4 * err and err < 0.03
    assert np.mean(predicted / small_lr) > 1.2          # the finite-lr correction is tested, not assumed


def test_same_seed_same_run_and_bad_settings_are_refused():
    runs = draw_runs(4, 1.0, seed=1)
    a, b = (train_mlp_online(runs, lr=0.2, batch=4, label_noise=0.0, n_steps=50, snapshot_every=10, seed=2)
            for _ in range(2))
    np.testing.assert_array_equal(a.W, b.W)
    assert a.W.dtype == np.float32 and a.steps.tolist() == [0, 10, 20, 30, 40, 50]
    with pytest.raises(ValueError, match="label_noise"):
        train_mlp_online(runs, lr=0.2, batch=4, label_noise=-1.0, n_steps=5, snapshot_every=1, seed=2)
