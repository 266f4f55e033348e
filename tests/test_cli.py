"""The physml command line: documented options, artifacts, clear errors."""

import subprocess
import sys

import pytest

from physml.cli.main import build_parser, main
from physml.io.artifacts import read_artifact


def _help(*verb):
    return subprocess.run([sys.executable, "-m", "physml", *verb, "--help"], capture_output=True,
                          text=True, check=True).stdout


def test_every_verb_documents_its_options():
    for action in build_parser()._subparsers._group_actions[0].choices.values():
        for opt in action._actions:
            if opt.option_strings and opt.dest != "help":
                assert opt.help, f"{action.prog} {opt.option_strings} has no help"
    text = _help("hmc", "phi4")
    for opt in ("--L", "--kappa", "--lam", "--n-configs", "--seed", "--out", "--step-size", "--start"):
        assert opt in text


def test_hmc_then_measure(tmp_path):
    ens, obs = tmp_path / "ens.nc", tmp_path / "obs.nc"
    assert main(["hmc", "phi4", "--L", "4", "--kappa", "0.21", "--n-configs", "64", "--n-chains", "8",
                 "--n-therm", "10", "--seed", "1", "--out", str(ens), "--no-progress"]) == 0
    assert main(["measure", str(ens), "--out", str(obs)]) == 0
    ds = read_artifact(obs)
    assert ds.attrs["theory"] == "phi4" and "chi2" in ds and ds.attrs["seed"] == 1


def test_measure_missing_file_names_it(tmp_path, capsys):
    assert main(["measure", str(tmp_path / "absent.nc"), "--out", str(tmp_path / "o.nc")]) == 2
    assert "absent.nc" in capsys.readouterr().err


def test_bad_lattice_size_is_rejected():
    with pytest.raises(SystemExit):
        main(["hmc", "phi4", "--L", "0", "--kappa", "0.2", "--n-configs", "8", "--seed", "1", "--out", "x.nc"])
