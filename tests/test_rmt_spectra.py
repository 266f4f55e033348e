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
    """The median-matching fit (not the sample variance of the entries)."""
    rng = np.random.default_rng(1)
    sigma = 0.37
    W = sigma * rng.standard_normal(shape)
    N, q = sp.aspect(shape)
    sigma2 = sp.fit_mp(sp.gram_eigenvalues(W) / N, q)
    assert abs(sigma2 / sigma ** 2 - 1) < 0.02


def test_mp_unit_median_bisects_the_density():
    for q in (0.25, 1.0):
        lo, _ = sp.mp_edges(1.0, q)
        half, _ = integrate.quad(lambda t: sp.mp_pdf(np.array([t]), 1.0, q)[0], lo,
                                 sp.mp_unit_median(q), limit=200)
        assert half == pytest.approx(0.5, abs=1e-5)


def test_an_outlier_does_not_rescale_the_bulk():
    """12 iid 64 x 64 matrices plus one rank-one spike each (strength 5 sigma sqrt(N)): the bulk
    is MP with the true variance, the outlier carries ~40% of the eigenvalue sum.  The robust fit
    recovers sigma^2, and the bulk distance stays within one level (1/M) of the iid null, where
    the moment fit (the mean) is off by ~40% and its KS distance ~0.1."""
    rng = np.random.default_rng(0)
    shape, n, sigma = (64, 64), 12, 0.1
    u = rng.standard_normal((n, 64, 1))
    v = rng.standard_normal((n, 1, 64))
    spike = 5 * sigma * np.sqrt(64) * (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (
        v / np.linalg.norm(v, axis=2, keepdims=True))
    e = sp.gram_eigenvalues(sigma * rng.standard_normal((n, *shape)) + spike)
    N, q = sp.aspect(shape)
    assert (e / N).mean() / sigma ** 2 > 1.3                   # what the mean would fit
    fit = sp.fit_mp(e / N, q)            # per matrix: the median of 64 levels scatters by ~4.5%
    np.testing.assert_allclose(fit, sigma ** 2, rtol=0.15)
    assert abs(fit.mean() / sigma ** 2 - 1) < 0.03
    null = sp.mp_null(shape, n, 100, rng, exclude_top=1)
    bulk = sp.mp_test(e, shape, null, exclude_top=1)
    np.testing.assert_allclose(bulk.sigma2, fit)
    assert bulk.distance < bulk.null_median + 1 / 64
    with pytest.raises(ValueError, match="exclude_top"):
        sp.mp_distance(e / N, q, exclude_top=64)


def test_mp_test_accepts_iid_and_flags_the_outlier_of_a_spiked_matrix():
    rng = np.random.default_rng(2)
    shape = (64, 32)
    null = sp.mp_null(shape, 4, 200, rng)
    iid = sp.mp_test(sp.gram_eigenvalues(0.1 * rng.standard_normal((4, *shape))), shape, null)
    assert iid.p_value > 0.01 and iid.p_top > 0.01
    # a rank-one spike of strength 3 sigma sqrt(N) on each matrix: one eigenvalue outside the
    # bulk (1/32 of the mass, below the KS resolution), seen by the top-eigenvalue statistic
    u = rng.standard_normal((4, 64, 1)) / 8
    v = rng.standard_normal((4, 1, 32)) / np.sqrt(32)
    spiked = sp.gram_eigenvalues(0.1 * (rng.standard_normal((4, *shape)) + 3 * np.sqrt(64) * u @ v))
    res = sp.mp_test(spiked, shape, null)
    assert res.p_top < 0.01 and res.top > 2


def test_mean_ratio_goe_and_poisson_within_0_01():
    rng = np.random.default_rng(3)
    goe = np.linalg.eigvalsh(sp.goe_matrices(200, 100, rng))[:, 20:-20]   # bulk
    assert abs(sp.spacing_ratios(goe).mean() - sp.GOE_MEAN_R) < 0.01
    poisson = np.sort(rng.uniform(size=(50, 1000)), axis=-1)
    assert abs(sp.spacing_ratios(poisson).mean() - sp.POISSON_MEAN_R) < 0.01
    np.testing.assert_array_equal(sp.spacing_ratios([0.0, 1.0, 1.0, 3.0]), [0.0, 0.0])
    with pytest.raises(ValueError, match="three exactly equal"):
        sp.spacing_ratios([0.0, 1.0, 1.0, 1.0])


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
    assert np.diff(poly, axis=-1).mean() == pytest.approx(1.0, rel=0.02)   # unit density, unnormalised


def test_bulk_ratio_drops_the_levels_above_the_cut():
    from physml.rmt.analysis import bulk_ratio

    x = np.array([[1.0, 2.0, 4.0, 5.0, 50.0, 60.0], [1.0, 1.5, 3.0, 3.5, 4.0, 4.2]])
    n_out, r = bulk_ratio(x, cut=10.0)
    assert n_out.tolist() == [2, 0]
    # spacings 1, 2, 1: ratios 1/2, 1/2; spacings 0.5, 1.5, 0.5, 0.5, 0.2: 1/3, 1/3, 1, 0.4
    assert r[0] == pytest.approx(0.5) and r[1] == pytest.approx((1 / 3 + 1 / 3 + 1 + 0.4) / 4)
    assert np.isnan(bulk_ratio(np.array([[1.0, 20.0, 30.0]]), cut=10.0)[1][0])   # two levels left


def test_per_head_ratios_of_iid_matrices_have_honest_errors_and_rare_outliers():
    """spectra_dataset on 2 x 40 iid 64 x 16 'heads': the outlier cut flags about 1% of them,
    each head's stated error is the spread of <r> over the heads, the mean over heads is the
    iid value within its error, and the bulk <r> is the <r> of all levels."""
    import xarray as xr

    from physml.rmt.analysis import spectra_dataset

    rng = np.random.default_rng(5)
    W = rng.standard_normal((2, 40, 64, 16))
    ds = xr.Dataset({"W": (("step", "matrix", "row", "col"), W)}, coords={"step": [0, 1]})
    out = spectra_dataset(ds, n_null=150, seed=1, p_threshold=0.01)
    assert out["n_outliers"].values.sum() <= 3                              # 80 matrices, 1% expected
    r = out["spacing_ratio"].values.ravel()
    assert np.mean(out["spacing_ratio_err"].values) == pytest.approx(r.std(ddof=1), rel=0.2)
    m, e = out["spacing_ratio_mean"].values, out["spacing_ratio_mean_err"].values
    assert np.all(np.abs(m - float(out["spacing_ratio_null_mean"])) < 4 * e)
    np.testing.assert_allclose(out["spacing_ratio_bulk_mean"], m, atol=0.02)
