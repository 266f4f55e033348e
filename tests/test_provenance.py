"""The provenance audit: refuses files physml did not write, reports how artifacts were made,
finds inputs from any working directory and in a copied results tree, checks every artifact's
own contents against its checksums, and stops on a cyclic lineage."""

import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from physml.cli.main import main
from physml.io.artifacts import artifact_inputs, read_artifact, write_artifact


def _audit(*argv) -> int:
    """Exit status of ``physml provenance ARGV`` (returned or raised)."""
    try:
        return main(["provenance", *argv])
    except SystemExit as exc:
        return exc.code


def _ds():
    return xr.Dataset({"phi": (("config", "x"), np.arange(6.0).reshape(3, 2))}, attrs={"theory": "phi4"})


def _foreign(tmp_path, kind):
    """A file or folder that carries no physml provenance."""
    path = tmp_path / {"netcdf": "foreign.nc", "readme": "README.md", "model": "model.pt",
                       "json": "data.json", "dir": "results"}[kind]
    if kind == "netcdf":
        _ds().to_netcdf(path, engine="netcdf4")
    elif kind == "readme":
        path.write_text("# notes\n")
    elif kind == "model":
        torch.save({"weight": torch.zeros(3)}, path)
    elif kind == "json":
        path.write_text(json.dumps({"figure": "x", "inputs": []}))
    else:
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["netcdf", "readme", "model", "json", "dir"])
def test_audit_refuses_a_file_without_physml_provenance(tmp_path, capsys, kind):
    path = _foreign(tmp_path, kind)
    assert _audit(str(path)) == 2
    out, err = capsys.readouterr()
    assert "OK" not in out
    assert len(err.strip().splitlines()) == 1 and path.name in err and "not a physml" in err


def test_audit_reports_a_dirty_checkout_and_another_version(tmp_path, capsys):
    path = write_artifact(_ds(), tmp_path / "ens.nc", config={}, rule="hmc_phi4", seed=1)
    ds = read_artifact(path)
    ds.attrs.update(git_dirty=1, physml_version="0.0.1", git_commit="0123456789abcdef")
    ds.to_netcdf(path, engine="netcdf4")
    assert _audit(str(path)) == 0
    out = capsys.readouterr().out
    assert "git_dirty" in out and "made by physml 0.0.1" in out and "commit 0123456789" in out
    assert _audit("--json", str(path)) == 0
    assert len(json.loads(capsys.readouterr().out)["warnings"]) == 3


def test_inputs_are_found_from_any_directory_and_in_a_copy(tmp_path, monkeypatch, capsys):
    wf = tmp_path / "wf"
    (wf / "results").mkdir(parents=True)
    monkeypatch.chdir(wf)      # jobs run in the workflow directory with relative paths
    ens = write_artifact(_ds(), "results/ens.nc", config={}, rule="hmc_phi4", seed=1)
    write_artifact(_ds(), "results/obs.nc", config={}, rule="measure", inputs=[ens])
    obs = read_artifact(wf / "results/obs.nc")
    assert obs.attrs["root"] == str(wf) and obs.attrs["artifact_path"] == "results/obs.nc"
    assert artifact_inputs(obs)[0]["path"] == "results/ens.nc"
    assert artifact_inputs(obs)[0]["abspath"] == str(wf / "results/ens.nc")

    monkeypatch.chdir(tmp_path)
    assert _audit("wf/results/obs.nc") == 0
    assert "rule=hmc_phi4" in capsys.readouterr().out
    shutil.copytree(wf / "results", tmp_path / "copy" / "results")
    with open(tmp_path / "copy/results/ens.nc", "ab") as fh:   # the copy's input, not the original
        fh.write(b"\0")
    assert _audit("--json", str(tmp_path / "copy/results/obs.nc")) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert problems == [p for p in problems if "copy/results/ens.nc" in p and "mismatch" in p] != []
    (tmp_path / "copy/results/ens.nc").unlink()    # gone from the copy: found at its absolute path
    assert _audit(str(tmp_path / "copy/results/obs.nc")) == 0
    assert str(wf / "results/ens.nc") in capsys.readouterr().out


def test_audit_shows_the_engine_each_job_ran(tmp_path, capsys):
    ds = _ds()
    ds.attrs["hmc_engine"] = "native"
    path = write_artifact(ds, tmp_path / "ens.nc", config={}, rule="hmc_phi4", seed=1)
    cell = _ds().assign_attrs(sgd_engine="avx2")
    write_artifact(cell, tmp_path / "cell.nc", config={}, rule="phase_cell", seed=1, inputs=[path])
    assert _audit(str(tmp_path / "cell.nc")) == 0
    out = capsys.readouterr().out
    assert "rule=phase_cell" in out and "engine=avx2" in out and "engine=native" in out


def _flip(path, value: float) -> None:
    data = bytearray(path.read_bytes())
    data[data.index(np.float64(value).tobytes()) + 3] ^= 0x10
    path.write_bytes(data)


@pytest.mark.parametrize("which", ["artifact", "input"])
def test_audit_finds_a_flipped_bit_in_the_artifact_or_an_input(tmp_path, capsys, which):
    ens = write_artifact(_ds().assign(phi=_ds()["phi"] + 0.123456789), tmp_path / "ens.nc", config={},
                         rule="hmc_phi4", seed=1)
    obs = write_artifact(xr.Dataset({"chi2": ((), 0.987654321), "chi2_err": ((), 0.1)}), tmp_path / "obs.nc",
                         config={}, rule="measure", inputs=[ens])
    assert _audit(str(obs)) == 0
    assert "contents match their checksums" in capsys.readouterr().out
    if which == "artifact":
        _flip(obs, 0.987654321)
    else:
        _flip(ens, 0.123456789)
    assert _audit("--json", str(obs)) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    bad = "obs.nc" if which == "artifact" else "ens.nc"
    assert any(p.startswith(str(tmp_path / bad)) and "contents corrupted: variable" in p for p in problems), problems


def test_audit_finds_a_flipped_bit_in_a_model_file(tmp_path, capsys):
    """Model files are zip archives: the CRC-32 of each entry (torch does not check it)."""
    from physml.diffusion.model import MODEL_FORMAT
    from physml.io.artifacts import provenance_attrs
    model = tmp_path / "model.pt"
    torch.save({"format": MODEL_FORMAT, "provenance": provenance_attrs({}, "train", 1),
                "state_dict": {"w": torch.full((64,), 0.123456789, dtype=torch.float64)}}, model)
    assert _audit(str(model)) == 0
    _flip(model, 0.123456789)
    assert _audit(str(model)) == 1
    assert "model.pt: contents corrupted: entry model/data/0 fails its CRC-32" in capsys.readouterr().out


def test_a_cyclic_lineage_is_one_clear_error(tmp_path, capsys):
    """An artifact written over its own input (as `measure same.nc --out same.nc` once did)."""
    path = write_artifact(_ds(), tmp_path / "same.nc", config={}, rule="hmc_phi4", seed=1)
    write_artifact(_ds(), path, config={}, rule="measure", inputs=[path])
    assert _audit(str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "same.nc: cyclic lineage" in err[0], err


def test_an_artifact_without_checksums_is_noted(tmp_path, capsys):
    """Artifacts written before checksums were recorded still audit, with a note."""
    from physml.io.artifacts import provenance_attrs
    path = tmp_path / "old.nc"
    _ds().assign_attrs(provenance_attrs({}, "hmc_phi4", 1)).to_netcdf(path, engine="netcdf4")
    assert _audit(str(path)) == 0
    assert "carries no checksums of its contents" in capsys.readouterr().out


class _Hostile:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_hostile_model_file_runs_no_code(tmp_path, capsys):
    from physml.diffusion.model import MODEL_FORMAT, read_model_file
    marker, model = tmp_path / "pwned", tmp_path / "model.pt"
    torch.save({"format": MODEL_FORMAT, "state_dict": {"w": _Hostile(marker)}}, model)
    with pytest.raises(ValueError, match="model.pt: not a physml score model file"):
        read_model_file(model)
    assert main(["diffusion", "sample", str(model), "--L", "8", "--n-configs", "4", "--seed", "1",
                 "--out", str(tmp_path / "s.nc"), "--no-progress"]) == 2
    assert _audit(str(model)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("model.pt" in line for line in err)
    assert not marker.exists() and not (tmp_path / "s.nc").exists()
    torch.load(model, weights_only=False)   # the control: a plain load would have run it
    assert marker.exists()
