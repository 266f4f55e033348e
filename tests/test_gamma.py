"""Gamma-method errors against an AR(1) process with known autocorrelation."""

import numpy as np
import pytest

from physml.stats.gamma import chain_jackknife_error, estimate, gamma_error, primary


def _ar1(rho, n, n_chains, seed):
    rng = np.random.default_rng(seed)
    x = np.empty((n_chains, n))
    x[:, 0] = rng.normal(size=n_chains) / np.sqrt(1 - rho ** 2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + rng.normal(size=n_chains)
    return x


def test_tau_int_of_ar1():
    """tau_int = (1 + rho) / (2 (1 - rho)) = 9.5 for rho = 0.9; the error of the mean follows."""
    rho = 0.9
    est = gamma_error(_ar1(rho, 20000, 4, seed=1))
    exact_tau = (1 + rho) / (2 * (1 - rho))
    assert abs(est.tau_int - exact_tau) < 3 * est.tau_int_error, (est.tau_int, est.tau_int_error)
    exact_err = np.sqrt(2 * exact_tau / (1 - rho ** 2) / 80000)
    assert abs(est.error / exact_err - 1) < 0.2
    assert abs(est.value) < 4 * exact_err


def test_independent_data_have_tau_half():
    est = gamma_error(np.random.default_rng(2).normal(size=(8, 500)))
    assert abs(est.tau_int - 0.5) < 0.1


def test_short_chains_are_joined():
    est = gamma_error(np.random.default_rng(3).normal(size=(400, 1)))
    assert est.error == pytest.approx(1 / 20, rel=0.15)


def test_jackknife_over_short_chains_sees_what_the_gamma_window_misses():
    """64 stationary AR(1) chains (rho = 0.9, tau_int 9.5) of 16 measurements each: the
    exact error of the mean is sigma^2 sum_ij rho^|i-j| / (16^2 64); the jackknife over
    chains finds it within its own statistical scatter (about 9% for 64 chains), while the
    Gamma method's window, cut off by the short chains, comes out far too small.  For a
    nonlinear formula the jackknife equals the delta method at large samples."""
    rho, n, chains = 0.9, 16, 64
    x = _ar1(rho, n, chains, seed=4)
    i = np.arange(n)
    exact = np.sqrt((rho ** np.abs(i[:, None] - i[None, :])).sum() / (1 - rho ** 2) / (n * n * chains))
    jack = chain_jackknife_error({"x": x.mean(axis=1)}, lambda p: p["x"])
    assert jack == pytest.approx(exact, rel=0.3)
    assert gamma_error(x).error < 0.7 * exact
    y = np.random.default_rng(5).normal(loc=2.0, size=(400, 50))
    means = {"a": y.mean(axis=1), "b": (y * y).mean(axis=1)}
    gamma = estimate(primary(y * y) / primary(y)).error
    assert chain_jackknife_error(means, lambda p: p["b"] / p["a"]) == pytest.approx(gamma, rel=0.1)
    with pytest.raises(ValueError, match="2 chains"):
        chain_jackknife_error({"x": np.ones(1)}, lambda p: p["x"])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        primary(np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        primary(np.array([[0.0, np.nan, 1, 2, 3]]))
