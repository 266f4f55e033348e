"""Tail fits of eigenvalue spectra: the CSN scan against the `powerlaw` package, recovery of a
known exponent, refusal of Marchenko-Pastur spectra, weightwatcher and Hill side by side."""

import contextlib
import io
import logging
import warnings

import numpy as np
import pytest
import torch

from physml.rmt import analysis
from physml.rmt import spectra as sp
from physml.rmt import tails as tl


def pareto_tailed_spectra(alpha, n_matrices, rng, tail_fraction=0.25):
    """Eigenvalues of W^T W for ``n_matrices`` 64 x 16 matrices W = U diag(sqrt(lambda)) V^T whose
    lambda are a bulk on [0.2, 1) and, with probability ``tail_fraction``, a Pareto tail
    p(lambda) ~ lambda^-alpha above 1 (density exponent ``alpha``)."""
    lam = rng.uniform(0.2, 1.0, (n_matrices, 16))
    tail = rng.random(lam.shape) < tail_fraction
    lam[tail] = (1 - rng.random(tail.sum())) ** (-1 / (alpha - 1))
    U = np.linalg.qr(rng.standard_normal((n_matrices, 64, 16)))[0]
    V = np.linalg.qr(rng.standard_normal((n_matrices, 16, 16)))[0]
    W = U @ (np.sqrt(lam)[:, :, None] * np.swapaxes(V, -1, -2))
    return sp.gram_eigenvalues(W)


def mp_spectra(n_matrices, rng):
    """Gram eigenvalues of iid Gaussian 64 x 16 matrices, each divided by its median."""
    eig = sp.gram_eigenvalues(rng.standard_normal((n_matrices, 64, 16)))
    return eig / np.median(eig, axis=-1, keepdims=True)


def test_scan_reproduces_the_powerlaw_package():
    import powerlaw

    x = np.random.default_rng(0).pareto(2.5, 300) + 1
    for lowest, xmin_range in ((None, None), (np.median(x), (np.median(x), x.max()))):
        ours = tl.csn_scan(x, lowest)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = powerlaw.Fit(x, verbose=False, xmin=xmin_range, parameter_ranges={"alpha": [1, None]})
        assert ours.xmin == ref.xmin and ours.n_tail == np.sum(x >= ref.xmin)
        assert ours.alpha == pytest.approx(ref.alpha, rel=1e-12)
        assert ours.distance == pytest.approx(ref.D, rel=1e-12)
    with pytest.raises(ValueError, match="at least 3 positive"):
        tl.csn_scan([1.0, -2.0, 3.0])


@pytest.mark.parametrize("alpha,tail_fraction", [(2.5, 0.25), (3.0, 0.25), (4.0, 0.5)])
def test_known_exponent_is_recovered_within_its_error(alpha, tail_fraction):
    fits = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        eig = pareto_tailed_spectra(alpha, 16, rng, tail_fraction)   # 256 values, as pooled heads
        fits.append(tl.fit_power_law(eig, 50, rng, xmin_quantile=0.5))
    for fit in fits:
        assert abs(fit.alpha - alpha) < 2 * fit.alpha_err, fit.verdict()
    assert np.median([f.alpha_err for f in fits]) < 0.2 * alpha
    if alpha <= 3:   # steeper tails of 64-128 values are often not told from an exponential
        assert sum(f.supported for f in fits) >= 3, [f.verdict() for f in fits]
    eig = pareto_tailed_spectra(alpha, 16, np.random.default_rng(0), tail_fraction)
    a_ww, e_ww, _, _ = tl.weightwatcher_alpha(eig)
    assert abs(a_ww - alpha) < 3 * e_ww
    a_hill, e_hill, _, k = tl.hill(eig)
    assert k == 16 and abs(a_hill - alpha) < 3 * e_hill


def test_marchenko_pastur_spectra_are_refused():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fit = tl.fit_power_law(mp_spectra(16, rng).ravel(), 50, rng, xmin_quantile=0.5)
        assert not fit.supported, fit.verdict()
        # refused by the goodness of fit or because an exponential tail does as well
        assert fit.p_value < tl.P_GOF or not (fit.R_exponential > 0 and fit.p_exponential < tl.P_LR)


def test_bootstrap_is_deterministic_and_checks_its_size():
    x = np.random.default_rng(5).pareto(2.0, 100) + 1
    a = tl.fit_power_law(x, 20, np.random.default_rng(1))
    b = tl.fit_power_law(x, 20, np.random.default_rng(1))
    assert a == b
    with pytest.raises(ValueError, match="n_boot"):
        tl.fit_power_law(x, 1, np.random.default_rng(1))


def test_weightwatcher_alpha_is_that_of_its_layer_analysis():
    import weightwatcher

    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 16)) * (1 + rng.pareto(2.0, 16))
    layer = torch.nn.Linear(64, 16, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W.T))
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        df = weightwatcher.WeightWatcher(model=torch.nn.Sequential(layer)).analyze(plot=False)
    alpha, sigma, xmin, n_tail = tl.weightwatcher_alpha(sp.gram_eigenvalues(W))
    assert alpha == pytest.approx(float(df["alpha"].iloc[0]), rel=1e-6)   # float32 layer
    assert xmin == pytest.approx(float(df["xmin"].iloc[0]), rel=1e-6)
    assert tl.weightwatcher_alpha(sp.gram_eigenvalues(W) / 64)[0] == pytest.approx(alpha, rel=1e-9)


def test_hill_of_an_exact_pareto_sample():
    x = np.random.default_rng(2).pareto(3.0, 40_000) + 1              # density exponent 4
    alpha, err, xmin, k = tl.hill(x, 4000)
    assert k == 4000 and abs(alpha - 4) < 3 * err and xmin > 1
    with pytest.raises(ValueError, match="1 <= k"):
        tl.hill(x[:10], 10)


def test_common_value_test_tells_equal_from_different_exponents():
    err = np.full((4, 1), 0.1)
    same = analysis.common_value_test(np.array([[3.0], [3.05], [2.95], [3.1]]), err)
    diff = analysis.common_value_test(np.array([[2.0], [3.0], [4.0], [3.0]]), err)
    assert same[1][0] == 3 and same[2][0] > 0.3 and diff[2][0] < 1e-6


def test_a_tail_that_starts_at_the_search_floor_is_flagged():
    """127 bulk values below 1 and the 129 quantiles of a Pareto law (alpha = 2.5) from 1: the
    CSN x_min is the first tail value, which is the sample's median, the lowest candidate when
    x_min is searched from the median up (flagged) and not when it is searched from the bottom."""
    rng = np.random.default_rng(2)
    tail = (1 - (np.arange(129) + 0.5) / 129) ** (-1 / 1.5)
    x = np.concatenate([rng.uniform(0.2, 0.9, 127), tail])
    fit = tl.fit_power_law(x, 5, rng, compare=False, xmin_quantile=0.5)
    assert fit.xmin == tail[0] == np.quantile(x, 0.5, method="lower") and fit.xmin_at_floor
    assert "search floor" in fit.verdict() and fit.alpha == pytest.approx(2.5, abs=0.1)
    fit = tl.fit_power_law(x, 5, rng, compare=False, xmin_quantile=0.0)
    assert fit.xmin == tail[0] and not fit.xmin_at_floor
