"""Artifacts: round trip, provenance attributes, atomic writes, clear errors, tamper detection."""

import json

import numpy as np
import pytest
import xarray as xr

from physml.io.artifacts import (PROVENANCE_KEYS, ArtifactError, check_inputs, read_artifact,
                                 sha256_file, write_artifact)


def _dataset():
    return xr.Dataset({"phi": (("config", "x"), np.arange(6.0).reshape(3, 2), {"units": "1"})},
                      coords={"config": np.arange(3)}, attrs={"theory": "phi4"})


def test_round_trip_carries_provenance(tmp_path):
    src = tmp_path / "input.txt"
    src.write_text("data")
    path = write_artifact(_dataset(), tmp_path / "a" / "ens.nc", config={"kappa": 0.21, "L": 8},
                          rule="hmc_phi4", seed=7, inputs=[src])
    ds = read_artifact(path)
    assert set(PROVENANCE_KEYS) <= set(ds.attrs)
    assert np.array_equal(ds["phi"].values, _dataset()["phi"].values)
    assert json.loads(ds.attrs["config_json"]) == {"L": 8, "kappa": 0.21}
    assert ds.attrs["seed"] == 7 and ds.attrs["rule"] == "hmc_phi4" and ds.attrs["theory"] == "phi4"
    assert json.loads(ds.attrs["inputs"]) == [{"path": str(src), "sha256": sha256_file(src)}]
    versions = json.loads(ds.attrs["software_versions"])
    assert {"python", "torch", "numpy", "xarray", "snakemake"} <= set(versions)
    assert not list(tmp_path.glob("a/.*.tmp")), "temporary file left behind"


def test_history_appends_one_line_per_program(tmp_path):
    first = read_artifact(write_artifact(_dataset(), tmp_path / "1.nc", config={}, rule="one"))
    second = read_artifact(write_artifact(first, tmp_path / "2.nc", config={}, rule="two"))
    lines = second.attrs["history"].splitlines()
    assert len(lines) == 2 and lines[0].endswith("one") and lines[1].endswith("two")


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = write_artifact(_dataset(), tmp_path / "ens.nc", config={}, rule="r")
    before = sha256_file(path)
    bad = _dataset().assign(obj=("config", np.array([object(), object(), object()])))
    with pytest.raises(Exception):
        write_artifact(bad, path, config={}, rule="r")
    assert sha256_file(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ens.nc"]


@pytest.mark.parametrize("content", [b"", b"this is not netcdf"])
def test_unreadable_file_error_names_file(tmp_path, content):
    path = tmp_path / "broken.nc"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match="broken.nc"):
        read_artifact(path)


def test_truncated_file_error_names_file(tmp_path):
    path = write_artifact(_dataset(), tmp_path / "full.nc", config={}, rule="r")
    data = path.read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cut.nc"):
        read_artifact(cut)


def test_missing_file_error_names_file(tmp_path):
    with pytest.raises(ArtifactError, match="nowhere.nc"):
        read_artifact(tmp_path / "nowhere.nc")


def test_tampered_input_is_detected(tmp_path):
    src = write_artifact(_dataset(), tmp_path / "ens.nc", config={}, rule="hmc")
    out = read_artifact(write_artifact(_dataset(), tmp_path / "obs.nc", config={}, rule="measure",
                                       inputs=[src]))
    assert check_inputs(out) == []
    with open(src, "ab") as fh:
        fh.write(b"\0")
    problems = check_inputs(out)
    assert len(problems) == 1 and "ens.nc" in problems[0] and "mismatch" in problems[0]
    src.unlink()
    assert "missing" in check_inputs(out)[0]


def test_sigterm_during_write_leaves_no_partial_file(tmp_path):
    """A job killed by SIGTERM (SLURM time limit) unwinds through atomic_path: no temp file."""
    import signal
    import subprocess
    import sys
    import time
    script = (
        "import signal, time\n"
        "from physml.cli.main import _exit_on_sigterm\n"
        "from physml.io.artifacts import atomic_path\n"
        "signal.signal(signal.SIGTERM, _exit_on_sigterm)\n"
        f"with atomic_path({str(tmp_path / 'out.nc')!r}) as tmp:\n"
        "    tmp.write_text('partial')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert list(tmp_path.iterdir()) == []
