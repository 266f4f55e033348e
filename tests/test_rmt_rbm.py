"""The Gaussian RBM against exact results: the target's spectrum, the likelihood gradient, the
law of the mini-batch covariance, the fixed point, and the linearised width temperature."""

import numpy as np
import pytest

from physml.rmt import rbm as rb
from physml.rmt import temperature as tm

RBM = rb.GaussianRBM(L=10, m2=4.0, mu2=12.0, sigma_h=1.0)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Batched 100 x 100 products: BLAS threads on a busy machine only stall them."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def test_target_spectrum_is_the_lattice_dispersion_in_degenerate_pairs():
    U = RBM.basis()
    np.testing.assert_allclose(U.T @ U, np.eye(10), atol=1e-12)
    k = np.arange(10)   # momenta 2 pi k / 10: kappa = m^2 + 4 sin^2(pi k / 10), k and 10 - k equal
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(RBM.target_kernel())),
                               np.sort(4 + 4 * np.sin(np.pi * k / 10) ** 2), atol=1e-12)
    np.testing.assert_allclose(U.T @ RBM.target_kernel() @ U, np.diag(RBM.kappa), atol=1e-12)
    x = RBM.stationary_eigenvalues()
    assert tm.degenerate_pairs(np.sqrt(x)) == [(1, 2), (3, 4), (5, 6), (7, 8)]   # k = 0 and 5 alone
    assert x[0] == pytest.approx(12 - 8) and x[-1] == pytest.approx(12 - 4)
    with pytest.raises(ValueError, match="must exceed"):
        rb.GaussianRBM(m2=4.0, mu2=8.0)


def test_update_is_the_gradient_of_the_log_likelihood():
    """sigma_h^2 (C - K^{-1}) W, the update's direction, against finite differences of the
    exact mean log-likelihood of a set of configurations with sample covariance C."""
    rng = np.random.default_rng(0)
    model = rb.GaussianRBM(L=5, m2=1.0, mu2=7.0, sigma_h=0.8)
    W = 0.5 * rng.standard_normal((5, 5))
    phi = rng.standard_normal((50, 5))
    C = phi.T @ phi / len(phi)
    K = model.mu2 * np.eye(5) - model.sigma_h ** 2 * W @ W.T
    grad = model.sigma_h ** 2 * (C - np.linalg.inv(K)) @ W
    h, fd = 1e-6, np.empty_like(W)
    for i in range(5):
        for j in range(5):
            E = np.zeros_like(W)
            E[i, j] = h
            fd[i, j] = (rb.log_likelihood(W + E, phi, model) - rb.log_likelihood(W - E, phi, model)) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("B", [3, 40])       # draws (B < L) and the Bartlett decomposition
def test_mini_batch_covariance_has_the_wishart_moments(B):
    """E[C_B] = C and cov(C_ij, C_kl) = (C_ik C_jl + C_il C_jk) / B, exactly for Gaussian draws."""
    rng = np.random.default_rng(1)
    C = np.linalg.inv(rb.GaussianRBM(L=4, m2=1.0, mu2=9.0).target_kernel())
    n_samples = 200_000
    S = rb.sample_covariance(np.linalg.cholesky(C), B, n_samples, rng)
    np.testing.assert_allclose(S.mean(0), C, atol=5 * np.sqrt(2 * C.max() ** 2 / B / n_samples))
    for (i, j, k, l) in [(0, 0, 0, 0), (0, 1, 0, 1), (0, 0, 1, 1), (0, 1, 2, 3), (1, 2, 1, 3)]:
        emp = np.mean((S[:, i, j] - C[i, j]) * (S[:, k, l] - C[k, l]))
        exact = (C[i, k] * C[j, l] + C[i, l] * C[j, k]) / B
        assert emp == pytest.approx(exact, abs=0.03 * (C[i, i] * C[j, j] + C[k, k] * C[l, l]) / B)


def test_linearised_temperature_tends_to_lr_over_2B():
    for B in (8, 64):
        assert rb.linearised_temperature(RBM, 1e-6, B) / (1e-6 / (2 * B)) == pytest.approx(1, abs=1e-4)
    # finite lr raises it (discrete-time relaxation and the Wishart term), more at small B
    assert rb.linearised_temperature(RBM, 0.08, 32) > rb.linearised_temperature(RBM, 0.02, 8) * 0.08 / 0.02 * 8 / 32


def test_training_reaches_the_fixed_point_with_the_linearised_width():
    """At small lr/B (widths well below the target's gaps) the measured width temperature of
    the stationary eigenvalues of W^T W agrees with the linearised prediction, and the levels
    (pairs by their centre) sit at the fixed point (mu^2 - kappa) / sigma_h^2, up to the
    second-order repulsion of neighbours (width^2 / gap ~ 0.03)."""
    lr, B, burn = 0.08, 128, 800
    run = rb.train_rbm(RBM, lr=lr, batch=B, n_runs=32, n_steps=1800, snapshot_every=3, seed=2)
    assert not run.diverged.any()
    eig = np.linalg.eigvalsh(np.swapaxes(run.W, -1, -2) @ run.W)
    mean = eig[:, run.steps > burn].mean(axis=(0, 1))
    x = RBM.stationary_eigenvalues()
    for i, j in tm.degenerate_pairs(np.sqrt(x)):
        mean[i] = mean[j] = (mean[i] + mean[j]) / 2
    np.testing.assert_allclose(mean, x, atol=0.04)
    T, err = tm.effective_temperature(eig, run.steps, burn, np.sqrt(x))
    T_lin = rb.linearised_temperature(RBM, lr, B)
    assert abs(T / T_lin - 1) < 4 * err / T_lin and err / T_lin < 0.05


def test_same_seed_same_run():
    a, b = (rb.train_rbm(RBM, lr=0.05, batch=16, n_runs=3, n_steps=20, snapshot_every=5, seed=7) for _ in range(2))
    np.testing.assert_array_equal(a.W, b.W)
