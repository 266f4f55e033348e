"""Dyson Brownian motion: equilibrium = the finite-n GOE Coulomb gas (a check that can fail),
width ~ sqrt(T) (by construction: a consistency check only)."""

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


def test_matrix_dbm_width_scales_as_sqrt_T_a_consistency_check_only(matrix_run):
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


@pytest.fixture(scope="module")
def reference_8():
    return dbm.GOEReference(8, 96, np.random.default_rng(11), n_reference=4000, n_pool=2000, n_null=100)


def test_coulomb_gas_check_accepts_the_matrix_process(reference_8):
    T = np.array([0.3, 1.0])
    dt = 0.02
    ev = dbm.simulate_matrix_dbm(8, T, dt=dt, n_steps=400, batch=24, snapshot_every=100,
                                 rng=np.random.default_rng(4))
    times = dbm.snapshot_steps(400, 100) * dt
    x = dbm.stationary_spectra(ev, T, times, 1.5, scale=1 / (1 - dt / 2), spacing=3)
    assert x.shape == (96, 8)                                  # times 2, 4, 6, 8: 2 and 6 kept
    c = dbm.coulomb_gas_check(x, reference_8)
    assert c["density_p"] > 0.01 and c["ratio_p"] > 0.01
    assert abs(c["ratio_mean"] - c["ratio_mean_goe"]) < 4 * c["ratio_mean_err"]


def test_coulomb_gas_check_fails_a_wrong_stationary_law(reference_8):
    """It can fail: the eigenvalue SDE with too coarse a step (dt n = 0.8: the repulsion floor
    is half the mean spacing, <r> falls by several errors), and levels divided by the wrong
    scale."""
    T = np.array([0.3, 1.0])
    ev = dbm.simulate_eigenvalue_dbm(8, T, dt=0.1, n_steps=80, batch=24, snapshot_every=20,
                                     rng=np.random.default_rng(5))
    times = dbm.snapshot_steps(80, 20) * 0.1
    c = dbm.coulomb_gas_check(dbm.stationary_spectra(ev, T, times, 1.5, spacing=3), reference_8)
    assert c["ratio_p"] < 0.02 and c["ratio_mean_goe"] - c["ratio_mean"] > 4 * c["ratio_mean_err"]
    good = dbm.simulate_matrix_dbm(8, T, dt=0.02, n_steps=400, batch=24, snapshot_every=100,
                                   rng=np.random.default_rng(4))
    wrong = dbm.stationary_spectra(good, T, dbm.snapshot_steps(400, 100) * 0.02, 1.5, scale=1.3, spacing=3)
    assert dbm.coulomb_gas_check(wrong, reference_8)["density_p"] < 0.02
