"""phi^4 action, force and HMC against exact results."""

import numpy as np
import pytest
import torch
from scipy import stats

from physml.lattice.phi4 import Phi4, free_propagator, momentum_propagator
from physml.mc.ensembles import hmc_ensemble
from physml.lattice.u1 import U1
from physml.mc.hmc import hmc_step, leapfrog, sample_hmc
from physml.observables.phi4 import _by_chain, measure_phi4
from physml.stats.gamma import gamma_error


def _fields(n=4, L=6, seed=0):
    return torch.randn((n, L, L), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_action_matches_explicit_sum():
    theory, phi = Phi4(0.3, 0.05), _fields(1, 4)[0]
    L, total = 4, 0.0
    for x in range(L):
        for y in range(L):
            hop = phi[x, y] * (phi[(x + 1) % L, y] + phi[x, (y + 1) % L])
            total += -2 * 0.3 * hop + (1 - 2 * 0.05) * phi[x, y] ** 2 + 0.05 * phi[x, y] ** 4
    assert torch.isclose(theory.action(phi[None])[0], total)


def test_force_equals_autograd():
    theory = Phi4(0.27, 0.022)
    phi = _fields().requires_grad_(True)
    (grad,) = torch.autograd.grad(theory.action(phi).sum(), phi)
    assert torch.allclose(theory.force(phi.detach()), -grad, atol=1e-12)


def test_z2_symmetry_of_action():
    theory, phi = Phi4(0.5, 0.022), _fields()
    assert torch.allclose(theory.action(phi), theory.action(-phi))


def test_leapfrog_is_reversible():
    theory, x = Phi4(0.5, 0.022), _fields(L=8) * 3
    p = torch.randn_like(x)
    x1, p1 = leapfrog(theory, x, p, 0.05, 20)
    x2, p2 = leapfrog(theory, x1, -p1, 0.05, 20)
    assert torch.allclose(x2, x, atol=1e-11) and torch.allclose(-p2, p, atol=1e-11)


def test_leapfrog_energy_error_scales_as_dt_squared():
    """At fixed trajectory length the energy violation of leapfrog is O(dt^2)."""
    theory = Phi4(0.27, 0.022)
    x = _fields(64, 8, seed=3)
    p = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    def mean_abs_dh(dt):
        n = round(1.0 / dt)
        x1, p1 = leapfrog(theory, x, p, dt, n)
        h0 = 0.5 * (p * p).sum((1, 2)) + theory.action(x)
        h1 = 0.5 * (p1 * p1).sum((1, 2)) + theory.action(x1)
        return (h1 - h0).abs().mean().item()
    ratio = mean_abs_dh(0.1) / mean_abs_dh(0.05)
    assert 3.5 < ratio < 4.5, ratio


def test_hmc_step_rejects_to_old_configuration():
    theory, x = Phi4(0.5, 0.022), _fields(32, 6) * 5
    gen = torch.Generator().manual_seed(1)
    x_new, _, acc, dh = hmc_step(theory, x, step_size=0.6, n_steps=3, generator=gen)
    assert (~acc).any()
    assert torch.equal(x_new[~acc], x[~acc])


@pytest.mark.parametrize("shape", [(4, 8, 8), (3, 6, 5), (2, 1, 4), (2, 3, 1)])
def test_c_kernel_trajectory_matches_torch_leapfrog(shape):
    """The fused C trajectory against the torch leapfrog, action and kinetic energy."""
    theory = Phi4(0.3, 0.05)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    p = torch.randn(shape, generator=gen, dtype=torch.float64)
    x_ref, p_ref = leapfrog(theory, x, p, 0.07, 9)
    d_kin_ref = 0.5 * ((p_ref * p_ref).sum((1, 2)) - (p * p).sum((1, 2)))
    x_before = x.clone()
    x_c, s_c, d_kin_c = theory.fused_trajectory(x, p.clone(), 0.07, 9)
    assert torch.equal(x, x_before)
    assert (x_c - x).abs().max() > 0.1  # the fields moved
    torch.testing.assert_close(x_c, x_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(s_c, theory.action(x_ref), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(d_kin_c, d_kin_ref, rtol=1e-12, atol=1e-10)


def test_c_kernel_and_torch_give_the_same_chains():
    theory = Phi4(0.27, 0.022)
    x0 = theory.cold_start(16, 8)
    runs = {engine: sample_hmc(theory, x0, n_meas=30, step_size=0.2, n_steps=5,
                               generator=torch.Generator().manual_seed(2), n_therm=10,
                               show_progress=False, engine=engine)
            for engine in ("native", "reference")}
    fast, ref = runs["native"], runs["reference"]
    assert (fast.engine, ref.engine) == ("native", "reference")
    assert torch.equal(fast.accepted, ref.accepted)
    assert 0.2 < ref.accepted.double().mean() < 0.99
    torch.testing.assert_close(fast.samples, ref.samples, rtol=0, atol=1e-10)
    torch.testing.assert_close(fast.delta_h, ref.delta_h, rtol=0, atol=1e-9)


def test_native_engine_demands_a_c_leapfrog():
    with pytest.raises(ValueError, match="C leapfrog"):
        sample_hmc(U1(2.0), U1(2.0).random_start(2, 4, torch.Generator().manual_seed(0)), n_meas=1,
                   step_size=0.1, n_steps=2, generator=torch.Generator(), engine="native")
    with pytest.raises(ValueError, match="C leapfrog"):
        sample_hmc(Phi4(0.2, 0.0), torch.zeros(2, 4, 4, dtype=torch.float32), n_meas=1,
                   step_size=0.1, n_steps=2, generator=torch.Generator(), engine="native")
    with pytest.raises(ValueError, match="engine must be one of"):
        sample_hmc(Phi4(0.2, 0.0), torch.zeros(2, 4, 4, dtype=torch.float64), n_meas=1,
                   step_size=0.1, n_steps=2, generator=torch.Generator(), engine="gpu")


def test_free_field_propagator_at_every_momentum():
    """lambda = 0, kappa = 0.2, 8x8: <|phi~(p)|^2>/V = 1/(2(1 - 2 kappa sum cos p)) within 3 sigma."""
    kappa, L = 0.2, 8
    ds = hmc_ensemble(Phi4(kappa, 0.0), L=L, n_configs=256 * 32, n_chains=256, n_therm=50,
                      meas_interval=2, step_size=0.1, n_steps=10, seed=11, show_progress=False)
    prop = momentum_propagator(torch.from_numpy(ds["phi"].values)).numpy()
    exact = free_propagator(kappa, L).numpy()
    pulls = np.empty((L, L))
    for i in range(L):
        for j in range(L):
            est = gamma_error(_by_chain(prop[:, i, j], ds["chain"].values))
            pulls[i, j] = (est.value - exact[i, j]) / est.error
    assert np.abs(pulls).max() < 3, pulls
    # The pulls of the L^2 / 2 + 2 independent momenta (p and -p coincide) are standard normal.
    independent = [pulls[i, j] for i in range(L) for j in range(L) if (i, j) <= ((-i) % L, (-j) % L)]
    assert stats.kstest(independent, "norm").pvalue > 0.01
    obs = measure_phi4(ds)
    chi2_exact = 1 / (2 * (1 - 4 * kappa))
    assert abs(float(obs["chi2"]) - chi2_exact) < 3 * float(obs["chi2_err"])


def test_symmetric_phase_has_zero_magnetisation():
    ds = hmc_ensemble(Phi4(0.21, 0.022), L=8, n_configs=64 * 32, n_chains=64, n_therm=100,
                      meas_interval=2, step_size=0.125, n_steps=8, seed=5, show_progress=False)
    obs = measure_phi4(ds)
    assert abs(float(obs["mag"])) < 3 * float(obs["mag_err"])
    assert ds.attrs["acceptance_rate"] > 0.8


def test_broken_phase_visits_both_sectors():
    """kappa = 0.5: |M| is far from zero, while M is consistent with zero thanks to the Z2 move
    (cold start: hot starts leave some chains in striped two-domain states, which the
    jackknife over chains sees)."""
    ds = hmc_ensemble(Phi4(0.5, 0.022), L=8, n_configs=64 * 32, n_chains=64, n_therm=100,
                      meas_interval=2, step_size=0.125, n_steps=8, seed=6, start="cold",
                      show_progress=False)
    obs = measure_phi4(ds)
    assert float(obs["abs_mag"]) > 4.0 and float(obs["abs_mag"]) > 50 * float(obs["abs_mag_err"])
    assert abs(float(obs["mag"])) < 3 * float(obs["mag_err"])
    phibar = obs["phibar"].values
    assert 0.4 < np.mean(phibar > 0) < 0.6


def test_errors_take_the_jackknife_over_chains_and_a_single_chain_its_gamma_error():
    ds = hmc_ensemble(Phi4(0.27, 0.022), L=8, n_configs=32 * 8, n_chains=32, n_therm=20,
                      meas_interval=1, step_size=0.125, n_steps=8, seed=2, show_progress=False)
    many = measure_phi4(ds)
    for name in ("abs_mag", "chi2", "binder", "action_density"):
        assert float(many[f"{name}_err"]) >= float(many[f"{name}_err_chains"]) > 0
    # for a plain mean the jackknife over chains is the standard error of the chain means
    abs_phibar = np.abs(ds["phi"].values.mean(axis=(1, 2)))
    chain_means = np.array([abs_phibar[ds["chain"].values == c].mean() for c in range(32)])
    assert float(many["abs_mag_err_chains"]) == pytest.approx(chain_means.std(ddof=1) / np.sqrt(32), rel=1e-9)
    one = measure_phi4(hmc_ensemble(Phi4(0.21, 0.022), L=8, n_configs=64, n_chains=1, n_therm=10,
                                    meas_interval=1, step_size=0.125, n_steps=8, seed=1,
                                    show_progress=False))
    assert float(one["abs_mag_err"]) == float(one["abs_mag_err_chains"]) > 0


def test_same_seed_same_ensemble():
    kwargs = dict(L=6, n_configs=32, n_chains=8, n_therm=5, meas_interval=1, step_size=0.1,
                  n_steps=5, seed=3, show_progress=False)
    a = hmc_ensemble(Phi4(0.27, 0.022), **kwargs)
    b = hmc_ensemble(Phi4(0.27, 0.022), **kwargs)
    assert np.array_equal(a["phi"].values, b["phi"].values)


def test_bad_chain_count_is_rejected():
    with pytest.raises(ValueError, match="multiple of n_chains"):
        hmc_ensemble(Phi4(0.2, 0.0), L=4, n_configs=10, n_chains=3, n_therm=0, meas_interval=1,
                     step_size=0.1, n_steps=1, seed=0, show_progress=False)


def test_free_propagator_rejects_unstable_kappa():
    with pytest.raises(ValueError, match="kappa"):
        free_propagator(0.3, 8)
