"""Exact U(1) results on the torus against independent computations."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from physml.lattice import u1_exact as ex
from physml.lattice.u1 import plaquette_angles, topological_charge, wrap_plaquette


def _wrap(t):
    return np.pi - np.remainder(np.pi - t, 2 * np.pi)


def _gauss(lo, hi, m):
    """Gauss-Legendre nodes and weights on [lo, hi] (arrays broadcast, nodes on a new last axis)."""
    x, w = np.polynomial.legendre.leggauss(m)
    lo, hi = np.asarray(lo)[..., None], np.asarray(hi)[..., None]
    return 0.5 * (hi - lo) * x + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def _plaquettes_2x2(a10, a11, b01, b10, b11):
    """The four plaquette angles of the 2x2 torus with the maximal tree a00 = a01 = b00 = 0
    (a = links along mu = 0, b along mu = 1, indices x y)."""
    return [b10, a10 - a11 - b10, b11 - b01, a11 + b01 - a10 - b11]


def brute_force_grid_2x2(beta, n=16):
    """<cos theta_P> and <Q^2>/V from a midpoint grid over the five gauge-fixed links."""
    g = -np.pi + (np.arange(n) + 0.5) * 2 * np.pi / n
    a10, a11, b01, b11 = np.meshgrid(g, g, g, g, indexing="ij")
    z = plaq = q2 = 0.0
    for b10 in g:
        p = _plaquettes_2x2(a10, a11, b01, b10, b11)
        w = np.exp(beta * (sum(np.cos(t) for t in p) - 4))
        q = sum(_wrap(t) for t in p) / (2 * np.pi)
        z += w.sum()
        plaq += (w * sum(np.cos(t) for t in p) / 4).sum()
        q2 += (w * np.rint(q) ** 2).sum()
    return plaq / z, q2 / z / 4


def brute_force_exact_2x2(beta, m=40):
    """Same integral, to rounding: the links a11 and b01 enter only through u = a10 - a11
    and v = b11 - b01 (unit Jacobian, periodic), so the plaquettes are (c, u - c, v, -u - v)
    with c = b10; Gauss-Legendre on pieces split wherever a plaquette crosses +-pi."""
    c, wc = _gauss([-np.pi, 0.0], [0.0, np.pi], m)
    c, wc = c.ravel(), wc.ravel()
    cu = np.where(c > 0, c - np.pi, c + np.pi)                      # u - c = +-pi
    lo = np.stack([np.full_like(c, -np.pi), np.minimum(0, cu), np.maximum(0, cu)], 1)
    hi = np.stack([np.minimum(0, cu), np.maximum(0, cu), np.full_like(c, np.pi)], 1)
    u, wu = _gauss(lo, hi, m)
    u, wu = u.reshape(len(c), -1), wu.reshape(len(c), -1)
    cv = np.where(u > 0, np.pi - u, -np.pi - u)                     # u + v = +-pi
    v, wv = _gauss(np.stack([np.full_like(u, -np.pi), cv], -1), np.stack([cv, np.full_like(u, np.pi)], -1), m)
    v, wv = v.reshape(*u.shape, -1), wv.reshape(*u.shape, -1)
    C, U = c[:, None, None], u[:, :, None]
    p = [C + 0 * v, U - C + 0 * v, v, -U - v]
    w = wc[:, None, None] * wu[:, :, None] * wv * np.exp(beta * (sum(np.cos(t) for t in p) - 4))
    q = sum(_wrap(t) for t in p) / (2 * np.pi)
    assert np.abs(q - np.rint(q)).max() < 1e-12
    return (w * sum(np.cos(t) for t in p) / 4).sum() / w.sum(), (w * np.rint(q) ** 2).sum() / w.sum() / 4


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.5])
def test_exact_functions_match_brute_force_integral_on_2x2(beta):
    plaq, chi = brute_force_exact_2x2(beta)
    assert ex.plaquette(beta, 2) == pytest.approx(plaq, rel=1e-10)
    assert ex.chi_t(beta, 2) == pytest.approx(chi, rel=1e-8)
    plaq_grid, chi_grid = brute_force_grid_2x2(beta)
    assert ex.plaquette(beta, 2) == pytest.approx(plaq_grid, rel=1e-9)   # smooth: spectral
    assert ex.chi_t(beta, 2) == pytest.approx(chi_grid, rel=0.02)       # Q jumps: O(1/n)


def test_infinite_volume_limits_against_quadrature():
    for beta in (0.7, 1.0, 3.0, 7.0, 11.0):
        weight = lambda p: np.exp(beta * (np.cos(p) - 1))  # noqa: E731
        z = integrate.quad(weight, -np.pi, np.pi)[0]
        cos_mean = integrate.quad(lambda p: np.cos(p) * weight(p), -np.pi, np.pi)[0] / z
        phi2 = integrate.quad(lambda p: p * p * weight(p), -np.pi, np.pi)[0] / z
        assert ex.plaquette_infinite(beta) == pytest.approx(cos_mean, rel=1e-10)
        assert ex.chi_t_infinite(beta) == pytest.approx(phi2 / (4 * np.pi ** 2), rel=1e-10)


@pytest.mark.parametrize("beta", [1.0, 3.0, 7.0, 11.0])
def test_finite_volume_tends_to_infinite_volume(beta):
    assert ex.plaquette(beta, 64) == pytest.approx(ex.plaquette_infinite(beta), rel=1e-12)
    assert ex.chi_t(beta, 64) == pytest.approx(ex.chi_t_infinite(beta), rel=1e-9)
    assert ex.wilson_loop(beta, 64, 9) == pytest.approx(ex.wilson_loop_infinite(beta, 9), rel=1e-9)
    # finite-volume effects shrink monotonically with L at large beta
    if beta >= 7:
        gaps = [abs(ex.chi_t(beta, L) - ex.chi_t_infinite(beta)) for L in (8, 16, 32)]
        assert gaps[0] > gaps[1] > gaps[2]


def test_reference_values_of_physics_md():
    assert ex.plaquette_infinite(1.0) == pytest.approx(0.446390, abs=1e-6)
    assert ex.chi_t_infinite(1.0) == pytest.approx(4.0636e-2, rel=1e-4)
    assert ex.plaquette_infinite(7.0) == pytest.approx(0.925532, abs=1e-6)
    assert ex.chi_t_infinite(7.0) == pytest.approx(3.9313e-3, rel=1e-4)
    assert ex.plaquette(7.0, 8) == pytest.approx(0.925700, abs=1e-6)
    assert ex.chi_t(7.0, 8) == pytest.approx(3.3924e-3, rel=1e-4)


@pytest.mark.parametrize("beta,L", [(1.0, 4), (3.0, 8), (7.0, 8), (7.0, 16)])
def test_charge_distribution_consistent_with_chi_t(beta, L):
    """P(Q) (Fourier series of Z(theta)) and chi_t (second derivative of ln Z) are two
    different evaluations of the character expansion."""
    q, p = ex.topological_charge_distribution(beta, L)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(p > -1e-14)
    assert np.allclose(p, p[::-1], atol=1e-14)
    assert (q ** 2 * p).sum() / L ** 2 == pytest.approx(ex.chi_t(beta, L), rel=1e-9)


def test_wilson_loop_of_one_plaquette_is_the_plaquette():
    for beta, L in ((1.0, 4), (5.0, 8)):
        assert ex.wilson_loop(beta, L, 1) == pytest.approx(ex.plaquette(beta, L), rel=1e-13)
        assert ex.wilson_loop(beta, L, 0) == pytest.approx(1.0)


def test_f_at_integers_is_the_bessel_function():
    n = np.arange(-6, 7, dtype=float)
    from scipy.special import iv
    assert np.allclose(ex._f_real(2.0, n) * iv(0, 2.0), iv(n, 2.0), rtol=1e-10, atol=1e-13)


def test_links_from_plaquettes_reproduce_the_plaquettes():
    rng = np.random.default_rng(0)
    L, n = 6, 20
    p, _ = ex.sample_plaquettes(2.0, L, n, rng)
    theta = torch.from_numpy(ex.links_from_plaquettes(p))
    assert torch.allclose(wrap_plaquette(plaquette_angles(theta)), torch.from_numpy(p), atol=1e-11)
    assert np.array_equal(topological_charge(theta).numpy(), np.rint(p.sum(axis=(1, 2)) / (2 * math.pi)))


@pytest.mark.parametrize("bad", [dict(beta=0.0, L=4), dict(beta=1.0, L=0)])
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError):
        ex.plaquette(**bad)


@pytest.mark.parametrize("beta", [0.5, 2.5])
def test_log_partition_matches_the_2x2_integral(beta):
    """Z = int over the 8 links of exp(beta sum_P cos theta_P): the maximal tree (3 links)
    integrates to (2 pi)^3, the other 5 on a midpoint grid (smooth and periodic: spectral)."""
    n = 16
    g = -np.pi + (np.arange(n) + 0.5) * 2 * np.pi / n
    a10, a11, b01, b11 = np.meshgrid(g, g, g, g, indexing="ij")
    z5 = sum(np.exp(beta * sum(np.cos(t) for t in _plaquettes_2x2(a10, a11, b01, b10, b11))).sum() for b10 in g)
    log_z = 3 * np.log(2 * np.pi) + np.log(z5 * (2 * np.pi / n) ** 5)
    assert ex.log_partition(beta, 2) == pytest.approx(log_z, rel=1e-10)
