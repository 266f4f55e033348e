"""Artifacts: round trip, provenance attributes, atomic writes, clear errors, tamper detection
(of inputs, and of an artifact's own contents by its checksums), non-finite values refused."""

import json

import numpy as np
import pytest
import xarray as xr

from physml.io.artifacts import (PROVENANCE_KEYS, ArtifactError, atomic_path, check_inputs,
                                 content_problems, read_artifact, sha256_file, write_artifact)


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
    assert json.loads(ds.attrs["inputs"]) == [{"path": str(src), "abspath": str(src),  # outside the cwd
                                               "sha256": sha256_file(src)}]
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


def test_inputs_are_found_from_an_artifact_written_outside_the_working_directory(tmp_path, monkeypatch):
    """An input below the working directory (recorded relative to it) and the artifact
    outside it (recorded absolute): the artifact's location is no root to look below."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    src = write_artifact(_dataset(), "ens.nc", config={}, rule="hmc")
    path = write_artifact(_dataset(), tmp_path / "out" / "obs.nc", config={}, rule="measure", inputs=[src])
    ds = read_artifact(path)
    assert ds.attrs["artifact_path"] == str(path) and json.loads(ds.attrs["inputs"])[0]["path"] == "ens.nc"
    assert check_inputs(ds, artifact=path) == []



@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_job_killed_during_a_write_leaves_the_previous_artifact_intact(tmp_path, sig):
    """SIGTERM (a SLURM time limit) unwinds through atomic_path and leaves no temporary file;
    SIGKILL leaves one beside it, never a half-written artifact."""
    import signal
    import subprocess
    import sys
    path = write_artifact(_dataset(), tmp_path / "ens.nc", config={}, rule="r")
    before = sha256_file(path)
    script = (
        "import signal, time\n"
        "from physml.cli.main import _exit_on_sigterm\n"
        "from physml.io.artifacts import atomic_path\n"
        "signal.signal(signal.SIGTERM, _exit_on_sigterm)\n"
        f"with atomic_path({str(path)!r}) as tmp:\n"
        "    tmp.write_bytes(b'half an artifact')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(getattr(signal, sig))
    code = proc.wait(timeout=30)
    assert sha256_file(path) == before and read_artifact(path)["phi"].shape == (3, 2)
    if sig == "SIGTERM":
        assert code == 128 + signal.SIGTERM and [p.name for p in tmp_path.iterdir()] == ["ens.nc"]
    else:
        assert code == -signal.SIGKILL


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_artifacts_honour_the_umask(tmp_path, mask, mode):
    """The temporary file's 0600 does not survive the rename: the mode is what the umask allows."""
    import os
    old = os.umask(mask)
    try:
        path = write_artifact(_dataset(), tmp_path / "ens.nc", config={}, rule="r")
        with atomic_path(tmp_path / "table.csv") as tmp:
            tmp.write_text("a,b\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert (tmp_path / "table.csv").stat().st_mode & 0o777 == mode


def _flip(path, needle: bytes) -> None:
    """Flip one bit inside the first occurrence of ``needle`` in the file."""
    data = bytearray(path.read_bytes())
    data[data.index(needle) + 2] ^= 0x10
    path.write_bytes(data)


# variable -> bytes of its stored values: an array (Fletcher-32 and sha256), a scalar and
# strings (sha256 only: HDF5 has no filter for them)
STORED = {"phi": np.float64(0.123456789).tobytes(), "scalar": np.float64(0.987654321).tobytes(),
          "names": b"abcdefgh"}


@pytest.mark.parametrize("variable", sorted(STORED))
def test_a_flipped_bit_in_any_variable_fails_the_read_naming_the_file(tmp_path, variable):
    import netCDF4
    ds = xr.Dataset({"phi": (("config", "x"), np.full((3, 2), 0.123456789)), "scalar": ((), 0.987654321),
                     "names": (("k",), np.array(["abcdefgh", "ijklmnop"], dtype=object))})
    path = write_artifact(ds, tmp_path / "ens.nc", config={}, rule="r")
    with netCDF4.Dataset(path) as nc:
        assert nc["phi"].filters()["fletcher32"]
    assert content_problems(path) == [] and read_artifact(path)["scalar"] == 0.987654321
    _flip(path, STORED[variable])
    assert len(content_problems(path)) == 1
    with pytest.raises(ArtifactError, match=rf"ens.nc: corrupted since it was written: variable '{variable}'"):
        read_artifact(path)


def test_an_edited_config_fails_the_read(tmp_path):
    """A bit flipped in the attributes fails HDF5's own header checksums; an attribute rewritten
    by a tool (ncatted, netCDF4) fails the config's sha256."""
    import netCDF4
    path = write_artifact(_dataset(), tmp_path / "ens.nc", config={"kappa": 0.21}, rule="r")
    copy = tmp_path / "copy.nc"
    copy.write_bytes(path.read_bytes())
    _flip(copy, b'"kappa":0.21')
    with pytest.raises(ArtifactError, match="copy.nc: not a readable NetCDF artifact"):
        read_artifact(copy)
    with netCDF4.Dataset(path, "a") as nc:
        nc.config_json = nc.config_json.replace("0.21", "0.27")
    with pytest.raises(ArtifactError, match="ens.nc: corrupted .*config_json no longer matches config_sha256"):
        read_artifact(path)


def test_a_non_finite_ensemble_is_not_written(tmp_path):
    ds = _dataset().assign_attrs(acceptance_rate=0.0).where(_dataset()["phi"] > 0)   # phi[0, 0] -> NaN
    with pytest.raises(ArtifactError) as info:
        write_artifact(ds, tmp_path / "out.nc", config={}, rule="r")
    words = ["out.nc: not written", "NaN or infinity", "phi (1 of 6 values)", "acceptance 0.000"]
    assert all(w in str(info.value) for w in words), info.value
    assert list(tmp_path.iterdir()) == []


def test_non_finite_observables_are_flagged(tmp_path):
    """Observables are written (a table shows the row), flagged by the attribute non_finite;
    tau_int is undefined for some estimators and not flagged."""
    obs = xr.Dataset({"chi2": ((), np.inf), "chi2_err": ((), 0.1), "tau_int_chi2": ((), np.nan),
                      "tau_int_chi2_err": ((), np.nan)}, attrs={"theory": "phi4"})
    flagged = read_artifact(write_artifact(obs, tmp_path / "obs.nc", config={}, rule="measure"))
    assert flagged.attrs["non_finite"] == "chi2 (1 of 1 values)"
    clean = read_artifact(write_artifact(flagged.assign(chi2=1.0), tmp_path / "o2.nc", config={}, rule="r"))
    assert "non_finite" not in clean.attrs


def test_other_artifacts_may_record_nan(tmp_path):
    """A diverged run's loss is NaN by design (rmt, phases): only ensembles and observables are held."""
    ds = xr.Dataset({"last_batch_loss": (("seed",), [0.5, np.nan])}, attrs={"kind": "rmt_mlp"})
    assert np.isnan(read_artifact(write_artifact(ds, tmp_path / "w.nc", config={}, rule="r"))["last_batch_loss"][1])


def test_errors_name_the_path_never_the_temporary_file(tmp_path):
    target = tmp_path / "table.csv"
    with pytest.raises(ArtifactError) as info:
        with atomic_path(target) as tmp:
            raise OSError(f"cannot write {tmp}")
    assert str(info.value) == f"{target}: not written (cannot write {target})"
    (tmp_path / "good.nc").write_text("")
    with pytest.raises(ArtifactError, match="good.nc/e.nc: cannot write here") as info:
        with atomic_path(tmp_path / "good.nc" / "e.nc"):
            pass
    assert ".tmp" not in str(info.value) and sorted(p.name for p in tmp_path.iterdir()) == ["good.nc"]


def test_writing_over_a_directory_names_it(tmp_path):
    (tmp_path / "out.nc").mkdir()
    with pytest.raises(ArtifactError, match="out.nc: is a directory"):
        write_artifact(_dataset(), tmp_path / "out.nc", config={}, rule="r")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only)."""
    import os
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (no CAP_SYS_ADMIN in this container)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_gives_a_clear_error_and_no_partial_file(small_disk, capsys):
    from physml.cli.main import main
    out = small_disk / "ens.nc"
    assert main(["lattice", "hmc", "phi4", "--L", "8", "--kappa", "0.2", "--n-configs", "2048", "--n-chains", "8",
                 "--n-therm", "0", "--meas-interval", "1", "--seed", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ens.nc" in err and "space" in err.lower()
    assert list(small_disk.iterdir()) == []
