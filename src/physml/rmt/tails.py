"""Power-law tails of eigenvalue spectra: the Clauset-Shalizi-Newman fit, weightwatcher, Hill.

Conventions
-----------
* ``alpha`` is the exponent of the **density**, ``p(x) ~ x^-alpha`` for ``x >= x_min`` (the
  convention of the ``powerlaw`` package and of weightwatcher); the survival function then
  falls as ``x^-(alpha - 1)``.  The Hill estimator measures the survival exponent, so it is
  reported as ``1 + alpha_Hill`` and all three methods share one scale.
* Clauset, Shalizi, Newman, SIAM Review 51, 661 (2009) (CSN): for every candidate ``x_min``
  (each distinct value but the largest) the continuous maximum-likelihood exponent
  ``alpha = 1 + n_tail / sum ln(x_i / x_min)`` over the ``n_tail`` values ``>= x_min``; the
  ``x_min`` kept minimises the Kolmogorov-Smirnov distance
  ``D = max_j |j / n_tail - F(x_(j))|`` between the tail and the fitted law
  ``F(x) = 1 - (x / x_min)^(1 - alpha)`` (``j = 0..n_tail-1``: the empirical CDF of the
  ``powerlaw`` package).  :func:`csn_scan` does this scan in closed form, vectorised; it
  reproduces ``powerlaw.Fit(x, parameter_ranges={"alpha": [1, None]})`` exactly (tested).
  The explicit range matters: ``powerlaw`` 2.0 restricts alpha to (0, 3) by default and so
  returns at most 3 for steeper tails.
* Errors and goodness of fit by the bootstrap (CSN section 3.3 and 4.1): ``alpha_err`` is
  the standard deviation of alpha over nonparametric resamples, each refitted with its own
  x_min; the goodness-of-fit p-value is the fraction of semi-parametric synthetic samples
  (a Binomial(n, n_tail / n) number of values drawn from the fitted power law above x_min,
  the rest resampled from the data below it), refitted the same way, whose distance D is at
  least the observed one.
* Alternatives by the likelihood ratio of ``powerlaw`` (Vuong's normalised ratio R and its
  two-sided p-value; R > 0 favours the power law) on the same tail, against a lognormal and
  an exponential.
* A tail exponent is **supported** (:attr:`PowerLawFit.supported`) when the power law is not
  rejected (p-value >= ``P_GOF``), it beats an exponential tail significantly (R > 0 with
  p < ``P_LR``; an exponential is how a bounded spectrum such as Marchenko-Pastur's looks
  near its edge), no lognormal is significantly better (not R < 0 with p < ``P_LR``) and the
  tail holds at least ``MIN_TAIL`` values.  A power law over a handful of points near a hard
  edge passes the goodness-of-fit test easily; the exponential comparison is what refuses it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np

P_GOF = 0.1     # CSN: a power law with a bootstrap p-value below 0.1 is ruled out
P_LR = 0.1      # significance of a likelihood-ratio sign
MIN_TAIL = 10   # fewer tail values: no exponent is claimed


@dataclass(frozen=True)
class Scan:
    """Result of :func:`csn_scan`."""

    alpha: float     # density exponent at the chosen x_min
    xmin: float
    distance: float  # KS distance D of the tail from the fitted law
    n_tail: int      # values >= x_min


def csn_scan(x: np.ndarray, lowest: float | None = None) -> Scan:
    """CSN fit of a continuous power law to positive values ``x`` (x_min by the minimal KS
    distance, alpha by maximum likelihood), vectorised over every candidate x_min (every
    distinct value but the largest, or only those ``>= lowest``)."""
    x = np.sort(np.asarray(x, dtype=float).ravel())
    if x.size < 3 or x[0] <= 0:
        raise ValueError(f"a power-law fit needs at least 3 positive values, got {x.size} "
                         f"(minimum {x[0] if x.size else 'none'})")
    n = x.size
    cand = np.unique(x, return_index=True)[1][:-1]               # first index of each value
    if lowest is not None:
        cand = cand[x[cand] >= lowest]
        if cand.size == 0:
            raise ValueError(f"no candidate x_min >= {lowest} below the largest of {n} values")
    logx = np.log(x)
    suffix = np.cumsum(logx[::-1])[::-1]                          # sum_{j >= i} ln x_j
    n_t = n - cand
    alpha = 1 + n_t / (suffix[cand] - n_t * logx[cand])
    below = np.searchsorted(x, x, side="left")                    # values < x_j, with ties
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        emp = (below[None, :] - cand[:, None]) / n_t[:, None]
        survival = np.exp((1 - alpha[:, None]) * np.maximum(logx[None, :] - logx[cand][:, None], 0))
        gap = np.abs(emp - 1 + survival)
    gap[np.arange(n)[None, :] < cand[:, None]] = -np.inf           # below x_min: not in the tail
    D = np.where(np.isfinite(alpha), gap.max(axis=1), np.inf)
    best = int(np.argmin(D))
    return Scan(float(alpha[best]), float(x[cand[best]]), float(D[best]), int(n_t[best]))


def _draw_power_law(alpha: float, xmin: float, size: int, rng: np.random.Generator) -> np.ndarray:
    return xmin * (1 - rng.random(size)) ** (-1 / (alpha - 1))


def _scan_above(x: np.ndarray, xmin_quantile: float) -> Scan:
    return csn_scan(x, np.quantile(x, xmin_quantile, method="lower") if xmin_quantile > 0 else None)


def bootstrap(x: np.ndarray, scan: Scan, n_boot: int, rng: np.random.Generator,
              xmin_quantile: float = 0.0) -> tuple[float, float]:
    """(standard deviation of alpha over ``n_boot`` nonparametric resamples, semi-parametric
    goodness-of-fit p-value with ``n_boot`` synthetic samples), each sample refitted by
    :func:`csn_scan` with its own x_min (searched above the sample's ``xmin_quantile``)."""
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    x = np.asarray(x, dtype=float).ravel()
    n = x.size
    body = x[x < scan.xmin]
    alphas, exceed = np.empty(n_boot), 0
    for b in range(n_boot):
        alphas[b] = _scan_above(rng.choice(x, n), xmin_quantile).alpha
        n_pl = rng.binomial(n, scan.n_tail / n) if body.size else n
        synth = np.concatenate([_draw_power_law(scan.alpha, scan.xmin, n_pl, rng),
                                rng.choice(body, n - n_pl) if body.size else []])
        exceed += _scan_above(synth, xmin_quantile).distance >= scan.distance
    return float(alphas.std(ddof=1)), float(exceed / n_boot)


def likelihood_ratios(x: np.ndarray, xmin: float) -> dict[str, tuple[float, float]]:
    """``powerlaw``'s normalised log-likelihood ratio R and its p-value, power law against a
    lognormal and against an exponential, on the values ``>= xmin`` (nan where a fit fails)."""
    import powerlaw

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            fit = powerlaw.Fit(np.asarray(x, dtype=float).ravel(), xmin=xmin, verbose=False,
                               parameter_ranges={"alpha": [1, None]})
            for alt in ("lognormal", "exponential"):
                R, p = fit.distribution_compare("power_law", alt, normalized_ratio=True)
                out[alt] = (float(R), float(p))
    return out


@dataclass(frozen=True)
class PowerLawFit:
    """CSN fit of one sample with its bootstrap error, goodness of fit and likelihood ratios."""

    alpha: float
    alpha_err: float        # bootstrap standard deviation (x_min refitted in every resample)
    xmin: float
    n_tail: int
    n: int
    distance: float         # KS distance of the tail
    p_value: float          # semi-parametric bootstrap goodness-of-fit p-value
    R_lognormal: float      # normalised log-likelihood ratio, > 0 favours the power law
    p_lognormal: float
    R_exponential: float
    p_exponential: float
    xmin_at_floor: bool = False  # x_min is the lowest value the scan may pick (the tail is the
                                 # whole searched range: a tail found by the search floor)

    @property
    def supported(self) -> bool:
        """The module's rule for claiming an exponent (see the module docstring)."""
        return bool(self.p_value >= P_GOF and self.n_tail >= MIN_TAIL
                    and self.R_exponential > 0 and self.p_exponential < P_LR
                    and not (self.R_lognormal < 0 and self.p_lognormal < P_LR))

    def verdict(self) -> str:
        """One line: the exponent with its error, or why none is claimed."""
        head = (f"alpha = {self.alpha:.2f} +- {self.alpha_err:.2f} (x_min = {self.xmin:.3g}, "
                f"{self.n_tail}/{self.n} values, GoF p = {self.p_value:.2f}, "
                f"R vs exp {self.R_exponential:+.2f} (p {self.p_exponential:.2f}), "
                f"vs lognormal {self.R_lognormal:+.2f} (p {self.p_lognormal:.2f}))")
        floor = "; x_min at the search floor" if self.xmin_at_floor else ""
        return ("supported: " if self.supported else "not supported: ") + head + floor


def fit_power_law(x: np.ndarray, n_boot: int, rng: np.random.Generator, *, compare: bool = True,
                  xmin_quantile: float = 0.0) -> PowerLawFit:
    """CSN fit of ``x`` (:func:`csn_scan`, x_min searched among the values at or above the
    ``xmin_quantile`` quantile of the sample: 0 scans them all as CSN do, 0.5 looks for the
    tail in the upper half; a fit whose x_min is that floor is flagged), bootstrap error and p-value (:func:`bootstrap`, same rule) and,
    when ``compare``, the likelihood ratios (:func:`likelihood_ratios`; else nan)."""
    x = np.asarray(x, dtype=float).ravel()
    scan = _scan_above(x, xmin_quantile)
    err, p = bootstrap(x, scan, n_boot, rng, xmin_quantile)
    nan2 = (float("nan"), float("nan"))
    lr = likelihood_ratios(x, scan.xmin) if compare else {"lognormal": nan2, "exponential": nan2}
    floor = np.quantile(x, xmin_quantile, method="lower") if xmin_quantile > 0 else x.min()
    return PowerLawFit(scan.alpha, err, scan.xmin, scan.n_tail, x.size, scan.distance, p,
                       *lr["lognormal"], *lr["exponential"], xmin_at_floor=bool(scan.xmin <= floor))


def hill(x: np.ndarray, k: int | None = None) -> tuple[float, float, float, int]:
    """Hill estimate from the ``k`` largest values (default ``round(sqrt(n))``) as a density
    exponent: ``(1 + alpha_s, alpha_s / sqrt(k), x_(k+1), k)`` with
    ``alpha_s = 1 / mean ln(x_(i) / x_(k+1))`` the survival exponent."""
    x = np.sort(np.asarray(x, dtype=float).ravel())[::-1]
    k = int(round(np.sqrt(x.size))) if k is None else int(k)
    if not 1 <= k < x.size or x[k] <= 0:
        raise ValueError(f"the Hill estimate needs 1 <= k < n = {x.size} and x_(k+1) > 0, got k = {k}")
    a = 1.0 / np.mean(np.log(x[:k] / x[k]))
    return float(1 + a), float(a / np.sqrt(k)), float(x[k]), k


@functools.cache
def _watcher():
    """One WeightWatcher instance (importing the package takes seconds and prints a banner)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import weightwatcher

        logging.getLogger("weightwatcher").setLevel(logging.ERROR)
        return weightwatcher.WeightWatcher()


def weightwatcher_alpha(x: np.ndarray) -> tuple[float, float, float, int]:
    """weightwatcher's power-law fit of the eigenvalues ``x`` (``WeightWatcher.fit_powerlaw``,
    the routine its ``analyze`` applies to every layer's eigenvalues of W^T W, default
    settings, no plots): ``(alpha, sigma, x_min, n_tail)``, nan where the fit fails.  Below
    ~50 values weightwatcher switches to its own small-sample fit."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = _watcher().fit_powerlaw(np.sort(np.asarray(x, float).ravel()), plot=False, savefig=False)
    alpha, _, xmin, _, _, sigma, n_tail = res[:7]
    if not alpha > 0:
        return float("nan"), float("nan"), float("nan"), 0
    return float(alpha), float(sigma), float(xmin), int(n_tail)
