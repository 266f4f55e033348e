"""Linear teacher-student SGD against its exact stationary variance, and the effective temperature."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from physml.rmt import linear_sgd as ls
from physml.rmt import spectra as sp
from physml.rmt import temperature as tm
from physml.rmt.grid import temperature_dataset

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
    # by hand: lr sigma^2 = 0.4 * 0.25 = 0.1, B (2 - lr - lr (n+1)/B) = 4 (2 - 0.4 - 0.7) = 3.6
    assert ls.stationary_variance(0.4, 4, 6, 0.5) == pytest.approx(0.1 / 3.6, rel=1e-12)
    # equal lr/B = 1/160, factors 2 - 0.4 - 2.8/64 = 1.55625 and 2 - 0.025 - 0.175/4 = 1.93125:
    # the collapse at fixed lr/B is broken by 24% by the finite-lr factor alone
    ratio = ls.stationary_variance(0.4, 64, 6, 1.0) / ls.stationary_variance(0.025, 4, 6, 1.0)
    assert ratio == pytest.approx(1.93125 / 1.55625, rel=1e-12)
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


@pytest.mark.parametrize("lr,batch,scale", [(0.05, 16, 1.0), (0.4, 4, 3.0)])
def test_effective_temperature_from_eigenvalue_widths(teacher, lr, batch, scale):
    """T_eff against the closed form c, within its error.  At lr = 0.4, B = 4 (c = 0.028, D of
    kurtosis ~3.4) the teacher's gaps are scaled up so that first-order perturbation theory
    holds (relative corrections ~ c / gap^2; with gaps of 1 T_eff / c is 0.969)."""
    s = [scale * x for x in S]
    run = _run(teacher * scale, lr, batch, n_seeds=512)
    eig = sp.gram_eigenvalues(run.W)
    c = ls.stationary_variance(lr, batch, len(S), SIGMA)
    t, err = tm.effective_temperature(eig, run.steps, 400, s)
    assert abs(t - c) < 3 * err and err < 0.01 * c


def test_effective_temperature_needs_second_moments_only():
    """Synthetic W = W_t + g G at first order (c = 1e-8): G Gaussian, g a random scale with
    E g^2 = 1 (kurtosis 3.75, as SGD's D is non-Gaussian).  T_eff recovers c exactly, while the
    variance of each member of a pair is 4 s^2 c (3/2 - (E g)^2 pi/4), not the Gaussian
    4 s^2 c (3/2 - pi/4)."""
    rng = np.random.default_rng(8)
    c, n_samples = 1e-8, 40_000
    Wt = ls.make_teacher(S, seed=11)
    g = np.sqrt(rng.choice([0.5, 1.5], size=(n_samples, 1, 1)))
    eig = sp.gram_eigenvalues(Wt + np.sqrt(c) * g * rng.standard_normal((n_samples, 6, 6)))
    t, err = tm.effective_temperature(eig[:, None], np.array([1]), 0, S)
    assert abs(t / c - 1) < 3 * err / c and err / c < 0.01
    var, verr = tm.eigenvalue_variances(eig[:, None], np.array([1]), 0)
    member, member_err = (v / (4 * np.sort(S) ** 2 * c) for v in (var, verr))
    mean_g = (np.sqrt(0.5) + np.sqrt(1.5)) / 2
    assert np.all(np.abs(member - (1.5 - mean_g ** 2 * np.pi / 4)) < 4 * member_err)
    assert np.all(np.abs(member - (1.5 - np.pi / 4)) > 5 * member_err)


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
    with pytest.raises(ValueError, match="rmt linear.*'rmt_dbm'"):
        temperature_dataset([xr.Dataset(attrs={"kind": "rmt_dbm"})] * 3, lr_linear_max=0.1)
