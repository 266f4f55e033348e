"""End to end on a real SLURM cluster: the DAG through `snakemake --profile profiles/slurm`.

Needs the single-node test cluster of tests/cluster/start_slurm.sh (root, Debian); skipped
when no SLURM node is idle.  The run uses the shipped profile plus the test overlay
tests/cluster/profile (partition `debug`, no account, fast first status check), in a fresh
copy of the workflow, and is compared with a local run of the same target.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml

from physml.io.artifacts import read_artifact

ROOT = Path(__file__).resolve().parents[1]
PARTITION = "debug"
POINT = "results/phi4/hmc/L8_kappa0.5_lam0.022"
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_([A-Za-z0-9_]+)/")


def _cluster_state() -> str:
    """Empty if a node of the test partition takes jobs, else why the tests are skipped."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo not found); start one with tests/cluster/start_slurm.sh"
    proc = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%t"],
                          capture_output=True, text=True, timeout=30)
    states = proc.stdout.split()
    if proc.returncode or not {"idle", "mix"} & set(states):
        return (f"no idle SLURM node in partition {PARTITION!r} (sinfo: {states or proc.stderr.strip()});"
                " start one with tests/cluster/start_slurm.sh")
    return ""


_WHY_NOT = _cluster_state()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_WHY_NOT), reason=_WHY_NOT)]


def _workflow_copy(dest: Path) -> Path:
    """The workflow in ``dest``, with a one-kappa tiny config and `hmc_phi4` declared a GPU rule
    in the workflow profile, the way training and sampling rules are."""
    for item in ("Snakefile", "workflow", "config", "profiles"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)
    config = yaml.safe_load((ROOT / "tests/data/tiny.yaml").read_text())
    config["phi4"]["kappa"] = [0.5]
    (dest / "run.yaml").write_text(yaml.safe_dump(config))
    profile_file = dest / "profiles/default/config.yaml"
    profile = yaml.safe_load(profile_file.read_text())
    profile.setdefault("set-resources", {}).setdefault("hmc_phi4", {})["gpu"] = 1
    profile_file.write_text(yaml.safe_dump(profile))
    return dest


def _snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # targets first: --configfile takes every word after it
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args, "--configfile", "run.yaml"],
                          cwd=workdir, capture_output=True, text=True, timeout=1800)
    if check and proc.returncode:
        pytest.fail(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _on_slurm(workdir: Path, *args: str, check: bool = True):
    """Run Snakemake with the SLURM profiles; return the process and [(slurm job id, rule)]."""
    proc = _snakemake(workdir, *args, "--profile", "profiles/slurm",
                      "--profile", str(ROOT / "tests/cluster/profile"), check=check)
    return proc, SUBMITTED.findall(proc.stdout + proc.stderr)


def _jobs(ids) -> dict[str, dict[str, str]]:
    """State and allocated TRES of SLURM jobs, from `sacct` or (no accounting) `scontrol`."""
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids),
                            "-o", "JobID,State,AllocTRES"], capture_output=True, text=True)
    if sacct.returncode == 0:
        rows = (line.split("|") for line in sacct.stdout.splitlines() if line)
        return {jid: {"state": state.split()[0], "tres": tres} for jid, state, tres in rows}
    jobs = {}
    for jid in ids:
        out = subprocess.run(["scontrol", "show", "job", "-o", jid],
                             capture_output=True, text=True, check=True).stdout
        fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
        jobs[jid] = {"state": fields["JobState"], "tres": fields.get("AllocTRES", "")}
    return jobs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The `fig_phi4_hmc` target run on SLURM and, for reference, locally."""
    cluster = _workflow_copy(tmp_path_factory.mktemp("slurm"))
    local = _workflow_copy(tmp_path_factory.mktemp("local"))
    proc, submitted = _on_slurm(cluster, "fig_phi4_hmc")
    _snakemake(local, "fig_phi4_hmc", "--cores", "2")
    return cluster, local, proc, submitted


def test_every_job_went_through_sbatch(runs):
    _, _, proc, submitted = runs
    assert "Using profiles profiles/slurm" in proc.stderr
    assert sorted(rule for _, rule in submitted) == ["fig_phi4_hmc", "hmc_phi4", "measure"]
    jobs = _jobs([jid for jid, _ in submitted])
    assert {jid: job["state"] for jid, job in jobs.items()} == {
        jid: "COMPLETED" for jid, _ in submitted}


def test_gpu_rule_was_submitted_with_a_gpu(runs):
    _, _, _, submitted = runs
    jobs = _jobs([jid for jid, _ in submitted])
    for jid, rule in submitted:
        assert ("gres/gpu=1" in jobs[jid]["tres"]) == (rule == "hmc_phi4"), (rule, jobs[jid])


def test_cluster_outputs_equal_local_outputs(runs):
    cluster, local, _, _ = runs
    for name in ("ensemble.nc", "observables.nc"):
        on_slurm = read_artifact(cluster / POINT / name)
        here = read_artifact(local / POINT / name)
        xr.testing.assert_equal(on_slurm, here)  # values, dims and coords; not attributes
        for key in ("config_sha256", "seed", "rule"):
            assert on_slurm.attrs[key] == here.attrs[key]
    for ext in (".pdf", ".png", ".json"):
        assert (cluster / "results/figures" / f"fig_phi4_hmc{ext}").stat().st_size > 0


def test_failed_job_is_retried_and_leaves_no_artifact(runs):
    """`measure` of an unreadable ensemble fails on every attempt: it is submitted 1 + retries
    times, each SLURM job fails, no (partial) output is left, and the rule's log says why."""
    cluster = runs[0]
    broken = cluster / "results/phi4/broken/L8_kappa0.5_lam0.022"
    broken.mkdir(parents=True)
    (broken / "ensemble.nc").write_text("not a NetCDF file\n")
    proc, submitted = _on_slurm(cluster, str(broken.relative_to(cluster) / "observables.nc"),
                                check=False)
    assert proc.returncode != 0
    retries = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())["retries"]
    assert [rule for _, rule in submitted] == ["measure"] * (1 + retries)
    assert {job["state"] for job in _jobs([jid for jid, _ in submitted]).values()} == {"FAILED"}
    assert sorted(p.name for p in broken.iterdir()) == ["ensemble.nc"]
    log = cluster / "results/logs/phi4/broken/L8_kappa0.5_lam0.022.measure.log"
    assert "not a readable NetCDF artifact" in log.read_text()
