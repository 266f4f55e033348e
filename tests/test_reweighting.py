"""Reweighting in beta: weights, Kish ESS, weighted errors, and the exact U(1) result."""

import math

import numpy as np
import pytest
import torch

from physml.lattice import u1_exact
from physml.lattice.u1 import U1
from physml.mc.ensembles import independent_ensemble
from physml.observables.u1 import measure_u1
from physml.stats.reweighting import MIN_ESS, kish_ess, reweighting_weights, weighted_estimate


def test_weights_ess_and_weighted_errors():
    rng = np.random.default_rng(0)
    v = rng.normal(size=4000)
    w = np.full(4000, 1 / 4000)
    e = weighted_estimate(v, w)
    assert e.value == pytest.approx(v.mean())
    assert e.error == pytest.approx(v.std() / math.sqrt(4000))
    assert kish_ess(w) == pytest.approx(4000)
    assert kish_ess(np.array([1.0, 1e-12, 1e-12])) == pytest.approx(1.0)
    w = reweighting_weights(np.array([0.0, 1.0, 2.0]), 1e4)     # no overflow
    assert w.sum() == pytest.approx(1) and w[0] == pytest.approx(1)
    with pytest.raises(ValueError, match="finite"):
        reweighting_weights(np.array([np.nan]), 1.0)
    with pytest.raises(ValueError, match="shape"):
        weighted_estimate(v, w)


def _exact(beta, L, n, seed):
    ds = u1_exact.exact_ensemble(beta=beta, L=L, n_configs=n, seed=seed)
    return torch.from_numpy(ds["theta"].values)


def test_reweighting_to_beta0_plus_half_reproduces_the_exact_plaquette_and_chi_t():
    """beta_0 -> beta_0 + 0.5 works where the ESS allows it: ESS / N ~ exp(-0.25 var(S_0))
    is about 1/4 at L = 4 (var(S_0) ~ 5.6) and about 1e-10 at L = 16 (the DAG flags it)."""
    beta0, beta, L = 1.0, 1.5, 4
    theta = _exact(beta0, L, 8192, seed=3)
    action0 = U1(1.0).action(theta).numpy()
    weights = reweighting_weights(action0, beta - beta0)
    ds = independent_ensemble(U1(beta), theta, "dm_reweighted", ess=kish_ess(weights))
    ds["weight"] = ("config", weights)
    obs = measure_u1(ds)
    assert 1000 < float(obs["ess"]) < 4000
    for name, exact in (("plaquette", u1_exact.plaquette(beta, L)), ("chi_t", u1_exact.chi_t(beta, L))):
        assert abs(float(obs[name]) - exact) < 3 * float(obs[f"{name}_err"]), name
    assert int(obs["chi_t_reliable"]) == 1
    # far from beta_0 the ESS collapses and everything is flagged
    far = reweighting_weights(action0, 6.0)
    ds["weight"] = ("config", far)
    obs = measure_u1(ds)
    assert float(obs["ess"]) < MIN_ESS and int(obs["chi_t_reliable"]) == 0
    assert "ESS" in obs["chi_t_reliable"].attrs["reason"]
