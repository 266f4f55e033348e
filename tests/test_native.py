"""Compiled kernels: cache location, clear errors and the fallback when no compiler works."""

import logging

import pytest

from physml import native


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSML_KERNEL_CACHE", str(tmp_path))
    native.load.cache_clear()
    native._warn_once.cache_clear()
    yield tmp_path
    native.load.cache_clear()
    native._warn_once.cache_clear()


def test_kernel_compiles_into_the_cache(fresh_cache):
    lib = native.load("sgd_teacher_student")
    assert hasattr(lib, "sgd_steps")
    built = list(fresh_cache.glob("sgd_teacher_student-*.so"))
    assert len(built) == 1 and not list(fresh_cache.glob("tmp*"))


def test_missing_compiler_is_named_and_auto_falls_back(fresh_cache, monkeypatch, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(native.KernelUnavailable, match="set CC to a C compiler"):
        native.load("sgd_teacher_student")
    with caplog.at_level(logging.WARNING, logger="physml.native"):
        assert native.use_native("sgd_teacher_student", "auto") is False
    assert "reference code" in caplog.text
    assert native.use_native("sgd_teacher_student", "reference") is False
    with pytest.raises(native.KernelUnavailable):
        native.use_native("sgd_teacher_student", "native")
    assert not list(fresh_cache.glob("*"))  # nothing half-written left behind


def test_compiler_error_is_reported(fresh_cache, monkeypatch):
    monkeypatch.setenv("CC", "cc -DNO_SUCH_FLAG -fno-such-option-xyz")
    with pytest.raises(native.KernelUnavailable, match="compiling sgd_teacher_student.c failed"):
        native.load("sgd_teacher_student")


def test_unknown_kernel_and_engine():
    with pytest.raises(native.KernelUnavailable, match="no kernel source"):
        native.load("no_such_kernel")
    with pytest.raises(ValueError, match="engine must be one of"):
        native.use_native("sgd_teacher_student", "gpu")
