"""The model's density and the exact corrections built on it, against exact results: the
free field, whose exact score makes every deterministic sampler a linear map with a
Gaussian output computed here by hand, mode by mode; a brute-force Jacobian; the
free-field partition function."""

import math

import numpy as np
import pytest
import torch

from physml.diffusion.density import prior_log_density, wrapped_normal_log_density
from physml.diffusion.free_field import FreeFieldScore
from physml.diffusion.model import build_score_model
from physml.diffusion.samplers import Walk, make_sampler
from physml.lattice.phi4 import Phi4, free_propagator, momentum_propagator
from physml.mc.importance import (ess_fraction, imh_ensemble, independence_chain, log_partition,
                                  log_weights, weighted_ensemble)
from physml.observables.phi4 import measure_phi4

L, KAPPA = 4, 0.2


def _gain(name: str, sigmas: list[float], C: torch.Tensor) -> torch.Tensor:
    """The factor by which a sampler multiplies each momentum of the prior draw when the
    denoiser is the free field's, D = C / (C + sigma^2) x: the step formulas written out
    for one scalar per mode (Heun; DPM-Solver++(2M)), then the final step D(.; sigma_min)."""
    g = torch.ones_like(C)
    d_prev = h_prev = None
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):
        c0, c1 = C / (C + s0 ** 2), C / (C + s1 ** 2)
        if name == "ode":
            slope0 = (1 - c0) / s0
            pred = 1 + (s1 - s0) * slope0
            g = g * (1 + 0.5 * (s1 - s0) * (slope0 + (1 - c1) * pred / s1))
        else:
            h = math.log(s0 / s1)
            d = c0 * g
            d_eff = d if d_prev is None else (1 + h / (2 * h_prev)) * d - h / (2 * h_prev) * d_prev
            g = (s1 / s0) * g + (1 - s1 / s0) * d_eff
            d_prev, h_prev = d, h
    return g * C / (C + sigmas[-1] ** 2)


@pytest.mark.parametrize("name,n_steps", [("ode", 6), ("ode2m", 12)])
def test_density_of_the_free_field_map_is_its_exact_gaussian(name, n_steps):
    """log q per configuration equals the Gaussian log-density of the linear map's output
    to 1e-8, though the few steps leave that Gaussian far from the free field's."""
    exact = FreeFieldScore(KAPPA, sigma_min=2e-3, sigma_max=40.0)
    sampler = make_sampler(name, n_steps=n_steps)
    res = sampler.sample(exact, 32, (L, L), seed=3, show_progress=False, density="jacobian")
    C = free_propagator(KAPPA, L)
    var = (40.0 * _gain(name, sampler.noise_grid(exact), C)) ** 2       # per momentum
    power = momentum_propagator(res.x)                                   # |x~(p)|^2 / V
    expected = -0.5 * (power / var + torch.log(2 * math.pi * var)).flatten(1).sum(1)
    torch.testing.assert_close(res.log_q, expected, rtol=0, atol=1e-8)
    assert (var / C).min() < 0.9 or (var / C).max() > 1.1   # the map is visibly not exact


def test_log_det_agrees_with_a_brute_force_jacobian():
    """A small random network, every component of its L = 4 map differentiated by reverse
    mode: the same log-determinant to 1e-9."""
    torch.manual_seed(0)
    law = {"mu": 0.4, "width": 0.2, "volume": 16}
    model = build_score_model({"channels": [4, 8], "embed_dim": 8, "groups": 2, "field_stats": True},
                              {"recipe": "edm", "sigma_data": 0.5, "zero_mode": law}, 2e-3, 5.0).double()
    sampler = make_sampler("ode2m", n_steps=5)
    res = sampler.sample(model, 3, (L, L), seed=1, show_progress=False, density="jacobian")
    sigmas = sampler.noise_grid(model)

    def phi(z):
        walk = Walk(None)
        return sampler.final_step(model, sampler._diffuse(model, z[None], sigmas, walk), sigmas[-1], walk)[0]

    # the prior draws, recovered from the sampler's own noise streams
    from physml.diffusion.samplers import Noise, prior
    z = prior(model, sigmas[0], Noise(1, 0, 3, "cpu"), (3, L, L), torch.float64, "cpu")
    for i in range(3):
        jac = torch.autograd.functional.jacobian(phi, z[i]).reshape(L * L, L * L)
        log_q = prior_log_density(model, z[i:i + 1], sigmas[0]) - torch.linalg.slogdet(jac)[1]
        assert float(res.log_q[i]) == pytest.approx(float(log_q), abs=1e-9)
        torch.testing.assert_close(res.x[i], phi(z[i]), rtol=0, atol=1e-12)


def test_zero_mode_prior_density_integrates_its_rank_one_term():
    """The prior N(0, s^2 I + v 1 1^T) against the density of the explicit covariance."""
    model = build_score_model({"channels": [4, 8], "embed_dim": 8, "groups": 2},
                              {"recipe": "edm", "sigma_data": 0.5,
                               "zero_mode": {"mu": 0.7, "width": 0.3, "volume": 16}}, 2e-3, 5.0).double()
    z = torch.randn(5, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 5
    cov = 25.0 * torch.eye(16, dtype=torch.float64) + (0.49 + 0.09) * torch.ones(16, 16, dtype=torch.float64)
    expected = torch.distributions.MultivariateNormal(torch.zeros(16, dtype=torch.float64), cov).log_prob(
        z.reshape(5, 16))
    torch.testing.assert_close(prior_log_density(model, z, 5.0), expected, rtol=0, atol=1e-10)
    theta = torch.linspace(-math.pi, math.pi, 7, dtype=torch.float64)
    images = sum(torch.exp(-(theta + 2 * math.pi * k) ** 2 / 2) for k in range(-6, 7)) / math.sqrt(2 * math.pi)
    torch.testing.assert_close(wrapped_normal_log_density(theta, 1.0), torch.log(images), rtol=0, atol=1e-12)


def _free_run(n_steps, kappa_model=KAPPA, n=1024, seed=5):
    exact = FreeFieldScore(kappa_model, sigma_min=2e-3, sigma_max=40.0)
    res = make_sampler("ode2m", n_steps=n_steps).sample(exact, n, (L, L), seed=seed, show_progress=False,
                                                        density="jacobian")
    action = Phi4(KAPPA, 0.0).action(res.x)
    return res, log_weights(action.numpy(), res.log_q.numpy())


def test_ess_approaches_one_with_the_steps_and_a_wrong_score_lowers_it():
    ess = [ess_fraction(_free_run(n, n=256)[1]) for n in (4, 8, 32)]
    assert ess[0] < ess[1] < ess[2] and ess[0] < 0.9 and ess[2] > 0.99, ess
    wrong = ess_fraction(_free_run(32, kappa_model=0.14, n=256)[1])   # score of another kappa
    assert wrong < 0.9 * ess[2], wrong
    chain_acc = independence_chain(_free_run(32, kappa_model=0.14, n=256)[1], torch.Generator().manual_seed(0))[1]
    assert chain_acc[1:].mean() < independence_chain(_free_run(32, n=256)[1],
                                                     torch.Generator().manual_seed(0))[1][1:].mean()


def test_reweighted_free_field_matches_its_exact_propagator_and_free_energy():
    """A coarse sampler (ode2m, 6 steps: ESS/N well below 1) reweighted: chi_2 and every
    momentum of the propagator within 2.5 sigma of exact, G(r) finite, and log Z =
    (1/2) sum_p log(2 pi C(p)) within 3 errors; the independence Metropolis chain too."""
    res, log_w = _free_run(6, n=2048, seed=1)
    assert 0.05 < ess_fraction(log_w) < 0.95
    C = free_propagator(KAPPA, L)
    log_z, err = log_partition(log_w)
    assert abs(log_z - 0.5 * float(torch.log(2 * math.pi * C).sum())) < 3 * err
    theory = Phi4(KAPPA, 0.0)
    rw = weighted_ensemble(theory, res.x, log_w)
    w = rw["weight"].values
    power = momentum_propagator(res.x).flatten(1).numpy()
    for p in range(L * L):   # weighted jackknife per momentum, written out
        mean = np.sum(w * power[:, p])
        loo = (mean - w * power[:, p]) / (1 - w)
        err_p = math.sqrt((len(w) - 1) / len(w) * np.square(loo - loo.mean()).sum())
        assert abs(mean - float(C.flatten()[p])) < 2.5 * err_p, p
    for ds in (rw, imh_ensemble(theory, res.x, log_w, torch.Generator().manual_seed(1))):
        obs = measure_phi4(ds)
        chi2 = 1 / (2 * (1 - 4 * KAPPA))
        assert abs(float(obs["chi2"]) - chi2) < 2.5 * float(obs["chi2_err"]), ds.attrs["source"]
        assert np.all(np.isfinite(obs["G"].values)) and "flag" not in obs.attrs


def test_non_finite_log_q_is_left_out_and_flagged():
    res, log_w = _free_run(6, n=64)
    log_w[[3, 10]] = np.nan
    for ds in (weighted_ensemble(Phi4(KAPPA, 0.0), res.x, log_w),
               imh_ensemble(Phi4(KAPPA, 0.0), res.x, log_w, torch.Generator().manual_seed(1))):
        assert ds.attrs["n_nonfinite"] == 2
        obs = measure_phi4(ds)
        assert "2 proposals left out" in obs.attrs["flag"] and np.isfinite(float(obs["chi2"]))
    assert weighted_ensemble(Phi4(KAPPA, 0.0), res.x, log_w)["weight"].values[[3, 10]].tolist() == [0, 0]


def test_stochastic_sampler_has_no_jacobian_density():
    exact = FreeFieldScore(KAPPA)
    for name, params in (("em", {}), ("ode", {"churn": 1.0}), ("ald", {})):
        with pytest.raises(ValueError, match="--density jacobian needs a deterministic sampler"):
            make_sampler(name, **params).sample(exact, 4, (L, L), seed=1, show_progress=False,
                                                density="jacobian")
    with pytest.raises(ValueError, match="--anneal-steps"):
        make_sampler("ode2m").sample(exact, 4, (L, L), seed=1, show_progress=False, density="jacobian",
                                     anneal_steps=2)


def test_path_weights_of_euler_maruyama_are_exact_on_the_free_field():
    """The path route (no Jacobian): with 384 steps the weights give chi_2 within 2.5 sigma
    and log Z within 3 errors of exact; with 24 steps they degenerate (ESS/N < 0.01),
    the price of weighing whole paths."""
    exact = FreeFieldScore(KAPPA, sigma_min=2e-3, sigma_max=40.0)

    def run(n_steps):
        res = make_sampler("em", n_steps=n_steps).sample(exact, 1024, (L, L), seed=2, show_progress=False,
                                                         density="path", batch_size=1024)
        return res, log_weights(Phi4(KAPPA, 0.0).action(res.x).numpy(), res.log_q.numpy())

    assert ess_fraction(run(24)[1]) < 0.01
    res, log_w = run(384)
    assert ess_fraction(log_w) > 0.05
    rw = measure_phi4(weighted_ensemble(Phi4(KAPPA, 0.0), res.x, log_w))
    assert abs(float(rw["chi2"]) - 1 / (2 * (1 - 4 * KAPPA))) < 2.5 * float(rw["chi2_err"])
    log_z, err = log_partition(log_w)
    assert abs(log_z - 0.5 * float(torch.log(2 * math.pi * free_propagator(KAPPA, L)).sum())) < 3 * err
