"""Linear teacher-student SGD against its exact stationary variance, and the effective temperature."""

import numpy as np
import pytest
from scipy import stats

from physml.rmt import linear_sgd as ls
from physml.rmt import spectra as sp
from physml.rmt import temperature as tm

S = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
SIGMA = 0.5


@pytest.fixture(scope="module")
def teacher():
    return ls.make_teacher(S, seed=11)


def _run(teacher, lr, batch, **kw):
    args = dict(lr=lr, batch=batch, sigma=SIGMA, n_steps=1000, n_seeds=128, snapshot_every=10,
                burn_in=400, seed=5)
    return ls.train_linear_sgd(teacher, **{**args, **kw})


def test_teacher_has_the_requested_singular_values(teacher):
    np.testing.assert_allclose(np.linalg.svd(teacher, compute_uv=False), sorted(S, reverse=True))


def test_closed_form_limits():
    assert ls.stationary_variance(1e-6, 4, 6, 1.0) / (1e-6 / 4 / 2) == pytest.approx(1, abs=1e-5)
    # the collapse at fixed lr/B is broken by the finite-lr factor alone
    ratio = ls.stationary_variance(0.4, 64, 6, 1.0) / ls.stationary_variance(0.025, 4, 6, 1.0)
    assert ratio == pytest.approx(ls.finite_lr_factor(0.4, 64, 6) / ls.finite_lr_factor(0.025, 4, 6))
    with pytest.raises(ValueError, match="stability"):
        ls.stationary_variance(1.5, 2, 6, 1.0)


@pytest.mark.parametrize("lr,batch", [(0.025, 4), (0.1, 16), (0.4, 4), (0.4, 64)])
def test_stationary_entry_variance_matches_the_closed_form(teacher, lr, batch):
    run = _run(teacher, lr, batch)
    m = run.delta_sq.mean()
    err = run.delta_sq.std(ddof=1) / np.sqrt(len(run.delta_sq))
    c = ls.stationary_variance(lr, batch, len(S), SIGMA)
    assert abs(m - c) < 3.5 * err
    assert err / c < 0.01          # a test at the percent level


def test_without_label_noise_the_width_vanishes(teacher):
    run = _run(teacher, 0.1, 8, sigma=0.0)
    assert run.delta_sq.max() < 1e-12


def test_effective_temperature_from_eigenvalue_widths(teacher):
    """First-order perturbation theory: var(lambda_i) = coefficient_i * c, pairs included."""
    lr, batch = 0.05, 16
    run = _run(teacher, lr, batch, n_seeds=256)
    eig = sp.gram_eigenvalues(run.W)
    c = ls.stationary_variance(lr, batch, len(S), SIGMA)
    t, err = tm.effective_temperature(eig, run.steps, 400, S)
    assert abs(t - c) < 3 * err + 0.01 * c
    var, verr = tm.eigenvalue_variances(eig, run.steps, 400)
    np.testing.assert_allclose(var / tm.variance_coefficients(S), c, rtol=0.1)


def test_degenerate_pair_spacing_follows_the_wigner_surmise(teacher):
    run = _run(teacher, 0.025, 16, n_seeds=256)
    s = tm.pair_spacings(sp.gram_eigenvalues(run.W[:, -1]), S)   # 768 pairs: a modest sample
    assert stats.kstest(s, sp.wigner_surmise_cdf).pvalue > 0.01
    assert stats.kstest(s, sp.poisson_spacing_cdf).pvalue < 1e-6


def test_same_seed_same_run(teacher):
    a = _run(teacher, 0.1, 4, n_steps=50, burn_in=10, n_seeds=4)
    b = _run(teacher, 0.1, 4, n_steps=50, burn_in=10, n_seeds=4)
    np.testing.assert_array_equal(a.W, b.W)


def test_helpers():
    assert tm.degenerate_pairs([3, 1, 1, 2]) == [(0, 1)]
    with pytest.raises(ValueError, match="doubly"):
        tm.degenerate_pairs([1, 1, 1])
    assert tm.fit_line([1, 2, 3, 4], [2, 4, 6, 8]).r2 == pytest.approx(1)
    assert tm.collapse_spread([0.1, 0.1, 0.2], [1.0, 1.5, 7.0]) == {0.1: pytest.approx(0.5)}
