"""End to end: the Snakemake DAG on a tiny config, in a fresh copy of the workflow."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from physml.io.artifacts import PROVENANCE_KEYS, read_artifact

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _copy_workflow(root: Path, dest: Path) -> Path:
    for item in ("Snakefile", "workflow", "config", "profiles", "envs", "docs"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    shutil.copy(root / "tests" / "data" / "tiny.yaml", dest / "tiny.yaml")
    return dest


def _snakemake(workdir: Path, *args: str, check: bool = True):
    # targets first: --configfile takes every word after it
    proc = subprocess.run([*SNAKEMAKE, *args, "--cores", "2", "--configfile", "tiny.yaml"],
                          cwd=workdir, capture_output=True, text=True, timeout=1200)
    if check and proc.returncode:
        pytest.fail(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = Path(__file__).resolve().parents[1]
    wd = _copy_workflow(root, tmp_path_factory.mktemp("wf"))
    _snakemake(wd)
    return wd


@pytest.mark.slow
def test_dag_makes_figures_with_provenance(workdir):
    fig = workdir / "results" / "figures"
    for ext in (".pdf", ".png", ".json"):
        assert (fig / f"fig_phi4_hmc{ext}").stat().st_size > 0
    sidecar = json.loads((fig / "fig_phi4_hmc.json").read_text())
    assert len(sidecar["inputs"]) == 1
    obs_path = workdir / "results/phi4/hmc/L8_kappa0.5_lam0.022/observables.nc"
    obs = read_artifact(obs_path)
    assert set(PROVENANCE_KEYS) <= set(obs.attrs)
    assert obs.attrs["rule"] == "measure"
    assert float(obs["abs_mag"]) > 3.5
    for var in ("mag", "abs_mag", "chi2", "binder", "G", "action_density"):
        assert f"{var}_err" in obs and f"tau_int_{var}" in obs
    ens = read_artifact(workdir / "results/phi4/hmc/L8_kappa0.5_lam0.022/ensemble.nc")
    assert ens.attrs["rule"] == "hmc_phi4" and ens["phi"].dims == ("config", "x", "y")
    assert json.loads(ens.attrs["config_json"])["kappa"] == 0.5
    assert len(ens.attrs["history"].splitlines()) == 1
    assert len(obs.attrs["history"].splitlines()) == 2
    assert (workdir / "results/logs/phi4/hmc/L8_kappa0.5_lam0.022.log").read_text().strip()


@pytest.mark.slow
def test_rerun_is_a_no_op_and_figure_target_by_name(workdir):
    proc = _snakemake(workdir, "fig_phi4_hmc", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_same_seed_same_ensemble_bytes(workdir, tmp_path):
    """Determinism: rebuilding an ensemble from the same config and seed gives the same field."""
    rel = "results/phi4/hmc/L8_kappa0.5_lam0.022/ensemble.nc"
    first = read_artifact(workdir / rel)
    copy = tmp_path / "copy"  # rerun in a copy: the other tests audit the original's hashes
    shutil.copytree(workdir, copy)
    _snakemake(copy, rel, "--forcerun", "hmc_phi4")
    again = read_artifact(copy / rel)
    assert again.attrs["created"] >= first.attrs["created"]
    assert (first["phi"].values == again["phi"].values).all()


def test_bad_config_fails_before_any_job(root, tmp_path):
    wd = _copy_workflow(root, tmp_path)
    text = (wd / "tiny.yaml").read_text().replace("kappa: [0.5]", "kappa: [-1, 0.5]")
    (wd / "tiny.yaml").write_text(text)
    proc = _snakemake(wd, "-n", check=False)
    assert proc.returncode != 0
    assert "config key 'phi4.kappa.0'" in proc.stdout + proc.stderr
    assert not (wd / "results").exists()


@pytest.mark.slow
def test_provenance_audit_detects_tampering(workdir, tmp_path):
    """`physml provenance` walks a figure back to its HMC ensembles and catches an edited input."""
    copy = tmp_path / "copy"
    shutil.copytree(workdir / "results", copy / "results")
    audit = [sys.executable, "-m", "physml", "provenance", "results/figures/fig_phi4_hmc.json"]
    ok = subprocess.run(audit, cwd=copy, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "rule=hmc_phi4" in ok.stdout and "rule=measure" in ok.stdout
    ens = copy / "results/phi4/hmc/L8_kappa0.5_lam0.022/ensemble.nc"
    with open(ens, "r+b") as fh:  # flip one byte in the middle of the file
        fh.seek(ens.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    bad = subprocess.run([*audit, "--json"], cwd=copy, capture_output=True, text=True)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    assert any("L8_kappa0.5_lam0.022/ensemble.nc" in p and "mismatch" in p for p in problems)


@pytest.mark.slow
def test_html_report_has_every_figure(workdir):
    _snakemake(workdir, "--report", "report.html")
    report = (workdir / "report.html").read_text(errors="replace")
    figures = sorted(p.stem for p in (workdir / "results" / "figures").glob("*.png"))
    assert figures
    for name in figures:
        assert name in report, f"{name} missing from the report"
    for caption in ("The phi^4 comparison table", "The U(1) comparison table", "The heavy-tail table"):
        assert caption in report, f"the table '{caption}' is missing from the report"


@pytest.mark.slow
def test_figure_targets_are_listed(workdir):
    proc = _snakemake(workdir, "--list-target-rules")
    listed = set((proc.stdout + proc.stderr).split())
    figures = {p.stem for p in (workdir / "results" / "figures").glob("*.png")}
    assert figures <= listed


@pytest.mark.slow
def test_u1_diffusion_table_has_every_source_and_the_mala_record(workdir):
    """The U(1) branch: physics-conditioned generation at new beta and L, MALA with its
    tuned step size recorded, the control, reweighting with its ESS, the tidy table."""
    import pandas as pd

    table = pd.read_csv(workdir / "results/tables/u1_hmc_vs_dm.csv")
    assert list(table.columns)[:6] == ["observable", "source", "L", "beta", "value", "error"]
    assert {"ess", "flag", "pull"} <= set(table.columns)
    assert set(table["source"]) == {"hmc", "exact", "dm", "dm_mala", "mala_only", "dm_reweighted",
                                    "hmc_flux", "smc", "dm_smc", "dm_authors", "dm_q", "dm_imh", "dm_rw"}
    authors = read_artifact(workdir / "results/u1/dm_authors/L4_beta3/ensemble.nc")
    # 4 levels at t = 1, 0.7, 0.49, 0.34, the last two Metropolis (t_mh 0.5): 4 x 2 + 2 + 1 evaluations
    assert authors.attrs["source"] == "dm_authors" and authors.attrs["nfe"] == 11
    assert 0 < authors.attrs["mh_acceptance"] <= 1 and json.loads(authors.attrs["sampler_json"])["t_mh"] == 0.5
    smc = read_artifact(workdir / "results/u1/dm_smc/L4_beta3/ensemble.nc")
    assert smc.attrs["input_source"] == "dm_q" and smc.attrs["replicas"] == 4   # the weighted start
    assert np.all(smc["smc_start_ess"].values < 1) and "smc_min_distinct" in smc
    weighted = table[(table["source"] == "dm_rw") & (table["observable"] == "plaquette")]
    assert len(weighted) == 2 and weighted["ess"].between(0, 1).all()   # ESS/N at beta 1 and 3
    assert {"plaquette", "W_1x1", "chi_t", "P_Q0"} <= set(table["observable"])
    rw = table[table["source"] == "dm_reweighted"]
    assert (rw["beta"] == 1.5).all() and rw["ess"].notna().all()
    ens = read_artifact(workdir / "results/u1/dm_mala/L4_beta2/ensemble.nc")
    assert ens.attrs["score_factor"] == 2.0 and ens.attrs["train_L"] == 4
    # tiny config: 10 warm-up steps on the pilot's schedule, then 10 at the tuned step size
    assert ens.attrs["mala_step_size"] > 0 and ens.sizes["mala_step"] == 20
    assert (ens["mala_step_sizes"].values[10:] == ens.attrs["mala_step_size"]).all()
    assert "pilot chains (not measured)" in ens.attrs["mala_tuning"]
    assert list(ens["mala_trace_step"].values) == [0, 1, 2, 5, 10, 20]
    phi4 = pd.read_csv(workdir / "results/tables/phi4_hmc_vs_dm.csv")
    assert {"dm", "dm_mala", "mala_only"} <= set(phi4["source"])
    for name in ("fig_u1_volume", "fig_u1_coupling"):
        assert (workdir / f"results/figures/{name}.png").stat().st_size > 0
