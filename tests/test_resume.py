"""Failure handling of a local run: an interrupted run resumes without redoing finished jobs.

The retry of a failed job on SLURM is tested in test_slurm.py.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from test_workflow import _copy_workflow

from physml.io.artifacts import sha256_file

ENSEMBLES = [f"results/phi4/hmc/L8_kappa{k}_lam0.022/ensemble.nc" for k in ("0.21", "0.5")]


@pytest.mark.slow
def test_interrupted_run_resumes_without_redoing_finished_jobs(root, tmp_path):
    wd = _copy_workflow(root, tmp_path)
    # thermalisation long enough (about 10 s a job) that the interrupt lands while the second
    # job runs even when the other test worker loads the machine (with tiny's 20 trajectories
    # a job took 4 s, and once both had finished before the interrupt arrived)
    (wd / "slow.yaml").write_text("phi4: {hmc: {n_therm: 30000}}\n")
    # one core: the two HMC jobs run one after the other; targets before --configfile
    cmd = [sys.executable, "-m", "snakemake", *ENSEMBLES, "--cores", "1", "--configfile", "tiny.yaml",
           "slow.yaml"]
    log = wd / "interrupted.out"
    with open(log, "w") as out:
        # SIGINT back to its default first: a suite started in the background of a
        # non-interactive shell inherits it ignored, and Snakemake would not see the Ctrl-C
        run = subprocess.Popen(cmd, cwd=wd, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    while "Finished jobid" not in log.read_text():  # Snakemake has recorded the first job
        assert run.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C while the second job runs
    assert run.wait(timeout=300) != 0
    done = [wd / p for p in ENSEMBLES if (wd / p).exists()]
    assert len(done) == 1, log.read_text()[-3000:]
    assert not list((wd / "results").rglob("*.tmp"))  # the killed job left no partial file
    stamp = (done[0].stat().st_mtime_ns, sha256_file(done[0]))

    # profiles/default sets rerun-incomplete, so a plain rerun resumes
    resumed = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (resumed.stdout + resumed.stderr).count("rule hmc_phi4:") == 1
    assert (done[0].stat().st_mtime_ns, sha256_file(done[0])) == stamp
    assert all((wd / p).exists() for p in ENSEMBLES)
