"""Spectral analysis against exact laws and simulated random-matrix ensembles."""

import numpy as np
import pytest
from scipy import integrate, stats

from physml.rmt import spectra as sp


@pytest.mark.parametrize("q", [0.25, 0.5, 1.0])
def test_mp_cdf_is_the_integral_of_the_density(q):
    sigma2 = 1.7
    lo, hi = sp.mp_edges(sigma2, q)
    assert sp.mp_cdf(lo, sigma2, q) == 0 and sp.mp_cdf(hi, sigma2, q) == pytest.approx(1)
    for x in np.linspace(lo, hi, 7)[1:-1]:
        ref, _ = integrate.quad(lambda t: sp.mp_pdf(np.array([t]), sigma2, q)[0], lo, x, limit=200)
        assert sp.mp_cdf(x, sigma2, q) == pytest.approx(ref, abs=1e-6)


def test_gram_eigenvalues_use_the_smaller_gram_matrix():
    W = np.random.default_rng(0).standard_normal((2, 7, 3))
    e = sp.gram_eigenvalues(W)
    assert e.shape == (2, 3)
    big = np.linalg.eigvalsh(W @ W.transpose(0, 2, 1))[:, -3:]
    np.testing.assert_allclose(e, big, rtol=1e-10)
    np.testing.assert_allclose(sp.gram_eigenvalues(W.transpose(0, 2, 1)), e, rtol=1e-10)


@pytest.mark.parametrize("shape", [(400, 200), (150, 300), (256, 256)])
def test_mp_fit_recovers_the_variance_within_two_percent(shape):
    rng = np.random.default_rng(1)
    sigma = 0.37
    W = sigma * rng.standard_normal(shape)
    N, q = sp.aspect(shape)
    sigma2 = sp.fit_mp(sp.gram_eigenvalues(W) / N)
    assert abs(sigma2 / sigma ** 2 - 1) < 0.02


def test_mp_test_accepts_iid_and_rejects_a_spiked_matrix():
    rng = np.random.default_rng(2)
    shape = (64, 32)
    null = sp.mp_null_distances(shape, 4, 200, rng)
    iid = sp.gram_eigenvalues(0.1 * rng.standard_normal((4, *shape)))
    assert sp.mp_test(iid, shape, null).p_value > 0.01
    # a rank-one spike of strength 3 sigma^2 N on each matrix: outside the MP bulk
    u = rng.standard_normal((4, 64, 1)) / 8
    v = rng.standard_normal((4, 1, 32)) / np.sqrt(32)
    spiked = sp.gram_eigenvalues(0.1 * (rng.standard_normal((4, *shape)) + 3 * np.sqrt(64) * u @ v))
    assert sp.mp_test(spiked, shape, null).p_value < 0.01


def test_mean_ratio_goe_and_poisson_within_0_01():
    rng = np.random.default_rng(3)
    goe = np.linalg.eigvalsh(sp.goe_matrices(200, 100, rng))[:, 20:-20]   # bulk
    assert abs(sp.spacing_ratios(goe).mean() - sp.GOE_MEAN_R) < 0.01
    poisson = np.sort(rng.uniform(size=(50, 1000)), axis=-1)
    assert abs(sp.spacing_ratios(poisson).mean() - sp.POISSON_MEAN_R) < 0.01


def _goe_spacings(n_matrices, rng, n=100):
    ev = np.linalg.eigvalsh(sp.goe_matrices(n, n_matrices, rng))
    return sp.spacings(sp.unfold_spectrum(ev, cdf=lambda x: sp.semicircle_cdf(x, 2.0), trim=0.2))


def test_wigner_surmise_at_modest_sample_size_and_not_poisson():
    s = _goe_spacings(8, np.random.default_rng(4))          # ~ 480 spacings
    assert 300 < len(s) < 1000
    assert stats.kstest(s, sp.wigner_surmise_cdf).pvalue > 0.01
    assert stats.kstest(s, sp.poisson_spacing_cdf).pvalue < 1e-6


def test_large_samples_compare_with_simulated_goe_not_the_surmise():
    """The surmise is the 2 x 2 result: ~10^5 exact GOE spacings resolve its error, while two
    independent large GOE samples agree."""
    rng = np.random.default_rng(5)
    a, b = _goe_spacings(1200, rng), _goe_spacings(1200, rng)
    assert len(a) > 60_000
    assert stats.ks_2samp(a, b).pvalue > 0.01
    assert stats.kstest(np.concatenate([a, b]), sp.wigner_surmise_cdf).pvalue < 0.01


def test_polynomial_unfolding_matches_the_exact_semicircle():
    ev = np.linalg.eigvalsh(sp.goe_matrices(200, 40, np.random.default_rng(6)))
    poly = sp.unfold_spectrum(ev)
    exact = sp.unfold_spectrum(ev, cdf=lambda x: sp.semicircle_cdf(x, 2.0))
    assert np.max(np.abs(poly - exact)) < 1.0       # within one mean level spacing
    assert sp.spacings(poly).mean() == pytest.approx(1.0)


def test_hill_estimator_recovers_a_pareto_exponent_and_flags_a_bounded_tail():
    rng = np.random.default_rng(7)
    fit = sp.tail_fit(rng.pareto(2.0, 20_000) + 1, 100, 2000)
    assert fit.stable and abs(fit.alpha_claim - 2.0) < 3 * fit.alpha_claim_err
    # MP eigenvalues have a hard edge: the Hill plot drifts, no exponent is claimed
    mp = sp.gram_eigenvalues(rng.standard_normal((400, 200))) / 400
    bounded = sp.tail_fit(mp, 10, 100)
    assert not bounded.stable and np.isnan(bounded.alpha_claim)
