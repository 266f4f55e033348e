"""Exact results and an exact sampler for 2D U(1) on the periodic L x L torus.

Character expansion, V = L^2 plaquettes: with

    f(nu) = (1/2 pi) int_{-pi}^{pi} exp(beta cos phi) cos(nu phi) dphi,   f(n) = I_n(beta),

the partition function at vacuum angle theta is Z(theta) = sum_n f(n + theta/2pi)^V, and

- plaquette   <cos theta_P> = sum_n I_n^(V-1) (I_{n-1} + I_{n+1})/2 / sum_n I_n^V,
  infinite volume I_1(beta)/I_0(beta);
- chi_t = <Q^2>/V = -(1/V) d^2/dtheta^2 ln Z(theta) at theta = 0
        = -(1/(4 pi^2)) sum_n [(V-1) f(n)^(V-2) f'(n)^2 + f(n)^(V-1) f''(n)] / sum_n f(n)^V,
  infinite volume <phi^2>_beta / (4 pi^2);
- P(Q) = (1/2 pi) int dtheta e^{-i theta Q} Z(theta)/Z(0)  (Fourier series of Z(theta));
- Wilson loop of area A (an R x R loop has A = R^2): inserting it shifts the
  representation of the A enclosed plaquettes by one,
  W = sum_n I_n^(V-A) I_{n+1}^A / sum_n I_n^V, infinite volume (I_1/I_0)^A.

All Bessel functions are scaled by I_0 (``scipy.special.ive`` ratios), so nothing
overflows at large beta or V.  The derivatives f', f'' at integers are integrals of
an entire function over [0, pi], done with Gauss-Legendre quadrature (exact to
rounding at the node counts used).

Exact sampler: the V wrapped plaquette angles are independent von Mises(beta)
variables conditioned on their sum being 2 pi Q for an integer Q.  Draw V - 1 of
them, fix the last one as wrap(-sum), accept with probability
exp(beta (cos p_V - 1)); then rebuild links in a fixed gauge, apply a uniformly
random gauge transformation and uniformly random holonomies (neither changes any
plaquette, so neither carries action): the links are then distributed exactly
as exp(-S) times the Haar measure.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import numpy as np
import torch
import xarray as xr
from scipy.special import ive

from physml.lattice.u1 import TWO_PI, U1, gauge_transform, wrap_angle
from physml.progress import progress

_N_QUAD = 512


def _check(beta: float, L: int | None = None) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if L is not None and L < 2:
        raise ValueError(f"L must be >= 2, got {L}")


def _n_max(beta: float) -> int:
    """Representations |n| <= n_max carry all the weight: I_n/I_0 < 1e-40 beyond."""
    return int(40 + 4 * math.sqrt(beta) + beta)


@lru_cache(maxsize=None)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * math.pi * (x + 1), 0.5 * math.pi * w  # nodes and weights on [0, pi]


def _f_derivatives(beta: float, n: np.ndarray, order: int) -> np.ndarray:
    """(d/dnu)^order f(nu) at nu = n, divided by I_0(beta):
    (1/pi) int_0^pi (phi)^order e^{beta (cos phi - 1)} cos^(order)(nu phi) dphi / ive(0, beta)."""
    phi, w = _gauss_legendre(_N_QUAD)
    weight = w * np.exp(beta * (np.cos(phi) - 1)) * phi ** order
    arg = np.outer(n, phi)
    kernel = -np.sin(arg) if order == 1 else (-1) ** (order // 2) * np.cos(arg)
    return kernel @ weight / math.pi / ive(0, beta)


def _bessel_ratios(beta: float) -> tuple[np.ndarray, np.ndarray]:
    """n = -n_max .. n_max and I_n(beta)/I_0(beta)."""
    n = np.arange(-_n_max(beta), _n_max(beta) + 1)
    return n, ive(n, beta) / ive(0, beta)


def _powers(r: np.ndarray, k: int) -> np.ndarray:
    """r**k for ratios 0 <= r <= 1 (k may be large; underflow to 0 is intended)."""
    with np.errstate(under="ignore"):
        return np.power(r, k)


def plaquette(beta: float, L: int) -> float:
    """Exact <cos theta_P> on the periodic L x L torus."""
    _check(beta, L)
    V = L * L
    n, r = _bessel_ratios(beta)
    r_prime = 0.5 * (np.roll(r, 1) + np.roll(r, -1))  # (I_{n-1} + I_{n+1}) / 2; edges carry ~0
    return float(np.sum(_powers(r, V - 1) * r_prime) / np.sum(_powers(r, V)))


def log_partition(beta: float, L: int) -> float:
    """ln Z on the periodic L x L torus with the measure prod over the 2 V links of dtheta
    (each over [-pi, pi)): Z = int exp(beta sum_P cos theta_P) = (2 pi)^(2V) sum_n I_n(beta)^V
    (integrating each link, which two plaquettes share with opposite signs, sets every
    plaquette's representation equal); the normalisation of the model's density log q."""
    _check(beta, L)
    V = L * L
    _, r = _bessel_ratios(beta)
    return float(2 * V * math.log(2 * math.pi) + V * (beta + math.log(ive(0, beta))) + math.log(np.sum(_powers(r, V))))


def plaquette_infinite(beta: float) -> float:
    """Infinite-volume plaquette I_1(beta) / I_0(beta)."""
    _check(beta)
    return float(ive(1, beta) / ive(0, beta))


def phi2_mean(beta: float) -> float:
    """<phi^2> of the von Mises density e^{beta cos phi} on (-pi, pi]."""
    _check(beta)
    return float(-_f_derivatives(beta, np.array([0.0]), 2)[0])


def chi_t(beta: float, L: int) -> float:
    """Exact topological susceptibility <Q^2>/V on the periodic L x L torus."""
    _check(beta, L)
    V = L * L
    n, r = _bessel_ratios(beta)
    d1 = _f_derivatives(beta, n.astype(float), 1)
    d2 = _f_derivatives(beta, n.astype(float), 2)
    z = np.sum(_powers(r, V))
    z2 = np.sum((V - 1) * _powers(r, V - 2) * d1 * d1 + _powers(r, V - 1) * d2)
    return float(-z2 / z / (4 * math.pi ** 2))


def chi_t_infinite(beta: float) -> float:
    """Infinite-volume chi_t = <phi^2>_beta / (4 pi^2)."""
    return phi2_mean(beta) / (4 * math.pi ** 2)


def wilson_loop(beta: float, L: int, area: int) -> float:
    """Exact <W> of a contractible loop enclosing ``area`` plaquettes (R x R: area R^2)
    on the periodic L x L torus."""
    _check(beta, L)
    V = L * L
    if not 0 <= area <= V:
        raise ValueError(f"area must lie in [0, {V}], got {area}")
    n, r = _bessel_ratios(beta)
    r_up = np.roll(r, -1)  # I_{n+1}
    r_up[-1] = 0.0
    return float(np.sum(_powers(r, V - area) * _powers(r_up, area)) / np.sum(_powers(r, V)))


def wilson_loop_infinite(beta: float, area: int) -> float:
    """Infinite-volume area law (I_1/I_0)^area."""
    return plaquette_infinite(beta) ** area


def _f_real(beta: float, nu: np.ndarray) -> np.ndarray:
    """f(nu) / I_0(beta) for real nu."""
    return _f_derivatives(beta, nu, 0)


def topological_charge_distribution(beta: float, L: int, q_max: int | None = None,
                                    n_theta: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact P(Q) for Q = -q_max .. q_max (default: 6 standard deviations and 3 more) on
    the L x L torus: the Fourier coefficients of Z(theta)/Z(0), evaluated with the
    periodic trapezoid rule over ``n_theta`` angles (default max(64, 4 q_max)); Z(theta)
    is smooth and 2 pi periodic, so the rule converges exponentially (its error is the
    aliased weight P(Q +- n_theta)).  Returns (Q, P)."""
    _check(beta, L)
    V = L * L
    if q_max is None:
        q_max = int(math.ceil(6 * math.sqrt(V * chi_t(beta, L)) + 3))
    n_theta = max(64, 4 * q_max) if n_theta is None else n_theta
    if n_theta <= 2 * q_max:
        raise ValueError(f"n_theta ({n_theta}) must exceed 2 q_max ({2 * q_max})")
    nb = _n_max(beta)
    theta = TWO_PI * np.arange(n_theta) / n_theta
    nu = (np.arange(-nb, nb + 1)[:, None] + theta[None, :] / TWO_PI).ravel()
    fv = _f_real(beta, nu).reshape(2 * nb + 1, n_theta)
    z_theta = np.sum(np.sign(fv) ** V * _powers(np.abs(fv), V), axis=0)
    q = np.arange(-q_max, q_max + 1)
    coeff = (np.cos(np.outer(q, theta)) @ z_theta) / n_theta
    return q, coeff / z_theta[0]


# ---------------------------------------------------------------------------------------
# exact sampler


def links_from_plaquettes(p: np.ndarray) -> np.ndarray:
    """Link angles (wrapped into [-pi, pi)) whose plaquette angles equal ``p`` modulo 2 pi.

    ``p``: ``(n, L, L)`` wrapped plaquette angles whose sum is 2 pi Q with Q an integer.
    Gauge: theta_{x,1} = 0 except on the row y = 0, where theta_{(x,0),1} = c(x) with
    c(x+1) - c(x) = sum_y q(x, y); theta_{(x,0),0} = 0 and theta_0 along each column
    follows from theta_P(x, y) = q(x, y) by a cumulative sum.  Here q = p except at the
    plaquette (0, 0), where 2 pi Q is subtracted so that sum q = 0, as it must be for
    unwrapped plaquettes on the torus.
    """
    n, L, _ = p.shape
    total = p.sum(axis=(1, 2))
    Q = np.rint(total / TWO_PI)
    q = p.copy()
    q[:, 0, 0] -= TWO_PI * Q
    col = q.sum(axis=2)                                             # sum_y q(x, y), shape (n, L)
    c = np.concatenate([np.zeros((n, 1)), np.cumsum(col, axis=1)[:, :-1]], axis=1)   # c(x)
    theta1 = np.zeros((n, L, L))
    theta1[:, :, 0] = c
    # theta_P(x, y) = t0(x, y) - t0(x, y+1) + t1(x+1, y) - t1(x, y)  =>
    # t0(x, y+1) = t0(x, y) + t1(x+1, y) - t1(x, y) - q(x, y), t0(x, 0) = 0
    step = np.roll(theta1, -1, axis=1) - theta1 - q
    theta0 = np.concatenate([np.zeros((n, L, 1)), np.cumsum(step, axis=2)[:, :, :-1]], axis=2)
    return np.stack([theta0, theta1], axis=1)


def sample_plaquettes(beta: float, L: int, n: int, rng: np.random.Generator,
                      batch: int | None = None) -> tuple[np.ndarray, float]:
    """``n`` exact draws of the V = L^2 wrapped plaquette angles, shape ``(n, L, L)``, and
    the acceptance rate of the accept step."""
    _check(beta, L)
    V = L * L
    rate = max(float(ive(0, beta)), 1e-3)   # acceptance when p_V is uniform (large V)
    accepted, n_acc, n_prop = [], 0, 0
    while n_acc < n:
        m = batch or int(1.2 * (n - n_acc) / rate) + 16
        m = min(m, max(16, 2 ** 22 // V))     # at most ~32 MB of proposals at a time
        p = rng.vonmises(0.0, beta, size=(m, V - 1))  # in [-pi, pi]
        last = -np.sum(p, axis=1)
        last = math.pi - np.remainder(math.pi - last, TWO_PI)  # wrap into (-pi, pi]
        keep = rng.random(m) < np.exp(beta * (np.cos(last) - 1))
        accepted.append(np.concatenate([p[keep], last[keep, None]], axis=1))
        n_acc += int(keep.sum())
        n_prop += m
    out = np.concatenate(accepted)[:n].reshape(n, L, L)
    return out, n_acc / n_prop


def sample_exact(beta: float, L: int, n: int, seed: int, chunk: int = 4096,
                 show_progress: bool = False) -> tuple[torch.Tensor, float]:
    """``n`` independent exact U(1) configurations ``(n, 2, L, L)`` (float64, links in
    [-pi, pi)) and the acceptance rate of the plaquette accept step; drawn ``chunk``
    configurations at a time to bound the memory of the intermediate arrays."""
    rng = np.random.default_rng(seed)
    out = torch.empty((n, 2, L, L), dtype=torch.float64)
    accepted = 0.0
    for start in progress(range(0, n, chunk), desc=f"exact u1 L={L}", enabled=show_progress):
        m = min(chunk, n - start)
        p, acc = sample_plaquettes(beta, L, m, rng)
        accepted += acc * m
        theta = torch.from_numpy(links_from_plaquettes(p))
        # random gauge transformation and holonomies: uniform over the links with these plaquettes
        alpha = torch.from_numpy(rng.uniform(-math.pi, math.pi, size=(m, L, L)))
        hol = torch.from_numpy(rng.uniform(-math.pi, math.pi, size=(m, 2)))
        theta[:, 0, 0, :] += hol[:, 0:1]   # mu = 0 links crossing the line x = 1/2: Polyakov loops along x
        theta[:, 1, :, 0] += hol[:, 1:2]   # mu = 1 links crossing the line y = 1/2: Polyakov loops along y
        out[start:start + m] = gauge_transform(wrap_angle(theta), alpha)
    return out, accepted / n


def exact_ensemble(*, beta: float, L: int, n_configs: int, seed: int,
                   show_progress: bool = False) -> xr.Dataset:
    """An ensemble artifact of independent exact configurations (``source`` = ``exact``),
    laid out like :func:`physml.mc.ensembles.hmc_ensemble`'s: ``theta`` over
    ``(config, mu, x, y)``, ``chain`` (all 0: one chain of independent draws),
    ``trajectory`` (the draw index) and ``action``."""
    theory = U1(beta)
    t0 = time.perf_counter()
    theta, acc = sample_exact(beta, L, n_configs, seed, show_progress=show_progress)
    wall = time.perf_counter() - t0
    return xr.Dataset(
        {
            "theta": (("config", "mu", "x", "y"), theta.numpy()),
            "chain": ("config", np.zeros(n_configs, dtype=np.int64)),
            "trajectory": ("config", np.arange(1, n_configs + 1)),
            "action": ("config", theory.action(theta).numpy(),
                       {"long_name": "action S of the configuration"}),
        },
        coords={"config": np.arange(n_configs)},
        attrs={"theory": "u1", "source": "exact", "L": L, "beta": float(beta),
               "acceptance_rate": float(acc), "wall_time_s": wall,
               "sampler": "independent von Mises plaquettes + constraint accept step"},
    )
