"""End to end on a real SLURM cluster: the DAG through `snakemake --profile profiles/slurm`.

Needs the single-node test cluster of tests/cluster/start_slurm.sh (root, Debian); skipped
when no SLURM node of its partition is idle.  One Snakemake run, in a fresh copy of the
workflow, uses the shipped profile plus the test overlay tests/cluster/profile (partition
`debug`, no account, fast first status check) and asks for two targets: `fig_phi4_hmc`, and
the observables of an unreadable ensemble, which must fail on every attempt while the
figure's branch goes on (`keep-going`).  A local run of `fig_phi4_hmc` is the reference.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml
from test_workflow import _copy_workflow

from physml.io.artifacts import read_artifact

ROOT = Path(__file__).resolve().parents[1]
PARTITION = "debug"
POINT = "results/phi4/hmc/L8_kappa0.5_lam0.022"
BROKEN = "results/phi4/broken/L8_kappa0.5_lam0.022"
# the plugin's line per submission, e.g. "... submitted with SLURM jobid 7 (log:
# /wd/.snakemake/slurm_logs/rule_measure/phi4_hmc_L8_kappa0.5_lam0.022/7.log)."
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S*/rule_([A-Za-z0-9_]+)/\S*)\)")


def _cluster_state() -> str:
    """Empty if a node of the test partition takes jobs, else why the tests are skipped."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo not found); start one with tests/cluster/start_slurm.sh"
    proc = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%t"],
                          capture_output=True, text=True, timeout=30)
    states = proc.stdout.split()
    if proc.returncode or not {"idle", "mix"} & set(states):
        said = " ".join(states) or (proc.stderr.strip().splitlines() or ["nothing"])[-1]
        return (f"no idle SLURM node in partition {PARTITION!r} (sinfo: {said});"
                " start one with tests/cluster/start_slurm.sh")
    return ""


_WHY_NOT = _cluster_state()
# CI (.ci/run) sets PHYSML_REQUIRE_SLURM=1: there a missing cluster fails instead of skipping
_REQUIRED = os.environ.get("PHYSML_REQUIRE_SLURM") == "1"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(_WHY_NOT) and not _REQUIRED, reason=_WHY_NOT)]


def _sacct_works() -> bool:
    """Whether the cluster keeps accounting (slurmdbd); without it the plugin polls `squeue`."""
    return subprocess.run(["sacct", "-n", "-X"], capture_output=True).returncode == 0


def _workflow_copy(dest: Path) -> Path:
    """The workflow in ``dest`` with a one-kappa tiny config (run.yaml), and `hmc_phi4`
    declared a GPU rule in the workflow profile, where training and sampling rules are."""
    _copy_workflow(ROOT, dest)
    config = yaml.safe_load((dest / "tiny.yaml").read_text())
    config["phi4"]["kappa"] = [0.5]
    (dest / "run.yaml").write_text(yaml.safe_dump(config))
    profile_file = dest / "profiles/default/config.yaml"
    profile = yaml.safe_load(profile_file.read_text())
    profile.setdefault("set-resources", {}).setdefault("hmc_phi4", {})["gpu"] = 1
    profile_file.write_text(yaml.safe_dump(profile))
    return dest


def _snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """Start Snakemake in ``workdir``; its output goes to ``workdir/snakemake.out``."""
    with open(workdir / "snakemake.out", "w") as out:
        # targets first: --configfile takes every word after it
        return subprocess.Popen([sys.executable, "-m", "snakemake", *args, "--configfile", "run.yaml"],
                                cwd=workdir, stdout=out, stderr=subprocess.STDOUT)


def _jobs(ids) -> dict[str, dict[str, object]]:
    """State and number of GPUs of SLURM jobs: from `sacct` (AllocTRES `gres/gpu=N`) or,
    without accounting, from `scontrol` (TresPerJob `gres:gpu:N`; jobs stay MinJobAge = 300 s)."""
    if _sacct_works():
        sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-j", ",".join(ids),
                                "-o", "JobID,State,AllocTRES"], capture_output=True, text=True, check=True)
        rows = [line.split("|") for line in sacct.stdout.splitlines() if line]
    else:
        rows = []
        for jid in ids:
            out = subprocess.run(["scontrol", "show", "job", "-o", jid],
                                 capture_output=True, text=True, check=True).stdout
            fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
            rows.append([jid, fields["JobState"], fields.get("TresPerJob", "")])
    jobs = {}
    for jid, state, tres in rows:
        gpus = re.search(r"gres[/:]gpu[=:](\d+)", tres)
        jobs[jid] = {"state": state.split()[0], "gpus": int(gpus[1]) if gpus else 0}
    return jobs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(cluster workdir, local workdir, Snakemake's output on SLURM, its return code,
    [(SLURM job id, rule, slurm log path)]); the local reference runs meanwhile."""
    if _WHY_NOT:
        pytest.fail(_WHY_NOT)
    cluster = _workflow_copy(tmp_path_factory.mktemp("slurm"))
    local = _workflow_copy(tmp_path_factory.mktemp("local"))
    (cluster / BROKEN).mkdir(parents=True)
    (cluster / BROKEN / "ensemble.nc").write_text("not a NetCDF file\n")
    status = [] if _sacct_works() else ["--slurm-status-command", "squeue"]
    on_slurm = _snakemake(cluster, "fig_phi4_hmc", f"{BROKEN}/observables.nc", *status,
                          "--profile", "profiles/slurm", "--profile", str(ROOT / "tests/cluster/profile"))
    try:
        here = _snakemake(local, "fig_phi4_hmc", "--cores", "1")
        if here.wait(timeout=1800):
            pytest.fail(f"local snakemake failed:\n{(local / 'snakemake.out').read_text()[-5000:]}")
        on_slurm.wait(timeout=1800)
    finally:
        if on_slurm.poll() is None:  # Ctrl-C: Snakemake cancels its SLURM jobs
            on_slurm.send_signal(signal.SIGINT)
            on_slurm.wait(timeout=120)
    out = (cluster / "snakemake.out").read_text()
    submitted = [(jid, rule, log) for jid, log, rule in SUBMITTED.findall(out)]
    return cluster, local, out, on_slurm.returncode, submitted


def test_every_job_went_through_sbatch(runs):
    _, _, out, _, submitted = runs
    assert "Using profiles profiles/slurm and " in out
    good = [(jid, rule) for jid, rule, log in submitted if "broken" not in log]
    assert sorted(rule for _, rule in good) == ["fig_phi4_hmc", "hmc_phi4", "measure"], out[-5000:]
    states = {jid: job["state"] for jid, job in _jobs([jid for jid, _ in good]).items()}
    assert states == {jid: "COMPLETED" for jid, _ in good}


def test_gpu_rule_was_submitted_with_a_gpu(runs):
    submitted = runs[-1]
    jobs = _jobs([jid for jid, _, _ in submitted])
    for jid, rule, _ in submitted:
        assert jobs[jid]["gpus"] == (1 if rule == "hmc_phi4" else 0), (rule, jobs[jid])


def test_cluster_outputs_equal_local_outputs(runs):
    cluster, local = runs[:2]
    for name in ("ensemble.nc", "observables.nc"):
        on_slurm = read_artifact(cluster / POINT / name)
        here = read_artifact(local / POINT / name)
        xr.testing.assert_equal(on_slurm, here)  # values, dims and coords; not attributes
        for key in ("config_sha256", "seed", "rule"):
            assert on_slurm.attrs[key] == here.attrs[key]
    for ext in (".pdf", ".png", ".json"):
        assert (cluster / "results/figures" / f"fig_phi4_hmc{ext}").stat().st_size > 0


def test_failed_job_is_retried_and_leaves_no_artifact(runs):
    """The broken `measure` is submitted 1 + retries times (retries from profiles/slurm), every
    SLURM job fails, the run fails, no (partial) output is left and the rule's log says why."""
    cluster, _, out, returncode, submitted = runs
    assert returncode != 0
    retries = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())["retries"]
    failed = [(jid, rule) for jid, rule, log in submitted if "broken" in log]
    assert [rule for _, rule in failed] == ["measure"] * (1 + retries), out[-5000:]
    assert {job["state"] for job in _jobs([jid for jid, _ in failed]).values()} == {"FAILED"}
    assert sorted(p.name for p in (cluster / BROKEN).iterdir()) == ["ensemble.nc"]
    log = cluster / "results/logs/phi4/broken/L8_kappa0.5_lam0.022.measure.log"
    assert "not a readable NetCDF artifact" in log.read_text()
