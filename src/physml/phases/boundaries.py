"""Semi-analytic phase boundaries of the (1/sigma_W, T) plane.

**Spin-glass line.**  For z ~ N(0, sigma^2) the density of s = tanh(z) is

    p(s) = exp(-artanh(s)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma (1 - s^2)),

and log p(s) = (1 - 1/(2 sigma^2)) s^2 + O(s^4): s = 0 is a maximum (unimodal density)
for sigma^2 < 1/2 and a minimum (bimodal, features pushed towards +-1) for sigma^2 > 1/2.
:func:`critical_tanh_variance` finds the transition numerically by counting the modes of
p(s); the tests check it lands on 1/2.  Identifying sigma^2 with sigma_W^2 gives the paper's
line 1/sigma_W = sqrt(2).  The network's own pre-activations u = W a have variance
sigma_W^2 <a^2> (<a^2> the second moment of the first-layer features a = f(M x)), so they
cross 1/2 at 1/sigma_W = sqrt(2 <a^2>) (:func:`preactivation_line`; <a^2> about 0.34 for
tanh features of x ~ N(0, I_3), M ~ N(0, 1/3)).

**Ferro/para lines.**  Two criteria (:data:`CRITERIA`).  Ours: per run and snapshot time, the drift-versus-noise ratio of the
extreme eigenvalues of W W^T (:func:`physml.phases.cells.drift_noise_ratio`: gradient drift
over the noise-induced Ito + Coulomb drift of the Dyson-Brownian-motion Langevin equation;
O(1/T) at fixed W) says whether the gradient still beats the noise.  A run satisfies the
criterion when the ratio is >= 1 for both the largest and the smallest eigenvalue; the line
T_c(sigma_W, time) is drawn where the fraction of runs satisfying it falls through
``fraction`` (68%) as T grows, interpolated in log T (:func:`ferro_para_line`).  The
authors': the inequality of their analysis notebook between the drift and the noise of the
extreme eigenvalues of X = W W^T (:func:`authors_criterion_holds`), with its own
normalisations (a factor 1/sigma_W^2 on the noise, 1/(sqrt(r) (n2 - 1)) on the drift) and
its line drawn the same way.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import integrate, special


def tanh_log_density(s: np.ndarray, sigma: float) -> np.ndarray:
    """log p(s) of s = tanh(z), z ~ N(0, sigma^2), for |s| < 1."""
    s = np.asarray(s, dtype=np.float64)
    return (-np.arctanh(s) ** 2 / (2 * sigma ** 2) - np.log1p(-s * s)
            - np.log(np.sqrt(2 * np.pi) * sigma))


def tanh_density(s: np.ndarray, sigma: float) -> np.ndarray:
    """Density p(s) of s = tanh(z), z ~ N(0, sigma^2)."""
    return np.exp(tanh_log_density(s, sigma))


def count_modes(sigma: float, n_grid: int = 200001) -> int:
    """Number of local maxima of p(s) on a uniform grid of (-1, 1) (log density, float64)."""
    s = np.linspace(-1, 1, n_grid + 2)[1:-1]
    with np.errstate(over="ignore"):
        logp = tanh_log_density(s, sigma)
    inner = (logp[1:-1] > logp[:-2]) & (logp[1:-1] >= logp[2:])
    return int(inner.sum())


def critical_tanh_variance(lo: float = 0.1, hi: float = 2.0, tol: float = 1e-5) -> float:
    """Variance sigma^2 at which the density of tanh(z) turns from one mode to two (bisection)."""
    if count_modes(np.sqrt(lo)) != 1 or count_modes(np.sqrt(hi)) != 2:
        raise ValueError(f"bracket [{lo}, {hi}] does not contain the unimodal/bimodal transition")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if count_modes(np.sqrt(mid)) == 1:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def feature_second_moment(activation: str = "tanh", n_in: int = 3) -> float:
    """<a^2> = E f(m . x)^2 for x ~ N(0, I_n_in) and a first-layer row m ~ N(0, I / n_in).

    m . x ~ N(0, r) given r = |m|^2 ~ chi^2_{n_in} / n_in; integrated by quadrature."""
    if activation == "identity":
        return 1.0
    if activation == "relu":
        return 0.5
    if activation != "tanh":
        raise ValueError(f"unknown activation {activation!r}")
    z, w = special.roots_hermitenorm(80)
    w = w / w.sum()

    def given_r(r):
        return float(np.sum(w * np.tanh(np.sqrt(r) * z) ** 2))

    k = n_in / 2
    density = lambda r: (n_in ** k * r ** (k - 1) * np.exp(-n_in * r / 2)  # noqa: E731
                         / (2 ** k * special.gamma(k)))
    value, _ = integrate.quad(lambda r: density(r) * given_r(r), 0, np.inf, limit=200)
    return value


def spin_glass_line(critical_variance: float | None = None) -> float:
    """1/sigma_W of the paper's spin-glass line sigma_W^2 = sigma_c^2 (= 1/2): sqrt(2)."""
    var = critical_tanh_variance() if critical_variance is None else critical_variance
    return float(1 / np.sqrt(var))


def preactivation_line(feature_m2: float, critical_variance: float | None = None) -> float:
    """1/sigma_W where the pre-activation variance sigma_W^2 <a^2> crosses sigma_c^2."""
    var = critical_tanh_variance() if critical_variance is None else critical_variance
    return float(np.sqrt(feature_m2 / var))


CRITERIA = ("physml", "authors")  # the ferro/para criteria: ours and the authors'


def authors_criterion_holds(grid: xr.Dataset) -> xr.DataArray:
    """Whether each run satisfies the authors' ferro/para criterion at its cell's T = lr / B:
    K_t / (sqrt(r) (n2 - 1)) >= T V_t / (4 sigma_W^2), r = n1 / n2
    (:func:`physml.phases.cells.authors_criterion`; as in their notebook's ``limit_matrix_new``)."""
    n1, n2 = grid.attrs["arch_n1"], grid.attrs["arch_n2"]
    lhs = grid["authors_drift"] / (np.sqrt(n1 / n2) * (n2 - 1))
    return lhs >= grid["T"] * grid["authors_noise"] / (4 * grid["sigma_w"] ** 2)


def criterion_fraction(grid: xr.Dataset, criterion: str = "physml") -> xr.DataArray:
    """Fraction of runs satisfying the ferro/para ``criterion``, dims (T, sigma_w, time):
    ``physml``, the gradient drift beats the noise-induced drift for both extreme
    eigenvalues of W W^T; ``authors``, :func:`authors_criterion_holds`."""
    if criterion == "authors":
        return authors_criterion_holds(grid).mean("run").rename("authors_criterion_fraction").assign_attrs(
            long_name="fraction of runs satisfying the authors' ferro/para criterion")
    if criterion != "physml":
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    ratio = np.minimum(grid["drift_noise_max"], grid["drift_noise_min"])
    return (ratio >= 1).mean("run").rename("drift_criterion_fraction").assign_attrs(
        long_name="fraction of runs whose eigenvalue drift beats the noise")


def crossing(x: np.ndarray, f: np.ndarray, level: float) -> float:
    """First x (log-interpolated, x ascending) where f falls from >= level to < level; NaN if none."""
    for k in range(len(x) - 1):
        if f[k] >= level > f[k + 1]:
            w = (f[k] - level) / (f[k] - f[k + 1])
            return float(np.exp((1 - w) * np.log(x[k]) + w * np.log(x[k + 1])))
    return float("nan")


def ferro_para_line(grid: xr.Dataset, fraction: float = 0.68, criterion: str = "physml") -> xr.DataArray:
    """T_c(sigma_w, time): where the fraction of runs satisfying the ferro/para ``criterion``
    (:func:`criterion_fraction`) falls through ``fraction`` as T grows (NaN where it does not
    cross inside the grid)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    frac = criterion_fraction(grid, criterion).transpose("T", "sigma_w", "time")
    T = frac["T"].values
    line = np.array([[crossing(T, frac.values[:, j, t], fraction) for t in range(frac.sizes["time"])]
                     for j in range(frac.sizes["sigma_w"])])
    return xr.DataArray(line, dims=("sigma_w", "time"),
                        coords={"sigma_w": frac["sigma_w"], "time": frac["time"]},
                        name="T_ferro_para" if criterion == "physml" else "T_ferro_para_authors",
                        attrs={"long_name": f"T above which fewer than {fraction:.0%} of runs "
                                            f"satisfy the {criterion} ferro/para criterion"})
