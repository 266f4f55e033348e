"""Dyson Brownian motion: equilibrium = GOE Coulomb gas, width ~ sqrt(T)."""

import numpy as np
import pytest

from physml.rmt import dbm
from physml.rmt import spectra as sp

T = np.array([0.1, 0.2, 0.5, 1.0])   # one decade
N = 16


@pytest.fixture(scope="module")
def matrix_run():
    dt = 0.02
    ev = dbm.simulate_matrix_dbm(N, T, dt=dt, n_steps=300, batch=64, snapshot_every=20,
                                 rng=np.random.default_rng(1))
    times = dbm.snapshot_steps(300, 20) * dt
    return ev[:, times > 2.0], dt          # equilibrium: relaxation time 1/gamma = 1


def test_matrix_dbm_mean_square_is_exact(matrix_run):
    ev, dt = matrix_run
    width, err = dbm.rms_width(ev)          # errors from the spread over independent systems
    exact = np.sqrt(dbm.stationary_mean_square(N, T, dt))
    assert np.all(np.abs(width - exact) < 4 * err)


def test_matrix_dbm_width_scales_as_sqrt_T(matrix_run):
    # slope 0.5 is exact by construction: H / sqrt(T) follows a T-independent process (the
    # simulator is scale invariant), so this only checks that the noise scales as sqrt(T) and
    # the error bookkeeping; the evidence is the absolute T (1 + 1/n) check above
    ev, _ = matrix_run
    slope, err = dbm.width_exponent(T, *dbm.rms_width(ev))
    assert abs(slope - 0.5) < 3 * err and err < 0.005


def test_matrix_dbm_equilibrium_is_the_goe(matrix_run):
    """Semicircle (via the KS distance of the pooled, T-rescaled levels, judged against direct GOE
    samples of the same size) and GOE level statistics (<r>)."""
    ev, dt = matrix_run
    rng = np.random.default_rng(2)
    scale = np.sqrt(T / (1 - dt / 2))[:, None, None, None]
    x = (ev / scale).reshape(-1, N)[::5]               # thin: snapshots of one system are correlated
    radius = 2.0
    D = sp.ks_distance(x, lambda t: sp.semicircle_cdf(t, radius))
    null = [sp.ks_distance(np.linalg.eigvalsh(sp.goe_matrices(N, len(x), rng)),
                           lambda t: sp.semicircle_cdf(t, radius)) for _ in range(100)]
    assert D < np.quantile(null, 0.99)
    r_dbm = sp.spacing_ratios(x[:, 2:-2]).mean()
    r_goe = sp.spacing_ratios(np.linalg.eigvalsh(sp.goe_matrices(N, 4000, rng))[:, 2:-2]).mean()
    assert abs(r_dbm - r_goe) < 0.01
    assert abs(r_goe - sp.GOE_MEAN_R) < 0.01


def test_eigenvalue_sde_matches_the_matrix_process_in_equilibrium():
    ev = dbm.simulate_eigenvalue_dbm(N, T, dt=0.002, n_steps=2500, batch=32, snapshot_every=250,
                                     rng=np.random.default_rng(3))[:, 4:]
    width, err = dbm.rms_width(ev)
    np.testing.assert_allclose(width ** 2, dbm.stationary_mean_square(N, T), rtol=0.03)  # the evidence
    # slope 0.5 by the SDE's scale invariance (lambda / sqrt(T) is T-independent, initial
    # levels and step floor included): a consistency check only
    slope, serr = dbm.width_exponent(T, width, err)
    assert abs(slope - 0.5) < max(3 * serr, 0.01)
    assert np.all(np.diff(ev, axis=-1) > 0)          # ordered levels: repulsion keeps them apart


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="gamma dt"):
        dbm.simulate_matrix_dbm(4, [1.0], dt=2.0, n_steps=1, batch=1, snapshot_every=1,
                                rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive"):
        dbm.simulate_eigenvalue_dbm(4, [0.0], dt=0.01, n_steps=1, batch=1, snapshot_every=1,
                                    rng=np.random.default_rng(0))
