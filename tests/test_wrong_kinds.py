"""Every verb given the wrong kind of input: one line naming the file and what was expected,
no traceback, nothing written."""

import numpy as np
import pytest
import xarray as xr

from physml.cli.main import main

TINY = ["--channels", "4", "8", "--embed-dim", "8", "--groups", "2"]


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:   # argparse or a verb's own exit
        return exc.code


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One file of every kind the project has, and foreign ones."""
    d = tmp_path_factory.mktemp("kinds")
    p = {k: d / name for k, name in (("ensemble", "ens.nc"), ("observables", "obs.nc"),
                                     ("model", "model.pt"), ("table", "table.nc"),
                                     ("foreign", "foreign.nc"), ("text", "README.md"), ("dir", "results"))}
    assert _run(["lattice", "hmc", "phi4", "--L", "8", "--kappa", "0.2", "--n-configs", "32", "--n-chains", "8",
                 "--n-therm", "5", "--seed", "1", "--out", str(p["ensemble"]), "--no-progress"]) == 0
    assert _run(["lattice", "measure", str(p["ensemble"]), "--out", str(p["observables"]), "--no-progress"]) == 0
    assert _run(["lattice", "compare", str(p["observables"]), "--out", str(p["table"]), "--no-progress"]) == 0
    assert _run(["diffusion", "train", str(p["ensemble"]), "--out", str(p["model"]), "--history", str(d / "hist.nc"),
                 *TINY, "--epochs", "1", "--batch-size", "16", "--seed", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    xr.Dataset({"phi": (("config", "x"), np.zeros((2, 2)))}, attrs={"theory": "phi4"}).to_netcdf(
        p["foreign"], engine="netcdf4")
    p["text"].write_text("# notes\n")
    p["dir"].mkdir()
    return p


# verb -> (its command with X for the input and OUT, OUT2, MODEL, STEM for outputs, the kinds it accepts)
VERBS = {
    "measure": (["lattice", "measure", "X", "--out", "OUT"], {"ensemble"}),
    "train": (["diffusion", "train", "X", "--out", "MODEL", "--history", "OUT2", *TINY, "--epochs", "1", "--seed", "1"],
              {"ensemble"}),
    "sample": (["diffusion", "sample", "X", "--L", "8", "--n-configs", "4", "--n-steps", "2", "--seed", "1",
                "--out", "OUT"], {"model"}),
    "compare": (["lattice", "compare", "X", "--out", "OUT"], {"observables"}),
    "figure": (["figure", "phi4_hmc", "X", "--out", "STEM"], {"observables"}),
    "mala": (["lattice", "mala", "phi4", "--kappa", "0.2", "--L", "4", "--n-configs", "4", "--mala-steps", "1",
              "--scale-from", "X", "--seed", "1", "--out", "OUT"], {"ensemble"}),
    "reweight": (["lattice", "reweight", "X", "--beta", "1.5", "--out", "OUT"], set()),
    "smc": (["lattice", "smc", "X", "--beta", "2", "--seed", "1", "--out", "OUT"], set()),
    "rmt spectra": (["rmt", "spectra", "X", "--seed", "1", "--out", "OUT"], set()),
    "rmt tails": (["rmt", "tails", "X", "--seed", "1", "--out", "OUT", "--table", "OUT2"], set()),
    "rmt temperature": (["rmt", "temperature", "X", "X", "X", "--out", "OUT"], set()),
    "phases gather": (["phases", "gather", "X", "--out", "OUT"], set()),
    "phases boundaries": (["phases", "boundaries", "--sigma-w-cut", "X", "--T-cut", "X", "--out", "OUT"],
                          set()),
    "figure phase_diagram": (["figure", "phase_diagram", "X", "--out", "STEM"], set()),
}
KINDS = ("ensemble", "observables", "model", "table", "foreign", "text", "dir")
CASES = [(verb, kind) for verb, (_, ok) in VERBS.items() for kind in KINDS if kind not in ok]


@pytest.mark.parametrize("verb, kind", CASES)
def test_wrong_kind_is_refused_in_one_line(inputs, tmp_path, capsys, verb, kind):
    path = inputs[kind]
    outputs = {"OUT": "out.nc", "OUT2": "out2.nc", "MODEL": "model.pt", "STEM": "fig"}
    argv = [str(path) if a == "X" else str(tmp_path / outputs[a]) if a in outputs else a
            for a in VERBS[verb][0]]
    assert _run([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path.name in err[0] and "expected" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_every_figure_declares_the_kinds_of_its_inputs():
    from physml.cli.figures import FIGURES, INPUTS
    assert set(INPUTS) == set(FIGURES)


def test_compare_refuses_a_reference_that_matches_no_rows(inputs, tmp_path, capsys):
    out = tmp_path / "t.nc"
    assert _run(["lattice", "compare", str(inputs["observables"]), "--reference", "hcm", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'hcm' matches no input" in err[0] and "hmc" in err[0]
    assert not out.exists()


def test_an_output_that_is_a_directory_is_named_before_any_work(inputs, capsys):
    assert _run(["lattice", "measure", str(inputs["ensemble"]), "--out", str(inputs["dir"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results: is a directory" in err[0]
