"""The global flux move of 2D U(1): its field, its charge steps, and detailed balance."""

import math

import numpy as np
import pytest
import torch

from physml.cli.main import main
from physml.io.artifacts import read_artifact
from physml.lattice import u1_exact as ex
from physml.lattice.phi4 import Phi4
from physml.lattice.u1 import U1, flux_field, plaquette_angles, topological_charge, wrap_plaquette
from physml.mc.ensembles import hmc_ensemble
from physml.mc.flux import flux_move
from physml.mc.hmc import sample_hmc
from physml.observables.u1 import measure_u1, q_distribution_pvalue


@pytest.mark.parametrize("shape", [(3, 2, 8, 8), (2, 2, 5, 6), (1, 2, 7, 4)])
def test_flux_field_shifts_every_plaquette_by_two_pi_over_volume(shape):
    theta = torch.rand(shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 6 - 3
    volume = shape[-1] * shape[-2]
    shift = plaquette_angles(theta + flux_field(shape)) - plaquette_angles(theta)
    off = torch.remainder(shift - 2 * math.pi / volume + math.pi, 2 * math.pi) - math.pi
    assert off.abs().max() < 1e-12
    # one plaquette carries the -2 pi that keeps the unwrapped sum at zero
    assert torch.isclose(shift.sum(dim=(-2, -1)), torch.zeros(shape[0], dtype=torch.float64),
                         atol=1e-10).all()


def test_flux_shift_moves_the_charge_by_one_unit():
    """Exact configurations at beta = 7 (no plaquette near +-pi): +F raises Q by one, -F
    lowers it; the cold start goes to Q = +-1."""
    theta, _ = ex.sample_exact(7.0, 8, 64, seed=3)
    F = flux_field(theta.shape)
    margin = math.pi - wrap_plaquette(plaquette_angles(theta)).abs().amax(dim=(-2, -1))
    safe = margin > 2 * math.pi / 64
    assert safe.sum() > 50
    q = topological_charge(theta)
    assert (topological_charge(theta + F)[safe] == q[safe] + 1).all()
    assert (topological_charge(theta - F)[safe] == q[safe] - 1).all()
    cold = U1(7.0).cold_start(1, 8)
    assert int(topological_charge(cold + F)) == 1 and int(topological_charge(cold - F)) == -1


def test_flux_move_accepts_by_the_action_change():
    """At beta -> 0 every move is accepted; at huge beta from the cold start none is."""
    theta = U1(1.0).cold_start(256, 8)
    gen = torch.Generator().manual_seed(4)
    for beta, expected in ((1e-9, 1.0), (1e4, 0.0)):
        theory = U1(beta)
        x, s, acc = flux_move(theory, theta, theory.action(theta), theory.flux_shift(theta), gen)
        assert float(acc.double().mean()) == expected
        assert torch.allclose(s, theory.action(x))


def test_flux_moves_restore_detailed_balance_where_hmc_freezes():
    """beta = 7, L = 8: HMC from a cold start never leaves Q = 0 within the run, while
    HMC with flux moves reproduces the exact P(Q) (Hotelling test over chains) and chi_t.
    (Each move changes S by about beta (2 pi)^2 / (2 V) = 2.2 here: acceptance ~0.2.)"""
    settings = dict(L=8, n_configs=1024, n_chains=32, n_therm=50, meas_interval=2, step_size=0.1,
                    n_steps=10, seed=11, start="cold", show_progress=False)
    q_exact, p_exact = ex.topological_charge_distribution(7.0, 8)
    plain = measure_u1(hmc_ensemble(U1(7.0), **settings))
    frozen_p = q_distribution_pvalue(plain["top_charge_per_config"].values, q_exact, np.clip(p_exact, 0, None))
    assert frozen_p < 1e-6 and int(plain["chi_t_reliable"]) == 0
    ds = hmc_ensemble(U1(7.0), flux_moves=2, **settings)
    assert ds.attrs["source"] == "hmc_flux" and 0.1 < ds.attrs["flux_acceptance_rate"] < 0.5
    obs = measure_u1(ds)
    assert int(obs["chi_t_reliable"]) == 1, obs.attrs["chi_t_flag"]
    assert float(obs["P_Q_pvalue"]) > 0.01
    assert abs(float(obs["chi_t"]) - ex.chi_t(7.0, 8)) < 3 * float(obs["chi_t_err"])
    assert abs(float(obs["plaquette"]) - ex.plaquette(7.0, 8)) < 3 * float(obs["plaquette_err"])


def test_flux_moves_need_a_u1_theory():
    x = torch.zeros(4, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="flux_moves"):
        sample_hmc(Phi4(0.2, 0.02), x, n_meas=1, step_size=0.1, n_steps=2,
                   generator=torch.Generator().manual_seed(0), flux_moves=1, show_progress=False,
                   engine="reference")


def test_hmc_cli_flux_moves_and_native_engine(tmp_path, capsys):
    ens = tmp_path / "ens.nc"
    common = ["lattice", "hmc", "u1", "--L", "4", "--beta", "3", "--n-configs", "32", "--n-chains", "16",
              "--n-therm", "5", "--seed", "1", "--no-progress"]
    assert main([*common, "--flux-moves", "2", "--out", str(ens)]) == 0
    ds = read_artifact(ens)
    assert ds.attrs["source"] == "hmc_flux" and ds.attrs["flux_moves"] == 2
    assert ds["flux_acceptance"].dims == ("hmc_traj", "chain_id")
    assert set(np.unique(ds["flux_acceptance"].values)) <= {0.0, 0.5, 1.0}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:   # U(1) has no C kernel: not offered
        main([*common, "--engine", "native", "--flux-moves", "1", "--out", str(tmp_path / "n.nc")])
    assert exit_.value.code == 2 and "invalid choice: 'native'" in capsys.readouterr().err
