"""U(1) action, force, charge, Wilson loops, gauge invariance and the tau_int(Q) estimator."""

import math

import numpy as np
import pytest
import torch
import xarray as xr

from physml.lattice.u1 import (U1, gauge_augment, gauge_transform, plaquette_angles,
                               random_gauge_transform, topological_charge, topological_charge_real,
                               wilson_loop_angles, wrap_angle, wrap_plaquette)
from physml.lattice.u1_exact import exact_ensemble
from physml.observables.u1 import measure_u1, per_config, q_change_rate


def _links(n=4, L=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return U1(1.0).random_start(n, L, gen)


def test_action_matches_explicit_sum():
    beta, L = 1.7, 4
    theta = _links(1, L)[0]
    total = 0.0
    for x in range(L):
        for y in range(L):
            p = (theta[0, x, y] + theta[1, (x + 1) % L, y]
                 - theta[0, x, (y + 1) % L] - theta[1, x, y])
            total += -beta * math.cos(float(p))
    assert U1(beta).action(theta[None])[0].item() == pytest.approx(total, rel=1e-12)


def test_force_equals_autograd():
    theory = U1(2.3)
    theta = (_links(3, 5) * 3).requires_grad_(True)   # also angles outside [-pi, pi)
    (grad,) = torch.autograd.grad(theory.action(theta).sum(), theta)
    assert torch.allclose(theory.force(theta.detach()), -grad, atol=1e-12)


def test_project_wraps_into_half_open_interval():
    t = torch.tensor([-math.pi, math.pi, 3 * math.pi + 0.1, -7.0, 0.3], dtype=torch.float64)
    w = wrap_angle(t)
    assert torch.all(w >= -math.pi) and torch.all(w < math.pi)
    assert torch.allclose(torch.cos(w), torch.cos(t)) and torch.allclose(torch.sin(w), torch.sin(t), atol=1e-12)
    assert wrap_plaquette(torch.tensor(-math.pi, dtype=torch.float64)).item() == pytest.approx(math.pi)


def test_charge_is_an_integer_on_every_configuration():
    theta = _links(200, 6, seed=1)                      # hot configurations: many charges
    q = topological_charge_real(theta)
    assert torch.allclose(q, torch.round(q), atol=1e-10)
    assert len(torch.unique(topological_charge(theta))) > 3
    assert plaquette_angles(theta).sum(dim=(-2, -1)).abs().max() < 1e-10   # unwrapped sum is 0


def test_cold_start_is_the_trivial_vacuum():
    theory = U1(3.0)
    theta = theory.cold_start(2, 4)
    assert torch.allclose(theory.action(theta), torch.full((2,), -3.0 * 16, dtype=torch.float64))
    assert torch.all(topological_charge(theta) == 0)


def test_wilson_loops_are_the_enclosed_plaquettes():
    theta = _links(3, 6, seed=2)
    p = plaquette_angles(theta)
    assert torch.allclose(wilson_loop_angles(theta, 1), p, atol=1e-12)
    enclosed = sum(torch.roll(p, (-i, -j), (-2, -1)) for i in range(2) for j in range(3))
    assert torch.allclose(wilson_loop_angles(theta, 2, 3), enclosed, atol=1e-12)


def test_random_gauge_transformation_leaves_observables_unchanged():
    theory = U1(2.0)
    theta = _links(8, 6, seed=3)
    other = random_gauge_transform(theta, torch.Generator().manual_seed(9))
    assert (other - theta).abs().max() > 1.0                       # the links did change
    assert torch.all(other >= -math.pi) and torch.all(other < math.pi)
    assert torch.allclose(theory.action(other), theory.action(theta), atol=1e-10)
    assert torch.equal(topological_charge(other), topological_charge(theta))
    for R in (1, 2, 3):
        assert torch.allclose(torch.cos(wilson_loop_angles(other, R)), torch.cos(wilson_loop_angles(theta, R)),
                              atol=1e-10)


def test_gauge_transform_convention():
    """theta_{x,mu} -> theta_{x,mu} + alpha_x - alpha_{x+mu}: a single alpha at x0 shifts
    the links leaving x0 by +alpha and those arriving at x0 by -alpha."""
    theta = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    alpha = torch.zeros(4, 4, dtype=torch.float64)
    alpha[1, 2] = 0.5
    out = gauge_transform(theta, alpha)[0]
    assert out[0, 1, 2] == pytest.approx(0.5) and out[1, 1, 2] == pytest.approx(0.5)
    assert out[0, 0, 2] == pytest.approx(-0.5) and out[1, 1, 1] == pytest.approx(-0.5)
    assert out.abs().sum() == pytest.approx(2.0)


def test_gauge_augment_keeps_every_gauge_invariant_measurement():
    ds = exact_ensemble(beta=2.0, L=4, n_configs=32, seed=4)
    aug = gauge_augment(ds, seed=5, copies=2)
    assert aug.sizes["config"] == 64 and aug["theta"].dims == ("config", "mu", "x", "y")
    assert not np.allclose(aug["theta"].values[:32], ds["theta"].values)
    base = per_config(torch.from_numpy(ds["theta"].values))
    new = per_config(torch.from_numpy(aug["theta"].values))
    for key in ("plaquette", "Q", "W"):
        assert np.allclose(new[key][:32], base[key]) and np.allclose(new[key][32:], base[key])
    assert np.allclose(aug["action"].values[32:], ds["action"].values)
    assert aug.attrs["beta"] == 2.0 and "gauge_augmented" in aug.attrs


def _telegraph(n_steps, a, b, rng):
    """Markov chain on Q in {-1, 0, 1}: 0 -> +-1 with probability a each, +-1 -> 0 with b.
    E[Q_t | Q_0 = 1] = (1 - b)^t, so tau_int(Q) = 1/2 + (1 - b)/b exactly; <Q^2> = 2a/(2a + b)."""
    q = np.zeros(n_steps, dtype=int)
    u = rng.random(n_steps)
    for t in range(1, n_steps):
        if q[t - 1] == 0:
            q[t] = 1 if u[t] < a else (-1 if u[t] < 2 * a else 0)
        else:
            q[t] = 0 if u[t] < b else q[t - 1]
    return q


@pytest.mark.parametrize("m", [1, 5])
def test_tau_from_rate_of_charge_changes_on_a_solvable_chain(m):
    a, b = 0.01, 0.02
    rng = np.random.default_rng(6)
    chains = [_telegraph(40000, a, b, rng)[::m] for _ in range(4)]
    Q = np.concatenate(chains)
    chain = np.repeat(np.arange(4), len(chains[0]))
    traj = np.tile(np.arange(len(chains[0])) * m, 4)
    rate = q_change_rate(Q, chain, traj, sigma2=2 * a / (2 * a + b))
    assert rate["tau"] == pytest.approx(0.5 + (1 - b) / b, rel=0.15)
    assert rate["lower_bound"] == 0 and rate["q_changes"] > 100


def test_frozen_charge_gives_lower_bound_and_unreliable_chi_t():
    """A run in which Q never moves (cold start at large beta) must not report chi_t as
    reliable, however small its Gamma-method error."""
    L, n = 8, 64
    theta = np.zeros((n, 2, L, L))
    ds = xr.Dataset({"theta": (("config", "mu", "x", "y"), theta),
                     "chain": ("config", np.repeat([0, 1], n // 2)),
                     "trajectory": ("config", np.tile(np.arange(1, n // 2 + 1) * 10, 2))},
                    attrs={"theory": "u1", "source": "hmc", "L": L, "beta": 1.0, "n_therm": 100})
    obs = measure_u1(ds)
    assert int(obs["chi_t_reliable"]) == 0
    assert int(obs["tau_int_Q_rate_is_lower_bound"]) == 1 and int(obs["q_changes"]) == 0
    assert float(obs["tau_int_Q_rate"]) > 100
    assert "never changed" in obs.attrs["chi_t_flag"]


def test_q_distribution_pvalue_accepts_exact_draws_and_rejects_a_frozen_sector():
    from physml.lattice import u1_exact
    from physml.observables.u1 import q_distribution_pvalue

    q, p = u1_exact.topological_charge_distribution(3.0, 8)
    p = np.clip(p, 0, None)   # the quadrature leaves -1e-17 in the far tails
    rng = np.random.default_rng(1)
    draws = rng.choice(q, size=2000, p=p / p.sum())
    assert q_distribution_pvalue(draws, q, p) > 1e-3
    assert q_distribution_pvalue(np.zeros(2000, dtype=int), q, p) < 1e-10
    wide = rng.choice(q, size=2000, p=p / p.sum()) * 2          # chi_t four times too large
    assert q_distribution_pvalue(wide, q, p) < 1e-10
