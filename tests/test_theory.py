"""The theory contract (physml.lattice.theory) and the physical ranges the theories check."""

import math

import pytest
import torch

from physml.cli.main import main
from physml.lattice.phi4 import Phi4
from physml.lattice.theory import (HasFluxShift, HasFusedTrajectory, HasSymmetryFlip,
                                   LatticeTheory, Theory)
from physml.lattice.u1 import U1
from physml.mc.hmc import sample_hmc
from physml.mc.mala import run_mala


def test_phi4_and_u1_satisfy_the_contract():
    for theory in (Phi4(0.2, 0.02), U1(2.0)):
        assert isinstance(theory, Theory) and isinstance(theory, LatticeTheory)
    assert isinstance(Phi4(0.2, 0.02), HasSymmetryFlip) and isinstance(Phi4(0.2, 0.02), HasFusedTrajectory)
    assert isinstance(U1(2.0), HasFluxShift)
    assert not isinstance(U1(2.0), HasSymmetryFlip) and not isinstance(U1(2.0), HasFusedTrajectory)
    assert not isinstance(Phi4(0.2, 0.02), HasFluxShift)


class _NoForce:
    """A theory without ``force``."""

    name = "toy"

    def action(self, x):
        return 0.5 * x.flatten(1).square().sum(1)

    def project(self, x):
        return x


class _Gaussian(_NoForce):
    def force(self, x):
        return -x


def test_a_theory_missing_a_method_fails_the_check():
    assert not isinstance(_NoForce(), Theory)
    assert isinstance(_Gaussian(), Theory) and not isinstance(_Gaussian(), LatticeTheory)


def test_hmc_and_mala_run_any_theory_of_the_contract():
    x = torch.zeros(4, 3, 3, dtype=torch.float64)
    res = sample_hmc(_Gaussian(), x, n_meas=2, step_size=0.1, n_steps=3,
                     generator=torch.Generator().manual_seed(0), show_progress=False)
    assert res.samples.shape == (2, 4, 3, 3) and res.engine == "reference"
    assert run_mala(_Gaussian(), x, 3, 0.1, torch.Generator().manual_seed(0)).x.shape == x.shape


@pytest.mark.parametrize("make", [lambda: Phi4(-0.1, 0.0), lambda: Phi4(0.2, -0.01),
                                  lambda: Phi4(math.nan, 0.0), lambda: U1(0.0), lambda: U1(-1.0),
                                  lambda: U1(math.nan)])
def test_constructors_refuse_unphysical_couplings(make):
    with pytest.raises(ValueError, match="need"):
        make()


@pytest.mark.parametrize("argv", [
    ["lattice", "hmc", "u1", "--L", "4", "--beta", "0", "--n-configs", "8", "--seed", "1"],
    ["lattice", "exact", "u1", "--L", "4", "--beta", "-1", "--n-configs", "8", "--seed", "1"],
    ["lattice", "mala", "u1", "--L", "4", "--beta", "0", "--n-configs", "8", "--mala-steps", "2", "--seed", "1"],
    ["lattice", "mala", "phi4", "--L", "4", "--kappa", "-0.1", "--n-configs", "8", "--mala-steps", "2", "--seed", "1"],
])
def test_verbs_report_the_constructors_range_error(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"physml {' '.join(argv[:3])}: error: need ") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.nc").exists()
