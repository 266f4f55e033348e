"""Semi-analytic boundaries of the phase diagram and the drift-versus-noise criterion."""

import numpy as np
import pytest
from scipy import integrate, stats

from physml.phases import boundaries
from physml.phases import teacher_student as ts
from physml.phases.cells import drift_noise_ratio, eigenvalue_drift


def test_tanh_density_is_normalised_and_matches_samples():
    sigma = 1.3
    total, _ = integrate.quad(lambda s: boundaries.tanh_density(s, sigma), -1, 1, limit=200)
    assert total == pytest.approx(1, abs=1e-6)
    samples = np.tanh(np.random.default_rng(0).normal(0, sigma, 20000))
    grid = np.linspace(-1, 1, 40001)[1:-1]
    cdf = integrate.cumulative_trapezoid(boundaries.tanh_density(grid, sigma), grid, initial=0)
    cdf += (1 - cdf[-1]) / 2  # the tails beyond the grid are symmetric
    assert stats.kstest(samples, lambda s: np.interp(s, grid, cdf)).pvalue > 1e-3


def test_tanh_density_turns_bimodal_at_variance_one_half():
    assert boundaries.count_modes(np.sqrt(0.45)) == 1
    assert boundaries.count_modes(np.sqrt(0.55)) == 2
    assert boundaries.critical_tanh_variance() == pytest.approx(0.5, abs=1e-3)
    assert boundaries.spin_glass_line(0.5) == pytest.approx(np.sqrt(2))


def test_feature_second_moment_matches_sampled_features():
    runs = ts.draw_runs(300, 1.0, seed=4, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((300, 200, 3))
    a2 = (ts.features(runs, x) ** 2).mean(axis=(1, 2))  # one value per first layer M
    expected = boundaries.feature_second_moment("tanh")
    assert abs(a2.mean() - expected) < 4 * a2.std() / np.sqrt(len(a2))
    assert 0.3 < expected < 0.4
    # the pre-activation line sits where sigma_W^2 <a^2> = 1/2
    inv = boundaries.preactivation_line(expected, 0.5)
    assert (1 / inv) ** 2 * expected == pytest.approx(0.5)


def test_noise_induced_eigenvalue_drift_matches_monte_carlo():
    """E[dx_i] over random mini-batches minus the step along the mean gradient equals the
    predicted noise-induced drift (Ito + Coulomb terms) for a small learning rate."""
    runs = ts.draw_runs(1, 1.0, seed=9, dtype=np.float64)
    data = ts.draw_data(runs, batch_size=4, n_batches=50, n_test=4)
    x, y, W = data.x_train, data.y_train, runs.W0
    lr, B, n_batches = 0.02, 4, 40000
    _, per_sample = ts.loss_and_grad(runs, x[0][:, None, :], y[0][:, None], np.repeat(W, len(x[0]), 0))
    G = per_sample.mean(axis=0)
    rng = np.random.default_rng(2)
    g_B = per_sample[rng.integers(0, len(per_sample), (n_batches, B))].mean(axis=1)
    eig = lambda M: np.linalg.eigvalsh(M @ np.swapaxes(M, -1, -2))  # noqa: E731
    x0 = eig(W[0])
    dx = eig(W[0] - lr * g_B) - x0               # ascending order
    dx_mean = eig(W[0] - lr * G) - x0
    eps = 1e-7
    first_order = (eig(W[0] - eps * G) - x0) * lr / eps
    for index, col in ((0, -1), (-1, 0)):          # largest, smallest
        gradient, ito, coulomb = eigenvalue_drift(runs, x, y, W, lr, B, index)
        noise = ito + coulomb
        measured = dx[:, col].mean() - dx_mean[col]
        err = dx[:, col].std() / np.sqrt(n_batches)
        assert measured == pytest.approx(noise[0], abs=4 * err + 0.05 * abs(noise[0]))
        assert abs(noise[0]) > 4 * err            # the noise drift is resolved, not zero
        assert first_order[col] == pytest.approx(gradient[0], rel=1e-4)


def test_noise_scale_adds_ito_and_coulomb_magnitudes():
    """Level repulsion pushes the largest eigenvalue up and the smallest down, while the Ito
    drift is never negative; so the two noise drifts cancel only for the smallest eigenvalue,
    whose ratio must use |Ito| + |Coulomb| rather than |Ito + Coulomb|."""
    runs = ts.draw_runs(6, 1.0, seed=3, dtype=np.float64)
    data = ts.draw_data(runs, 4, 50, 4)
    x, y, W = data.x_train, data.y_train, runs.W0
    top, bottom = drift_noise_ratio(runs, x, y, W, 0.1, 4)
    _, ito_top, coulomb_top = eigenvalue_drift(runs, x, y, W, 0.1, 4, 0)
    gradient, ito, coulomb = eigenvalue_drift(runs, x, y, W, 0.1, 4, -1)
    assert (ito_top >= 0).all() and (coulomb_top > 0).all()
    assert (ito >= 0).all() and (coulomb < 0).all()
    np.testing.assert_allclose(bottom, np.abs(gradient) / (ito - coulomb), rtol=1e-12)
    assert (bottom < np.abs(gradient) / np.abs(ito + coulomb)).all()
    assert np.isfinite(top).all() and (top > 0).all()
