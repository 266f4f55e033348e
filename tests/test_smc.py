"""Sequential Monte Carlo in beta: exactness against the torus, ladder, resampling, CLI."""

import math

import numpy as np
import pytest
import torch

from physml.cli.main import main
from physml.io.artifacts import read_artifact, write_artifact
from physml.lattice import u1_exact as ex
from physml.lattice.u1 import U1
from physml.mc.smc import (conditional_ess_fraction, distinct_fraction, next_beta, run_replicas,
                           sample_smc, systematic_resample)
from physml.observables.u1 import measure_u1, replica_pvalue


@pytest.fixture(scope="module")
def exact_start(tmp_path_factory):
    """An exact ensemble at beta_0 = 1 on the 4 x 4 torus, as an artifact."""
    path = tmp_path_factory.mktemp("smc") / "exact.nc"
    write_artifact(ex.exact_ensemble(beta=1.0, L=4, n_configs=1024, seed=7), path, config={}, rule="exact_u1",
                   seed=7)
    return path


@pytest.fixture(scope="module")
def smc_run(exact_start, tmp_path_factory):
    out = tmp_path_factory.mktemp("smc") / "smc.nc"
    assert main(["lattice", "smc", str(exact_start), "--beta", "3", "--replicas", "8", "--n-particles", "128",
                 "--n-moves", "2", "--step-size", "0.1", "--n-steps", "10", "--seed", "5",
                 "--no-progress", "--out", str(out)]) == 0
    return out


def test_smc_from_exact_samples_reproduces_the_torus(smc_run):
    """beta 1 -> 3 on the 4 x 4 torus: plaquette, chi_t and P(Q) within 3 sigma of the
    replica errors (and a sane error: not zero, below 25%; chi_t here is 0.0066, V chi_t = 0.1)."""
    ds = read_artifact(smc_run)
    assert ds.attrs["source"] == "smc" and ds.attrs["input_source"] == "exact"
    obs = measure_u1(ds)
    for name, exact in (("plaquette", ex.plaquette(3.0, 4)), ("chi_t", ex.chi_t(3.0, 4))):
        value, err = float(obs[name]), float(obs[f"{name}_err"])
        assert 0 < err < 0.25 * exact
        assert abs(value - exact) < 3 * err, (name, value, err, exact)
    assert float(obs["P_Q_pvalue"]) > 0.001
    assert int(obs["chi_t_reliable"]) == 1 and int(obs["replicas"]) == 8
    assert float(obs["cost_per_independent_Q"]) > 0


def test_ladder_increases_to_the_target_and_records_resampling(smc_run):
    ds = read_artifact(smc_run)
    for r in range(ds.sizes["replica_id"]):
        ladder = ds["smc_beta"].values[r]
        ladder = ladder[np.isfinite(ladder)]
        assert ladder[0] == 1.0 and ladder[-1] == 3.0 and np.all(np.diff(ladder) > 0)
        assert len(ladder) - 1 == int(ds["smc_n_steps"][r])
        ess = ds["smc_ess"].values[r][: len(ladder) - 1]
        # every step but the last (which may jump to the target) loses 10% of the ESS or less
        assert np.all(ess > 0.3)
    events = ds["resample_ess"].values
    assert len(events) > 0 and np.all(events < 0.5)
    assert "ESS" in ds.attrs["resampling_reasons"]
    np.testing.assert_allclose(ds["weight"].groupby(ds["replica"]).sum().values, 1.0)


def test_next_beta_hits_the_conditional_ess_fraction():
    gen = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(500, generator=gen, dtype=torch.float64) * 0.3, 0)
    unit_action = -torch.rand(500, generator=gen, dtype=torch.float64) * 50
    beta = next_beta(weights, unit_action, 1.0, 10.0, 0.9)
    assert 1.0 < beta < 10.0
    assert conditional_ess_fraction(weights, -(beta - 1.0) * unit_action) == pytest.approx(0.9, abs=1e-9)
    assert next_beta(weights, unit_action, 1.0, 1.0001, 0.9) == 1.0001   # the whole step fits


def test_systematic_resampling_preserves_the_weighted_mean():
    gen = torch.Generator().manual_seed(1)
    n = 64
    weights = torch.softmax(torch.randn(n, generator=gen, dtype=torch.float64) * 2, 0)
    values = torch.randn(n, generator=gen, dtype=torch.float64)
    target = float((weights * values).sum())
    means = []
    for _ in range(4000):
        index = systematic_resample(weights, gen)
        counts = torch.bincount(index, minlength=n).double()
        # each particle is copied floor(N W) or floor(N W) + 1 times
        assert torch.all(counts >= torch.floor(n * weights) - 1e-9)
        assert torch.all(counts <= torch.floor(n * weights) + 1 + 1e-9)
        means.append(float(values[index].mean()))
    assert abs(np.mean(means) - target) < 4 * np.std(means) / math.sqrt(len(means)) + 1e-12


def test_same_seed_same_particles_and_distinct_replicas():
    pool, _ = ex.sample_exact(1.0, 4, 64, seed=2)
    options = dict(replicas=2, n_particles=32, seed=9, n_moves=1, step_size=0.1, n_steps=5)
    a, index = run_replicas(U1, pool, 1.0, 2.0, **options)
    b, _ = run_replicas(U1, pool, 1.0, 2.0, **options)
    assert torch.equal(a[0].x, b[0].x) and torch.equal(a[1].weights, b[1].weights)
    assert len(set(index[0].tolist()) & set(index[1].tolist())) == 0
    assert not torch.equal(a[0].x, a[1].x)


def test_replica_pvalue_rejects_a_wrong_distribution():
    q, p = ex.topological_charge_distribution(3.0, 4)
    p = np.clip(p, 0, None)
    rng = np.random.default_rng(3)
    good = rng.choice(q, size=2048, p=p / p.sum())
    groups = np.repeat(np.arange(16), 128)
    assert replica_pvalue(good, np.ones(2048), groups, q, p) > 0.01
    # every replica frozen at Q = 0: no covariance to test with, NaN (never a pass)
    assert math.isnan(replica_pvalue(np.zeros(2048, dtype=int), np.ones(2048), groups, q, p))
    shifted = np.where(rng.random(2048) < 0.1, 1, good)   # too many Q = 1
    assert replica_pvalue(shifted, np.ones(2048), groups, q, p) < 1e-3
    q1, p1 = ex.topological_charge_distribution(1.0, 4)   # the charges of another beta
    wrong = rng.choice(q1, size=2048, p=np.clip(p1, 0, None) / np.clip(p1, 0, None).sum())
    assert replica_pvalue(wrong, np.ones(2048), groups, q, p) < 1e-3


def test_smc_verb_rejects_bad_inputs_in_one_line(exact_start, tmp_path, capsys):
    phi4 = tmp_path / "phi4.nc"
    assert main(["lattice", "hmc", "phi4", "--kappa", "0.2", "--L", "4", "--n-configs", "16", "--n-chains", "16",
                 "--n-therm", "0", "--seed", "1", "--no-progress", "--out", str(phi4)]) == 0
    capsys.readouterr()
    cases = [([str(phi4), "--beta", "2"], "U(1)"),
             ([str(exact_start), "--beta", "0.5"], "below"),
             ([str(exact_start), "--beta", "2", "--replicas", "8", "--n-particles", "256"], "holds 1024")]
    for argv, words in cases:
        assert main(["lattice", "smc", *argv, "--seed", "1", "--out", str(tmp_path / "x.nc")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err and argv[0] in err, err
    assert not (tmp_path / "x.nc").exists()


def _model_start(tmp_path, beta_start, beta_q, n=1024, seed=11):
    """A stand-in for the model's samples with their density: exact draws at beta_q with
    log q = beta_q sum_P cos theta_P (up to a constant, which the self-normalised weights
    ignore), stored at beta_start with log_weight = -S(beta_start) - log q, source dm_q."""
    ds = ex.exact_ensemble(beta=beta_q, L=4, n_configs=n, seed=seed)
    theta = torch.from_numpy(ds["theta"].values)
    unit = -U1(1.0).action(theta).numpy()                    # sum_P cos theta_P
    ds["log_weight"] = ("config", (beta_start - beta_q) * unit)
    ds.attrs.update(source="dm_q", beta=float(beta_start))
    path = tmp_path / f"dm_q_{beta_start:g}.nc"
    write_artifact(ds, path, config={}, rule="sample_u1_exact", seed=seed)
    return path


@pytest.mark.parametrize("beta_start", [3.0, 2.5])
def test_weighted_model_start_reproduces_the_torus(tmp_path, beta_start):
    """dm_smc from proposals that are not the target's law (exact at beta 2), weighted by
    p / q: at the target itself (importance resampling) and from beta 2.5, the plaquette
    and chi_t at beta 3 within 3 replica errors.  No MCMC moves, so only the weights can
    make it right (the unweighted start's plaquette is beta 2's, 0.70 against 0.81)."""
    out = tmp_path / "dm_smc.nc"
    assert main(["lattice", "smc", str(_model_start(tmp_path, beta_start, 2.0)), "--beta", "3", "--replicas", "8",
                 "--n-particles", "128", "--n-moves", "0", "--seed", "5", "--no-progress", "--out", str(out)]) == 0
    ds = read_artifact(out)
    assert ds.attrs["source"] == "dm_smc" and ds.attrs["input_source"] == "dm_q"
    assert np.all(ds["smc_start_ess"].values < 0.9) and ds.attrs["collapsed_replicas"] == 0
    obs = measure_u1(ds)
    for name, exact in (("plaquette", ex.plaquette(3.0, 4)), ("chi_t", ex.chi_t(3.0, 4))):
        value, err = float(obs[name]), float(obs[f"{name}_err"])
        assert 0 < err < 0.25 * exact
        assert abs(value - exact) < 3 * err, (name, value, err, exact)
    assert "flag" not in obs.attrs and int(obs["chi_t_reliable"]) == 1


def test_model_samples_without_density_are_refused(exact_start, tmp_path, capsys):
    ds = read_artifact(exact_start)
    ds.attrs["source"] = "dm_mala"
    dm = tmp_path / "dm.nc"
    write_artifact(ds, dm, config={}, rule="sample_u1", seed=1)
    assert main(["lattice", "smc", str(dm), "--beta", "1.5", "--seed", "1", "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--density jacobian" in err


def test_distinct_fraction_counts_copies():
    x = torch.randn(8, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    equal = torch.full((8,), 1 / 8, dtype=torch.float64)
    assert distinct_fraction(x, equal) == pytest.approx(1.0)
    assert distinct_fraction(x[[0] * 8], equal) == pytest.approx(1 / 8)
    assert distinct_fraction(x[[0, 0, 0, 0, 1, 1, 2, 3]], equal) == pytest.approx((1 / (0.25 + 0.0625 + 2 / 64)) / 8)


def test_identical_particles_are_flagged_as_collapsed(tmp_path):
    """The collapsed start of the issue: every particle one configuration.  Its conditional
    ESS is 1 for any step, so the ladder jumps to the target in one step and nothing else
    looks wrong; the guard flags every row of the measurement."""
    ds = ex.exact_ensemble(beta=1.0, L=4, n_configs=64, seed=3)
    ds["theta"].values[:] = ds["theta"].values[:1]
    start = tmp_path / "identical.nc"
    write_artifact(ds, start, config={}, rule="exact_u1", seed=3)
    out = tmp_path / "smc.nc"
    assert main(["lattice", "smc", str(start), "--beta", "3", "--replicas", "4", "--n-particles", "16",
                 "--n-moves", "1", "--seed", "2", "--no-progress", "--out", str(out)]) == 0
    res = read_artifact(out)
    assert np.all(res["smc_n_steps"].values == 1)          # the ladder jumped: no warning from it
    assert res.attrs["collapsed_replicas"] == 4 and np.allclose(res["smc_min_distinct"].values, 1 / 16)
    obs = measure_u1(res)
    assert "4 of 4 replicas collapsed" in obs.attrs["flag"] and int(obs["chi_t_reliable"]) == 0


def test_a_start_with_one_dominant_weight_collapses():
    """A model's start whose weights sit on one particle: its start ESS is 1 / N, so the
    run is flagged however the moves spread the copies afterwards."""
    theta, _ = ex.sample_exact(1.0, 4, 16, seed=4)
    log_w0 = torch.full((16,), -50.0, dtype=torch.float64)
    log_w0[5] = 0.0
    run = sample_smc(U1, theta, 3.0, 3.0, generator=torch.Generator().manual_seed(1), log_w0=log_w0, n_moves=1)
    assert run.collapsed and run.start_ess == pytest.approx(1 / 16, rel=1e-6)
    assert len(run.resampled) == 1 and run.resampled[0][0] == 0
