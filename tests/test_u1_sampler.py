"""The exact U(1) sampler against the exact torus results: plaquette, chi_t, P(Q), Wilson loops."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import ive

from physml.cli.main import main
from physml.io.artifacts import read_artifact
from physml.lattice import u1_exact as ex
from physml.observables.u1 import per_config


def _z(values, exact):
    values = np.asarray(values, dtype=float)
    return (values.mean() - exact) / (values.std(ddof=1) / math.sqrt(len(values)))


@pytest.mark.parametrize("beta,L,n", [(1.0, 4, 10000), (3.0, 8, 10000), (7.0, 16, 5000)])
def test_sampler_matches_exact_results(beta, L, n):
    theta, acc = ex.sample_exact(beta, L, n, seed=11)
    assert theta.shape == (n, 2, L, L) and theta.dtype == torch.float64
    assert torch.all(theta >= -math.pi) and torch.all(theta < math.pi)
    pc = per_config(theta)
    V = L * L
    assert abs(_z(pc["plaquette"], ex.plaquette(beta, L))) < 4
    assert abs(_z(pc["Q"] ** 2 / V, ex.chi_t(beta, L))) < 4
    for R in range(1, L // 2 + 1):
        assert abs(_z(pc["W"][:, R - 1], ex.wilson_loop(beta, L, R * R))) < 4
    # the whole P(Q): chi-square over the charges with >= 5 expected counts, the rest pooled
    q, p = ex.topological_charge_distribution(beta, L)
    expected = n * p
    keep = expected >= 5
    observed = np.array([np.count_nonzero(pc["Q"] == k) for k in q[keep]])
    observed = np.append(observed, n - observed.sum())
    expected = np.append(expected[keep], n - expected[keep].sum())
    if expected[-1] < 1e-9:
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    if L >= 8:   # last plaquette near uniform: acceptance E[exp(beta (cos p - 1))] = I_0(beta) e^-beta
        assert acc == pytest.approx(ive(0, beta), rel=0.1)


def test_links_are_gauge_randomised_and_holonomies_uniform():
    theta, _ = ex.sample_exact(3.0, 6, 4000, seed=12)
    assert stats.kstest(theta[:, 0, 2, 3].numpy(), "uniform", args=(-math.pi, 2 * math.pi)).pvalue > 1e-3
    poly = theta[:, 0].sum(dim=-2)            # Polyakov loop angles along x, one per y
    assert abs(torch.cos(poly).mean().item()) < 5 / math.sqrt(4000 * 6)


def test_sampler_is_deterministic_for_a_seed():
    a, _ = ex.sample_exact(2.0, 4, 50, seed=3)
    b, _ = ex.sample_exact(2.0, 4, 50, seed=3)
    c, _ = ex.sample_exact(2.0, 4, 50, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_exact_cli_writes_an_ensemble_that_measure_reads(tmp_path):
    ens, obs = tmp_path / "ens.nc", tmp_path / "obs.nc"
    assert main(["lattice", "exact", "u1", "--L", "4", "--beta", "2.0", "--n-configs", "256", "--seed", "1",
                 "--out", str(ens), "--no-progress"]) == 0
    ds = read_artifact(ens)
    assert ds.attrs["source"] == "exact" and ds.attrs["theory"] == "u1"
    assert ds["theta"].dims == ("config", "mu", "x", "y") and ds.sizes["config"] == 256
    assert main(["lattice", "measure", str(ens), "--out", str(obs)]) == 0
    o = read_artifact(obs)
    for name in ("plaquette", "top_charge", "chi_t", "W_1x1", "W_2x2", "tau_int_Q_rate", "chi_t_reliable"):
        assert name in o
    assert abs(float(o["plaquette"]) - ex.plaquette(2.0, 4)) < 4 * float(o["plaquette_err"])
    assert float(o["W_1x1"]) == pytest.approx(float(o["plaquette"]), rel=1e-12)
    assert int(o["chi_t_reliable"]) == 1
    assert o["top_charge_hist"].sum() == 256
