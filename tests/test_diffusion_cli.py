"""End to end through the CLI: train -> sample at L and 2L -> measure -> compare -> figures,
with the provenance chain model -> training ensemble."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from physml.cli.main import main
from physml.diffusion.model import read_model_file
from physml.io.artifacts import artifact_inputs, read_artifact, sha256_file
from physml.lattice.phi4 import Phi4
from physml.mc.ensembles import hmc_ensemble
from physml.io.artifacts import write_artifact

TINY = ["--channels", "4", "8", "--embed-dim", "8", "--groups", "2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("dm")
    paths = {}
    for L in (8, 16):
        ens = hmc_ensemble(Phi4(0.21, 0.022), L=L, n_configs=64, n_chains=16, n_therm=20, meas_interval=1,
                           step_size=0.125, n_steps=8, seed=L, start="hot", show_progress=False)
        paths[f"hmc{L}"] = d / f"hmc_L{L}.nc"
        write_artifact(ens, paths[f"hmc{L}"], config={"L": L}, rule="hmc_phi4", seed=L)
    model = d / "model.pt"
    assert main(["diffusion", "train", str(paths["hmc8"]), "--out", str(model), "--history", str(d / "training.nc"),
                 *TINY, "--epochs", "2", "--batch-size", "16", "--seed", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    for L in (8, 16):
        paths[f"dm{L}"] = d / f"dm_L{L}.nc"
        mala = ["--mala-steps", "5", "--mala-tune-steps", "5", "--mala-out", str(d / "mala8.nc")] if L == 8 else []
        assert main(["diffusion", "sample", str(model), "--L", str(L), "--n-configs", "40", "--n-steps", "8",
                     "--batch-size", "16", "--seed", "2", "--device", "cpu", "--no-progress",
                     "--out", str(paths[f"dm{L}"]), *mala]) == 0
    paths["mala8"] = d / "mala8.nc"
    obs = []
    for key in ("hmc8", "dm8", "hmc16", "dm16"):
        out = d / f"obs_{key}.nc"
        assert main(["lattice", "measure", str(paths[key]), "--out", str(out), "--no-progress"]) == 0
        obs.append(str(out))
    table = d / "phi4_hmc_vs_dm.nc"
    assert main(["lattice", "compare", *obs, "--out", str(table), "--no-progress"]) == 0
    paths.update(model=model, obs=obs, table=table, dir=d)
    return paths


def test_model_file_records_config_and_training_ensemble(run):
    rec = read_model_file(run["model"])
    assert rec["ensemble"]["sha256"] == sha256_file(run["hmc8"])
    assert rec["ensemble"]["kappa"] == pytest.approx(0.21) and rec["ensemble"]["L"] == 8
    assert rec["config"]["channels"] == [4, 8] and rec["config"]["epochs"] == 2
    assert rec["provenance"]["git_commit"] and rec["model"]["scale"] > 0 and rec["model"]["odd"]
    # edm recipe: noise range sized from the data, zero-mode law fitted, both recorded
    assert rec["model"]["precond"]["recipe"] == "edm" and rec["model"]["precond"]["zero_mode"]["volume"] == 64
    assert rec["model"]["sigma_max"] == pytest.approx(rec["noise_sizing"]["sigma_max"])
    hist = read_artifact(run["dir"] / "training.nc")
    assert len(hist["epoch"]) == 2 and "loss" in hist and "lr" in hist and "wall_time" in hist
    assert not (run["dir"] / "model.pt.ckpt").exists()


def test_generated_ensemble_is_an_ordinary_ensemble_with_provenance(run):
    for L in (8, 16):
        ds = read_artifact(run[f"dm{L}"])
        assert ds["phi"].dims == ("config", "x", "y") and ds["phi"].shape == (40, L, L)
        assert ds.attrs["source"] == "dm" and ds.attrs["theory"] == "phi4" and ds.attrs["L"] == L
        assert ds.attrs["train_L"] == 8
        inputs = {rec["path"]: rec["sha256"] for rec in artifact_inputs(ds)}
        assert inputs[str(run["model"])] == sha256_file(run["model"])
        assert inputs[str(run["hmc8"])] == sha256_file(run["hmc8"])  # through the model
        action = Phi4(0.21, 0.022).action(torch.from_numpy(ds["phi"].values))
        assert np.allclose(ds["action"].values, action.numpy())
        assert ds["snapshot"].dims == ("tau", "snapshot_config", "x", "y")
        assert list(ds["tau"].values) == [0, 0.25, 0.5, 0.75, 1]
        assert np.array_equal(ds["snapshot"].isel(tau=-1).values, ds["phi"].values[:4])
        assert json.loads(ds.attrs["sampler_json"])["name"] == "ode2m"
        assert ds.attrs["nfe"] == 8 and ds["sigma_grid"].shape == (8,)


def test_comparison_table_tidy_long_form(run):
    csv = pd.read_csv(run["table"].with_suffix(".csv"))
    assert list(csv.columns)[:6] == ["observable", "source", "L", "kappa", "value", "error"]
    assert set(csv["source"]) == {"hmc", "dm"} and set(csv["L"]) == {8, 16}
    names = set(csv["observable"])
    assert {"mag", "abs_mag", "chi2", "binder", "G_r1", "G_r2", "G_r8", "action_density",
            "frac_phibar_pos", "action_hist_ks", "action_hist_ks_pvalue"} <= names
    table = read_artifact(run["table"])
    obs = read_artifact(run["obs"][0])
    def cell(name, source, L, var="value"):
        row = (table["observable"] == name) & (table["source"] == source) & (table["L"] == L)
        values = table[var].values[row.values]
        assert len(values) == 1
        return float(values[0])

    assert cell("chi2", "hmc", 8) == pytest.approx(float(obs["chi2"]))
    # pull of a dm row is (dm - hmc) / combined error
    expected = (cell("abs_mag", "dm", 16) - cell("abs_mag", "hmc", 16)) / np.hypot(
        cell("abs_mag", "dm", 16, "error"), cell("abs_mag", "hmc", 16, "error"))
    assert cell("abs_mag", "dm", 16, "pull") == pytest.approx(expected)
    assert np.isnan(cell("abs_mag", "hmc", 16, "pull"))


def test_figures_render(run):
    d = run["dir"]
    assert main(["figure", "phi4_denoising", str(run["dm8"]), "--out", str(d / "fig_den")]) == 0
    assert main(["figure", "phi4_hmc_vs_dm", *run["obs"], str(run["table"]), "--out", str(d / "fig_cmp")]) == 0
    assert main(["figure", "phi4_mala_steps", *run["obs"], str(run["mala8"]),
                 "--out", str(d / "fig_mala")]) == 0
    for stem in ("fig_den", "fig_cmp", "fig_mala"):
        assert (d / f"{stem}.pdf").stat().st_size > 0 and (d / f"{stem}.png").stat().st_size > 0


def test_sampling_rejects_a_lattice_the_model_cannot_tile(run, capsys):
    assert main(["diffusion", "sample", str(run["model"]), "--L", "9", "--n-configs", "16", "--seed", "1",
                 "--out", str(run["dir"] / "bad.nc"), "--no-progress"]) == 2
    assert "downsampling" in capsys.readouterr().err


def test_sampling_refuses_a_model_whose_training_ensemble_changed(tmp_path, run):
    import shutil
    ens = tmp_path / "ens.nc"
    shutil.copy(run["hmc8"], ens)
    model = tmp_path / "m.pt"
    assert main(["diffusion", "train", str(ens), "--out", str(model), "--history", str(tmp_path / "h.nc"), *TINY,
                 "--epochs", "1", "--seed", "1", "--no-progress"]) == 0
    with open(ens, "ab") as fh:
        fh.write(b"tampered")
    assert main(["diffusion", "sample", str(model), "--L", "8", "--n-configs", "16", "--n-steps", "4", "--seed", "1",
                 "--out", str(tmp_path / "s.nc"), "--no-progress"]) == 2


def test_audit_walks_through_the_model_to_the_training_ensemble(run, capsys):
    assert main(["provenance", "--json", str(run["dm16"])]) == 0
    tree = json.loads(capsys.readouterr().out)["lineage"]
    model = next(n for n in tree["inputs"] if n["path"].endswith("model.pt"))
    assert model["rule"] == "train" and [n["path"] for n in model["inputs"]] == [str(run["hmc8"])]
    assert model["inputs"][0]["rule"] == "hmc_phi4"
