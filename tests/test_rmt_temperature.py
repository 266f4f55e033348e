"""The fits of the effective temperature against exact answers: weighted lines, the lr/B-alone
test, the local Coulomb gas on exact samples, the window temperature of known processes."""

import numpy as np
import pytest

from physml.rmt import temperature as tm


def test_weighted_line_is_exact_and_its_errors_are_the_textbook_ones():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    err = np.array([0.1, 0.2, 0.1, 0.4])
    f = tm.line_fit(x, 3 * x - 2, err)
    assert f["slope"] == pytest.approx(3, abs=1e-12) and f["intercept"] == pytest.approx(-2, abs=1e-12)
    assert f["chi2"] == pytest.approx(0, abs=1e-18) and f["dof"] == 2
    w = 1 / err ** 2   # var(slope) = S / (S Sxx - Sx^2), var(intercept) = Sxx / (S Sxx - Sx^2)
    S, Sx, Sxx = w.sum(), (w * x).sum(), (w * x * x).sum()
    assert f["slope_err"] == pytest.approx(np.sqrt(S / (S * Sxx - Sx ** 2)), rel=1e-12)
    assert f["intercept_err"] == pytest.approx(np.sqrt(Sxx / (S * Sxx - Sx ** 2)), rel=1e-12)
    # one point off by 3 of its errors: chi^2 of the residuals, p from chi^2 with 2 dof
    g = tm.line_fit(x, 3 * x - 2 + np.array([0, 0, 0.3, 0]), err)
    assert g["chi2"] == pytest.approx(np.sum(((3 * x - 2 + [0, 0, 0.3, 0] - g["slope"] * x - g["intercept"])
                                              / err) ** 2))
    assert g["p_value"] == pytest.approx(np.exp(-g["chi2"] / 2), rel=1e-10)


def test_a_fit_the_points_cannot_determine_is_refused():
    with pytest.raises(ValueError, match="do not determine"):
        tm.line_fit([0.1, 0.1, 0.1], [1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="positive errors"):
        tm.line_fit([0.1, 0.2, 0.3], [1.0, 2.0, 3.0], [0.1, 0.0, 0.1])


GRID = [(lr, B) for lr in (0.1, 0.2, 0.4) for B in (4, 8, 16)]


def test_scaling_test_finds_no_lr_term_where_lr_over_B_sets_T():
    lr, B = np.array(GRID).T
    x = lr / B
    T = x * np.exp(0.3 - 0.2 * np.log(x) + 0.05 * np.log(x) ** 2)     # a function of lr/B only
    r = tm.scaling_test(lr, B, T, 0.01 * T)
    assert r["lr_coef"] == pytest.approx(0, abs=1e-9) and r["collapse_chi2"] == pytest.approx(0, abs=1e-12)
    assert r["collapse_dof"] == 6 and r["max_abs_z"] < 1e-6


def test_scaling_test_measures_an_lr_term_at_fixed_lr_over_B():
    lr, B = np.array(GRID).T
    x = lr / B
    T = 0.125 * x * np.exp(0.7 * lr)                 # T grows by 0.7 per unit lr at fixed lr/B
    r = tm.scaling_test(lr, B, T, 0.005 * T)
    assert r["lr_coef"] == pytest.approx(0.7, rel=1e-9) and r["lr_coef_z"] > 10
    assert r["collapse_p"] < 1e-6 and r["max_abs_z"] > 3


def _two_level_gas(m, T, size, rng, beta_one=True):
    """Exact samples of a degenerate pair near m: the eigenvalues of a 2 x 2 GOE (density
    ~ |u1 - u2| exp(-(u1^2 + u2^2)/2)) scaled by sqrt(4 m T); beta_one=False: independent
    Gaussians of the same width (no repulsion, beta = 0)."""
    a, b = rng.standard_normal((2, size))
    c = rng.standard_normal(size) / np.sqrt(2)
    if beta_one:
        mid, half = (a + b) / 2, np.sqrt(((a - b) / 2) ** 2 + c ** 2)
        u = np.stack([mid - half, mid + half], axis=-1)
    else:
        u = np.sort(np.stack([a, b], axis=-1), axis=-1)
    return m + np.sqrt(4 * m * T) * u


@pytest.mark.parametrize("beta_one", [True, False])
def test_coulomb_gas_fit_recovers_T_and_beta_of_exact_samples(beta_one):
    rng = np.random.default_rng(4)
    T, seeds, snaps = 2e-4, 64, 40
    s = np.array([1.0, 2.0, 2.0, 3.0])                 # levels 1, (4, 4), 9
    shape = (seeds, snaps)
    single_1 = 1 + np.sqrt(4 * 1 * T) * rng.standard_normal(shape)
    pair = _two_level_gas(4.0, T, seeds * snaps, rng, beta_one).reshape(*shape, 2)
    single_9 = 9 + np.sqrt(4 * 9 * T) * rng.standard_normal(shape)
    eigs = np.concatenate([single_1[..., None], pair, single_9[..., None]], axis=-1)
    fit = tm.coulomb_gas_fit(eigs, np.arange(1, snaps + 1), 0, s)
    beta = 1.0 if beta_one else 0.0
    assert abs(fit["beta"] - beta) < 4 * fit["beta_err"] and fit["beta_err"] < 0.1
    if beta_one:   # the beta = 0 sample's widths are not those of a pair gas at T (no repulsion)
        assert abs(fit["T"] / T - 1) < 4 * fit["T_err"] / T and fit["T_err"] / T < 0.05


def test_window_temperature_of_a_known_stationary_process():
    """Each run's level fluctuates about its own level m_r (unknown to the estimator) with
    variance 4 m_r T: the estimate is T, the halves agree."""
    rng = np.random.default_rng(3)
    T, runs, snaps = 1e-3, 40, 400
    m = rng.uniform(1, 5, size=(runs, 1, 6))
    eigs = m + np.sqrt(4 * m * T) * rng.standard_normal((runs, snaps, 6))
    r = tm.window_temperature(eigs, np.arange(snaps), 99)
    assert abs(r["T"] - T) < 4 * r["T_err"] and r["T_err"] < 0.05 * T
    assert r["T_first_half"] == pytest.approx(T, rel=0.05) and r["T_second_half"] == pytest.approx(T, rel=0.05)
