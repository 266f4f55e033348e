"""physml doctor: kernels and the engine each study will use, torch, SLURM."""

import pytest

from physml import native
from physml.cli.main import main


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSML_KERNEL_CACHE", str(tmp_path))
    native.load.cache_clear()
    yield tmp_path
    native.load.cache_clear()


def test_doctor_reports_kernels_engines_torch_and_slurm(fresh_cache, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "kernel phi4_leapfrog: compiles" in out and "kernel sgd_teacher_student: compiles" in out
    assert "hmc phi4: C kernel phi4_leapfrog" in out and "torch " in out and "CUDA" in out
    assert "SLURM executor plugin" in out and "sbatch" in out
    assert native.compiler_version(tuple(native._compiler())) in out


def test_doctor_without_a_compiler_or_slurm_says_what_runs_instead(fresh_cache, monkeypatch, capsys):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", str(fresh_cache))       # no sbatch either
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "kernel phi4_leapfrog: UNAVAILABLE" in out and "set CC to a C compiler" in out
    assert "hmc phi4: torch leapfrog (about 3x slower): kernel phi4_leapfrog does not compile here" in out
    assert "phases cell: numpy twin" in out
    assert "sbatch --test-only (asks the controller, submits nothing): not found on PATH" in out
