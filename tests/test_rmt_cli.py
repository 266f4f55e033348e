"""The `physml rmt` verbs end to end on tiny settings: artifacts, provenance, figures, errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from physml.cli.main import main
from physml.io.artifacts import PROVENANCE_KEYS, read_artifact


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("rmt")
    out = {}
    for lr, b in [(0.05, 4), (0.2, 16), (0.05, 16)]:
        p = d / f"lin_{lr}_{b}.nc"
        assert main(["rmt", "linear", "--lr", str(lr), "--batch-size", str(b), "--n-runs", "32",
                     "--n-steps", "400", "--burn-in", "150", "--seed", "3", "--no-progress",
                     "--device", "cpu", "--out", str(p)]) == 0
        out.setdefault("linear", []).append(p)
    out["temperature"] = d / "temperature.nc"
    assert main(["rmt", "temperature", *map(str, out["linear"]), "--lr-linear-max", "0.2",
                 "--out", str(out["temperature"])]) == 0
    for model, train in (("rbm", ["rbm", "--n-steps", "300", "--burn-in", "100", "--snapshot-every", "5",
                                  "--n-runs", "8"]),
                         ("mlp_online", ["mlp", "--data", "online", "--label-noise", "0.5", "--n-steps", "300",
                                         "--burn-in", "100", "--snapshot-every", "10", "--n-runs", "4"])):
        for lr, b in [(0.05, 32), (0.1, 64), (0.05, 64)]:       # two points share lr/B
            p = d / f"{model}_{lr}_{b}.nc"
            assert main(["rmt", *train, "--lr", str(lr), "--batch-size", str(b), "--seed", "3", "--no-progress",
                         "--out", str(p)]) == 0
            out.setdefault(model, []).append(p)
        out[f"temperature_{model}"] = d / f"temperature_{model}.nc"
        out[f"table_{model}"] = d / "tables" / f"rmt_temperature_{model}.nc"
        assert main(["rmt", "temperature", *map(str, out[model]), "--out", str(out[f"temperature_{model}"]),
                     "--table", str(out[f"table_{model}"])]) == 0
    out["dbm"] = d / "dbm.nc"
    assert main(["rmt", "dbm", "--n", "8", "--temperatures", "0.1,0.3,1", "--n-steps", "100",
                 "--n-runs", "8", "--dt-sde", "0.005", "--burn-in-time", "1", "--seed", "1",
                 "--no-progress", "--out", str(out["dbm"])]) == 0
    out["mlp"] = d / "mlp.nc"
    assert main(["rmt", "mlp", "--lr", "0.2", "--n-runs", "4", "--n-steps", "200", "--n-batches", "8",
                 "--snapshot-every", "50", "--seed", "1", "--no-progress", "--out", str(out["mlp"])]) == 0
    out["transformer"] = d / "tr.nc"
    assert main(["rmt", "transformer", "--n-steps", "4", "--dense-until", "2", "--n-sparse", "1",
                 "--block-size", "16", "--batch-size", "4", "--corpus-chars", "20000", "--seed", "1",
                 "--device", "cpu", "--no-progress", "--out", str(out["transformer"])]) == 0
    for name in ("mlp", "transformer"):
        out[f"{name}_spectra"] = d / f"{name}_spectra.nc"
        assert main(["rmt", "spectra", str(out[name]), "--n-null", "30", "--seed", "1",
                     "--out", str(out[f"{name}_spectra"])]) == 0
    out["tails"], out["tails_table"] = d / "tails.nc", d / "tables" / "rmt_tails.nc"
    assert main(["rmt", "tails", str(out["transformer_spectra"]), "--n-boot", "5", "--seed", "2",
                 "--out", str(out["tails"]), "--table", str(out["tails_table"])]) == 0
    out["dir"] = d
    return out


def test_linear_weights_artifact(made):
    ds = read_artifact(made["linear"][0])
    assert set(PROVENANCE_KEYS) <= set(ds.attrs)
    assert ds["W"].dims == ("seed", "step", "row", "col") and ds.sizes["seed"] == 32
    assert json.loads(ds.attrs["config_json"])["lr"] == 0.05


def test_temperature_gathers_the_grid(made):
    t = read_artifact(made["temperature"])
    fits = json.loads(t.attrs["fits"])
    assert set(fits) >= {"naive", "lr_over_B", "finite_lr", "scaling", "coulomb", "entry_over_closed_form_max_abs_z"}
    assert fits["finite_lr"]["variable"] == "x_corrected" and fits["finite_lr"]["expected_slope"] == 0.25
    assert len(fits["scaling"]["residual_z"]) == 3          # every point, the singleton at lr/B = 0.2/16 too
    ratio = t["entry_variance"] / t["closed_form"]
    assert np.all(np.abs(ratio - 1) < 5 * t["entry_variance_err"] / t["closed_form"])
    assert len(json.loads(t.attrs["inputs"])) == 3


def test_rbm_and_online_mlp_grids_give_a_temperature_with_errors(made):
    import pandas as pd

    for model in ("rbm", "mlp_online"):
        t = read_artifact(made[f"temperature_{model}"])
        assert t.attrs["model"] == model.split("_")[0] and (t["T_eff_err"] > 0).all()
        df = pd.read_csv(made[f"table_{model}"].with_suffix(".csv"))
        line = df[df["fit"] == "lr_over_B"].iloc[0]
        assert line["slope_err"] > 0 and line["intercept_err"] > 0 and line["n_points"] == 3
        assert df[df["fit"] == "scaling"]["lr_coef_err"].iloc[0] > 0
    rbm = read_artifact(made["temperature_rbm"])
    assert {"T_linearised", "T_coulomb", "beta_coulomb", "pair_spacing"} <= set(rbm.data_vars)
    weights = read_artifact(made["rbm"][0])
    assert weights.attrs["kind"] == "rmt_rbm" and weights["W"].dims == ("seed", "step", "row", "col")


def test_spectra_of_mlp_and_transformer(made):
    mlp = read_artifact(made["mlp_spectra"])
    assert mlp.attrs["pool_dim"] == "seed" and mlp["eigenvalue"].shape == (5, 4, 16)
    assert mlp.attrs["aspect_q"] == 0.5 and mlp["step"].values[0] == 0
    tr = read_artifact(made["transformer_spectra"])
    assert tr.attrs["pool_dim"] == "matrix" and tr["eigenvalue"].shape[1:] == (48, 16)
    assert tr.attrs["aspect_q"] == 0.25 and tr.attrs["aspect_N"] == 64
    assert float(tr["mp_p_value"][0]) > 0.01                  # initialisation is MP
    assert float(tr["wigner_p_value"][0]) > 0.01              # and its spacings are those of iid matrices
    assert abs(float(tr["spacing_ratio"][0].mean()) - float(tr["spacing_ratio_null_mean"])) < 0.05
    assert tr["spacing_ratio_err"].dims == ("step", "matrix") and (tr["spacing_ratio_err"] > 0).all()
    assert float(tr["spacing_ratio_mean_err"][0]) > 0 and tr["n_outliers"].dims == ("step", "matrix")
    assert "corpus_sha256" in tr.attrs and tr.attrs["kind"] == "rmt_transformer"


def test_tails_table_has_the_issue_columns_and_is_deterministic(made, tmp_path, capsys):
    import pandas as pd

    csv = made["tails_table"].with_suffix(".csv")
    df = pd.read_csv(csv)
    assert list(df.columns) == ["matrix", "step", "method", "alpha", "alpha_err", "xmin", "n_tail", "p_value",
                                "xmin_at_floor"]
    assert df[df["method"] == "powerlaw"]["xmin_at_floor"].isin([0, 1]).all()
    assert df[df["method"] != "powerlaw"]["xmin_at_floor"].isna().all()
    assert set(df["method"]) == {"powerlaw", "weightwatcher", "hill"}
    steps = read_artifact(made["transformer_spectra"])["step"].values
    pooled = df[df["matrix"] == "k"]
    assert sorted(set(pooled["step"])) == list(steps) and len(pooled) == 3 * len(steps)
    assert set(df[df["matrix"] == "b3.h3.v"]["step"]) == {steps[-1]}    # single heads: last step
    pl = df[df["method"] == "powerlaw"]
    assert pl["p_value"].between(0, 1).all() and (pl["alpha"] > 1).all()
    assert df[df["method"] != "powerlaw"]["p_value"].isna().all()
    table = read_artifact(made["tails_table"])
    assert table.attrs["kind"] == "rmt_tails_table" and table.sizes["row"] == len(df)
    tails = read_artifact(made["tails"])
    assert json.loads(tails.attrs["tail_first_step"]).keys() == {"q", "k", "v"}
    assert tails["common_p"].dims == ("kind", "step")
    again = tmp_path / "again.nc"
    assert main(["rmt", "tails", str(made["transformer_spectra"]), "--n-boot", "5", "--seed", "2",
                 "--out", str(tmp_path / "t.nc"), "--table", str(again)]) == 0
    assert again.with_suffix(".csv").read_text() == csv.read_text()
    # the MLP's spectra are not per-head transformer spectra
    capsys.readouterr()
    assert main(["rmt", "tails", str(made["mlp_spectra"]), "--seed", "1", "--out", str(tmp_path / "x.nc"),
                 "--table", str(tmp_path / "y.nc")]) == 2
    err = capsys.readouterr().err
    assert "mlp_spectra.nc" in err and "rmt_transformer" in err


@pytest.mark.parametrize("name,inputs", [("rmt_spacing", ["dbm", "temperature", "temperature_rbm"]),
                                         ("rmt_temperature", ["temperature", "temperature_rbm",
                                                              "temperature_mlp_online", "dbm"]),
                                         ("rmt_mp", ["mlp_spectra", "transformer_spectra"]),
                                         ("rmt_transformer", ["transformer_spectra", "tails"])])
def test_figures_render(made, name, inputs):
    stem = made["dir"] / f"fig_{name}"
    assert main(["figure", name, *[str(made[i]) for i in inputs], "--out", str(stem)]) == 0
    assert stem.with_suffix(".png").stat().st_size > 0


def test_bad_inputs_fail_with_a_message(made, capsys):
    assert main(["rmt", "temperature", str(made["linear"][0]), "--out", str(made["dir"] / "x.nc")]) == 2
    assert "three" in capsys.readouterr().err
    assert main(["rmt", "linear", "--lr", "1.9", "--batch-size", "2", "--seed", "1", "--no-progress",
                 "--out", str(made["dir"] / "y.nc")]) == 2
    assert "stability" in capsys.readouterr().err
    assert main(["rmt", "spectra", str(made["dir"] / "absent.nc"), "--seed", "1",
                 "--out", str(made["dir"] / "z.nc")]) == 2
    assert "absent.nc" in capsys.readouterr().err


def test_docs_numbers_are_rendered_from_the_result_files(made, tmp_path, capsys):
    """physml.rmt.report reads the results laid out as the DAG writes them: the blocks of
    docs/rmt.md are exactly the rendered ones, the rendered numbers are the artifacts' own,
    and --compare names a block that differs."""
    import shutil

    from physml.rmt import report

    res = tmp_path / "results"
    layout = {"temperature": "rmt/linear/temperature.nc", "temperature_rbm": "rmt/rbm/temperature.nc",
              "temperature_mlp_online": "rmt/mlp_online/temperature.nc", "dbm": "rmt/dbm/dbm.nc",
              "transformer_spectra": "rmt/transformer/spectra.nc", "tails": "rmt/transformer/tails.nc"}
    for key, rel in layout.items():
        (res / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made[key], res / rel)
    bench = res / "benchmarks" / "rmt" / "rbm" / "lr0.02_B32.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                     "3.1\t0:00:03\t1\t1\t1\t1\t0\t0\t90\t2.75\n")
    blocks = report.render(res)
    doc = (Path(__file__).parents[1] / "docs" / "rmt.md").read_text()
    assert set(report.doc_blocks(doc)) == set(blocks) == set(report.BLOCKS)
    fits = json.loads(read_artifact(made["temperature_rbm"]).attrs["fits"])["lr_over_B"]
    assert report.pm(fits["slope"], fits["slope_err"]) in blocks["temperature"]
    assert "| rbm grid | 2.8 |" in blocks["cpu_times"]
    updated = report.update(doc, blocks)
    assert report.doc_blocks(updated) == blocks and report.update(updated, blocks) == updated
    stale = tmp_path / "rmt.md"
    stale.write_text(updated.replace(blocks["dbm_check"], blocks["dbm_check"] + "x\n"))
    assert main(["rmt", "report", "--results", str(res), "--out", str(tmp_path / "numbers.md"),
                 "--compare", str(stale), "--write", str(stale)]) == 0
    assert "differing from these results: dbm_check" in capsys.readouterr().out
    assert stale.read_text() == updated
