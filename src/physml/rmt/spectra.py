"""Spectral analysis of weight matrices (docs/rmt.md).

Conventions
-----------
* A weight matrix W has shape ``(rows, cols)``; ``N = max(rows, cols)``, ``M = min(rows, cols)``
  and the aspect ratio is ``q = M / N <= 1``.  :func:`gram_eigenvalues` returns the M
  eigenvalues of the smaller Gram matrix (``W^T W`` or ``W W^T``; their non-zero eigenvalues
  coincide), ascending and **not** normalised.  Marchenko-Pastur analyses use
  ``x = lambda / N``, the eigenvalues of ``(1/N) W^T W``.
* Marchenko-Pastur (MP): for iid entries of variance sigma^2,
  ``rho(x) = sqrt((x+ - x)(x - x-)) / (2 pi sigma^2 q x)`` on ``x+- = sigma^2 (1 +- sqrt q)^2``.
  sigma^2 is fitted by matching the median (robust to outlying eigenvalues, :func:`fit_mp`).
  The CDF is computed by quadrature in the angle ``x = x- + (x+ - x-)(1 - cos theta)/2``, which
  removes both square-root edges (and the 1/sqrt(x) edge at q = 1); it scales as
  ``F(x; sigma^2) = F(x / sigma^2; 1)``.
* Goodness of fit: the Kolmogorov-Smirnov *distance* D between the spectrum and the fitted MP
  law, judged against the distribution of D over iid Gaussian matrices of the same shape put
  through the same fit (:func:`mp_null`).  A KS p-value on eigenvalues would be
  meaningless: eigenvalues repel and are far more regular than independent draws.
* Spacings: levels are unfolded with a smooth fit of the counting function (a Chebyshev
  polynomial of the ensemble-averaged staircase, or a known CDF); nearest-neighbour spacings
  are normalised to mean 1 and compared with the GOE Wigner surmise
  ``P(s) = (pi/2) s exp(-pi s^2/4)`` and with Poisson ``P(s) = exp(-s)``.
* The ratio of consecutive spacings ``r_n = min(s_n, s_{n+1}) / max(s_n, s_{n+1})`` needs no
  unfolding; ``<r>`` is 2 ln 2 - 1 = 0.3863 for Poisson levels and 0.5307 for large GOE
  matrices (Atas, Bogomolny, Giraud, Roux, PRL 110, 084101 (2013), numerical value).
* Tails of trained spectra are fitted in :mod:`physml.rmt.tails`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

POISSON_MEAN_R = 2 * np.log(2) - 1
GOE_MEAN_R = 0.5307

_MP_GRID = 4097  # quadrature points of the MP CDF in the angle variable


# --------------------------------------------------------------------------- eigenvalues

def gram_eigenvalues(W: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of the smaller Gram matrix of every matrix in ``W (..., rows, cols)``.

    Returns ``(..., min(rows, cols))`` in float64 (unnormalised: divide by ``max(rows, cols)``
    for the MP convention)."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim < 2:
        raise ValueError(f"need matrices (..., rows, cols), got shape {W.shape}")
    Wt = np.swapaxes(W, -1, -2)
    gram = Wt @ W if W.shape[-1] <= W.shape[-2] else W @ Wt
    return np.linalg.eigvalsh(gram)


def aspect(shape: tuple[int, int]) -> tuple[int, float]:
    """(N, q) of a matrix shape: N = max(rows, cols), q = min/max."""
    rows, cols = int(shape[-2]), int(shape[-1])
    return max(rows, cols), min(rows, cols) / max(rows, cols)


# --------------------------------------------------------------------------- Marchenko-Pastur

def mp_edges(sigma2: float, q: float) -> tuple[float, float]:
    """Support ``(x-, x+) = sigma^2 (1 -+ sqrt q)^2`` of the MP law."""
    if not 0 < q <= 1:
        raise ValueError(f"aspect ratio q must lie in (0, 1], got {q}")
    return sigma2 * (1 - np.sqrt(q)) ** 2, sigma2 * (1 + np.sqrt(q)) ** 2


def mp_pdf(x: np.ndarray, sigma2: float, q: float) -> np.ndarray:
    """MP density of the eigenvalues of (1/N) W^T W (zero outside the support)."""
    lo, hi = mp_edges(sigma2, q)
    x = np.asarray(x, dtype=float)
    inside = (x > lo) & (x < hi)
    out = np.zeros_like(x)
    xi = x[inside]
    out[inside] = np.sqrt((hi - xi) * (xi - lo)) / (2 * np.pi * sigma2 * q * xi)
    return out


@lru_cache(maxsize=64)
def _mp_unit_cdf_table(q: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)) of the sigma^2 = 1 MP law on a grid, by quadrature in the angle variable."""
    lo, hi = mp_edges(1.0, q)
    theta = np.linspace(0, np.pi, _MP_GRID)
    half = (hi - lo) / 2
    x = lo + half * (1 - np.cos(theta))
    with np.errstate(invalid="ignore", divide="ignore"):
        integrand = half ** 2 * np.sin(theta) ** 2 / (2 * np.pi * q * x)
    if lo == 0:  # q = 1: sin^2(theta)/x -> 4 / (hi - lo) * ... finite limit at theta = 0
        integrand[0] = half / (np.pi * q)
    cdf = np.concatenate([[0.0], np.cumsum((integrand[1:] + integrand[:-1]) / 2 * np.diff(theta))])
    return x, cdf / cdf[-1]


def mp_cdf(x: np.ndarray, sigma2: float, q: float) -> np.ndarray:
    """MP cumulative distribution function."""
    grid, cdf = _mp_unit_cdf_table(float(q))
    return np.interp(np.asarray(x, dtype=float) / sigma2, grid, cdf, left=0.0, right=1.0)


def ks_distance(sample: np.ndarray, cdf) -> float:
    """Kolmogorov-Smirnov distance sup |F_n - F| between a sample and a CDF callable."""
    x = np.sort(np.ravel(sample))
    n = len(x)
    F = cdf(x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - F), np.max(F - (i - 1) / n)))


def mp_unit_median(q: float) -> float:
    """Median of the sigma^2 = 1 MP law (inverse of the tabulated CDF)."""
    grid, cdf = _mp_unit_cdf_table(float(q))
    return float(np.interp(0.5, cdf, grid))


def fit_mp(x: np.ndarray, q: float) -> np.ndarray:
    """MP variance sigma^2 of the normalised eigenvalues ``x`` (last axis one spectrum) by
    matching the median: ``sigma^2 = median(x) / median of the unit MP law``.

    Robust to outliers: k eigenvalues outside the bulk move the median by about k/2 levels,
    whereas the mean (the moment estimator sum W_ij^2 / (N M)) is rescaled by the outliers'
    weight, which makes "an outlier appeared" look like "the bulk changed".  Returns one value
    per spectrum."""
    return np.median(np.asarray(x, dtype=float), axis=-1) / mp_unit_median(q)


def mp_distance(x: np.ndarray, q: float, exclude_top: int = 0) -> tuple[float, np.ndarray]:
    """Pooled KS distance of spectra ``x (n_spectra, M)`` from MP after each spectrum is divided
    by its own fitted sigma^2 (:func:`fit_mp`, all M eigenvalues); returns (D, sigma2 per
    spectrum).  With ``exclude_top = k`` only the bulk, the M - k smallest eigenvalues of each
    spectrum, is compared with the MP law conditioned on its lowest 1 - k/M of mass
    (``min(F / (1 - k/M), 1)``): a distance that ignores k outliers per matrix."""
    x = np.sort(np.atleast_2d(np.asarray(x, dtype=float)), axis=-1)
    M = x.shape[-1]
    if not 0 <= exclude_top < M - 1:
        raise ValueError(f"exclude_top must lie in [0, {M - 1}), got {exclude_top}")
    sigma2 = fit_mp(x, q)
    keep = 1 - exclude_top / M
    bulk = x[:, :M - exclude_top] / sigma2[:, None]
    return ks_distance(bulk, lambda t: np.minimum(mp_cdf(t, 1.0, q) / keep, 1.0)), sigma2


def mp_top(x: np.ndarray, q: float) -> float:
    """Largest eigenvalue over spectra ``x (n_spectra, M)``, each divided by its fitted sigma^2,
    in units of the MP upper edge (about 1 for iid matrices; an outlier makes it larger)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    return float(np.max(x.max(axis=-1) / fit_mp(x, q)) / mp_edges(1.0, q)[1])


@dataclass(frozen=True)
class MPNull:
    """:func:`mp_distance` and :func:`mp_top` of ``n_null`` draws of iid Gaussian matrices."""

    distance: np.ndarray
    top: np.ndarray


def mp_null(shape: tuple[int, int], n_spectra: int, n_null: int, rng: np.random.Generator,
            exclude_top: int = 0) -> MPNull:
    """The null of :func:`mp_test`: ``n_null`` draws of ``n_spectra`` iid N(0, 1) matrices of ``shape``."""
    N, q = aspect(shape)
    dist, top = np.empty(n_null), np.empty(n_null)
    for i in range(n_null):
        x = gram_eigenvalues(rng.standard_normal((n_spectra, *shape))) / N
        dist[i], top[i] = mp_distance(x, q, exclude_top)[0], mp_top(x, q)
    return MPNull(dist, top)


@dataclass(frozen=True)
class MPTest:
    """Fit of MP to spectra of one shape, judged against the iid Gaussian null."""

    distance: float        # pooled KS distance D of the spectra (or bulks) from their fitted MP laws
    p_value: float         # fraction of null D >= observed ((k + 1) / (n_null + 1))
    sigma2: np.ndarray     # fitted variance per spectrum
    null_median: float     # median D of the null
    top: float             # mp_top: largest eigenvalue in units of the fitted MP edge
    p_top: float           # fraction of null tops >= observed: small when an outlier appeared


def mp_test(eigs: np.ndarray, shape: tuple[int, int], null: MPNull, exclude_top: int = 0) -> MPTest:
    """MP test of unnormalised Gram eigenvalues ``eigs (n_spectra, M)`` of matrices of ``shape``
    against ``null`` (from :func:`mp_null` with the same n_spectra and ``exclude_top``): the
    distance of the spectra (or of their bulks) from MP, and their largest eigenvalue."""
    N, q = aspect(shape)
    x = np.asarray(eigs) / N
    D, sigma2 = mp_distance(x, q, exclude_top)
    top = mp_top(x, q)

    def p(observed, sample):
        return float((np.sum(sample >= observed) + 1) / (len(sample) + 1))

    return MPTest(D, p(D, null.distance), sigma2, float(np.median(null.distance)), top,
                  p(top, null.top))


# --------------------------------------------------------------------------- unfolding, spacings

def semicircle_cdf(x: np.ndarray, radius: float) -> np.ndarray:
    """CDF of the Wigner semicircle of the given radius."""
    t = np.clip(np.asarray(x, dtype=float) / radius, -1, 1)
    return 0.5 + (t * np.sqrt(1 - t * t) + np.arcsin(t)) / np.pi


def semicircle_pdf(x: np.ndarray, radius: float) -> np.ndarray:
    """Density of the Wigner semicircle of the given radius."""
    x = np.asarray(x, dtype=float)
    return 2 / (np.pi * radius ** 2) * np.sqrt(np.clip(radius ** 2 - x * x, 0, None))


def unfold_spectrum(eigs: np.ndarray, *, cdf=None, degree: int = 9, trim: float = 0.1) -> np.ndarray:
    """Unfolded levels of spectra ``eigs (n_spectra, n)`` (or one spectrum ``(n,)``).

    The smooth counting function is ``n * cdf(E)`` when ``cdf`` is given, else a Chebyshev
    polynomial of ``degree`` least-squares fitted to the ensemble-averaged staircase (all
    spectra pooled).  Levels in the outer ``trim`` fraction of each edge (where a smooth fit
    is poor) are dropped.  Returns ``(n_spectra, n_kept)``; the mean unfolded spacing is ~1."""
    eigs = np.sort(np.atleast_2d(np.asarray(eigs, dtype=float)), axis=-1)
    n_spec, n = eigs.shape
    if n < 3:
        raise ValueError(f"need at least 3 levels per spectrum to unfold, got {n}")
    if cdf is None:
        pooled = np.sort(eigs.ravel())
        staircase = (np.arange(1, pooled.size + 1) - 0.5) / n_spec
        smooth = np.polynomial.Chebyshev.fit(pooled, staircase, degree)
        unfolded = smooth(eigs)
    else:
        unfolded = n * cdf(eigs)
    lo, hi = int(np.floor(trim * n)), n - int(np.floor(trim * n))
    return unfolded[:, lo:hi]


def spacings(unfolded: np.ndarray) -> np.ndarray:
    """Nearest-neighbour spacings of unfolded spectra (last axis), pooled and normalised to mean 1."""
    s = np.diff(np.sort(np.atleast_2d(unfolded), axis=-1), axis=-1).ravel()
    return s / s.mean()


def spacing_ratios(eigs: np.ndarray) -> np.ndarray:
    """Ratios r_n = min(s_n, s_{n+1}) / max(s_n, s_{n+1}) of consecutive spacings (last axis),
    pooled over the leading axes.  No unfolding needed; two consecutive zero spacings (three
    exactly equal levels) leave r undefined and raise."""
    s = np.diff(np.sort(np.atleast_2d(eigs), axis=-1), axis=-1)
    a, b = s[..., :-1], s[..., 1:]
    if np.any((a == 0) & (b == 0)):
        raise ValueError("spacing ratio undefined: three exactly equal levels in a spectrum")
    return (np.minimum(a, b) / np.maximum(a, b)).ravel()


def wigner_surmise_pdf(s: np.ndarray) -> np.ndarray:
    """GOE Wigner surmise (pi/2) s exp(-pi s^2/4) (mean 1)."""
    s = np.asarray(s, dtype=float)
    return np.pi / 2 * s * np.exp(-np.pi * s * s / 4)


def wigner_surmise_cdf(s: np.ndarray) -> np.ndarray:
    """CDF of the GOE Wigner surmise, 1 - exp(-pi s^2/4)."""
    s = np.clip(np.asarray(s, dtype=float), 0, None)
    return 1 - np.exp(-np.pi * s * s / 4)


def poisson_spacing_pdf(s: np.ndarray) -> np.ndarray:
    """Spacing density exp(-s) of uncorrelated (Poisson) levels."""
    return np.exp(-np.clip(np.asarray(s, dtype=float), 0, None))


def poisson_spacing_cdf(s: np.ndarray) -> np.ndarray:
    """CDF 1 - exp(-s) of Poisson spacings."""
    return 1 - np.exp(-np.clip(np.asarray(s, dtype=float), 0, None))


def goe_matrices(n: int, size: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """``size`` GOE matrices n x n: off-diagonal variance scale^2 / n, diagonal 2 scale^2 / n
    (semicircle radius 2 scale)."""
    A = rng.standard_normal((size, n, n)) * scale / np.sqrt(n)
    return (A + np.swapaxes(A, -1, -2)) / np.sqrt(2)
