"""Compiled kernels: cache location, clear errors, the fallback when no compiler works, and
every SGD kernel clone this CPU runs against the numpy twin."""

import logging

import numpy as np
import pytest

from physml import native
from physml.io import umask
from physml.phases import teacher_student as ts


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
    assert all(hasattr(lib, f"sgd_steps_{clone}") for clone in native.runnable_clones("sgd_teacher_student"))
    built = list(fresh_cache.glob("sgd_teacher_student-*.so"))
    assert len(built) == 1 and not list(fresh_cache.glob("tmp*"))
    assert built[0].stat().st_mode & 0o777 == 0o755 & ~umask()   # readable by the group


def test_cache_key_includes_the_compiler_version(fresh_cache, monkeypatch):
    """Upgrading the compiler behind the same `cc` builds a new library."""
    assert native.compiler_version(("cc",)) and "unavailable" not in native.compiler_version(("cc",))
    assert native.compiler_version(("/nonexistent/cc",)).startswith("unavailable")
    before = native._library("sgd_teacher_student")[2]
    monkeypatch.setattr(native, "compiler_version", lambda compiler: "cc (GCC) 99.1")
    assert native._library("sgd_teacher_student")[2] != before


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


SGD = "sgd_teacher_student"


def _forced(clone, monkeypatch):
    """Force kernel clone ``clone`` through $PHYSML_KERNEL_CLONE, skipping clones this CPU cannot run."""
    if clone not in native.runnable_clones(SGD):
        pytest.skip(f"this CPU does not run the {clone} clone")
    monkeypatch.setenv(native.CLONE_ENV, clone)


@pytest.mark.parametrize("clone", native.CLONES)
def test_every_clone_matches_the_numpy_twin(clone, monkeypatch):
    """Each clone (the paper shape for every activation, and the generic padded path)
    against the numpy twin to the tolerance of tests/test_phases_model.py; a run alone gives
    the same bits as inside the batch."""
    _forced(clone, monkeypatch)
    for activation, widths, batch in (("tanh", (3, 32, 16), 4), ("relu", (3, 32, 16), 4),
                                      ("identity", (3, 32, 16), 4), ("tanh", (3, 20, 24), 3)):
        runs = ts.draw_runs(4, 1.0, seed=7, arch=ts.Architecture(*widths, activation=activation))
        data = ts.draw_data(runs, batch_size=batch, n_batches=20, n_test=4)
        lr = 0.05 if activation == "identity" else 0.5
        kw = dict(snapshot_steps=[150, 300], check_every=50)
        fast = ts.train_sgd(runs, data, lr, 300, engine="native", **kw)
        ref = ts.train_sgd(runs, data, lr, 300, engine="reference", **kw)
        assert (fast.engine, fast.clone, ref.clone) == ("native", clone, "none")
        np.testing.assert_allclose(fast.snapshots, ref.snapshots, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(fast.last_batch_loss, ref.last_batch_loss, rtol=2e-3, atol=1e-7)
        alone = ts.train_sgd(runs.select([2]), data.select([2]), lr, 300, engine="native", **kw)
        np.testing.assert_array_equal(alone.snapshots[:, 0], fast.snapshots[:, 2])


@pytest.mark.parametrize("clone", native.CLONES)
def test_every_clone_has_an_accurate_tanh(clone, monkeypatch):
    """Networks 1 -> 1 -> 16 -> 1 with first-layer feature tanh(10) = 1 (float32) and lr = 0:
    run r's loss is 1/2 (Z_r . tanh(u_r))^2 at its 16 pre-activations u_r = W0_r."""
    _forced(clone, monkeypatch)
    u = np.concatenate([np.geomspace(1e-6, 12, 40), -np.geomspace(1e-6, 12, 40), [0.0]])
    u = np.resize(u, (6, 16))
    runs = ts.draw_runs(6, 1.0, seed=2, arch=ts.Architecture(1, 1, 16))
    runs.M[:] = 1.0
    runs.W0[:, :, 0] = u
    x = np.full((6, 1, 1), 10.0, np.float32)
    data = ts.Dataset(x, np.zeros((6, 1), np.float32), x, np.zeros((6, 1), np.float32), 1)
    res = ts.train_sgd(runs, data, 0.0, 1, engine="native")
    s = np.tanh(u.astype(np.float32).astype(np.float64))
    expected = 0.5 * np.einsum("rk,rk->r", runs.Z.astype(np.float64), s) ** 2
    np.testing.assert_allclose(res.last_batch_loss, expected, rtol=2e-6, atol=1e-12)


def test_a_clone_this_cpu_cannot_run_is_refused(monkeypatch):
    monkeypatch.setenv(native.CLONE_ENV, "sse9")
    with pytest.raises(native.KernelUnavailable, match="PHYSML_KERNEL_CLONE=sse9: this CPU runs only"):
        native.pick_clone(SGD)
    monkeypatch.delenv(native.CLONE_ENV)
    assert native.pick_clone(SGD) == native.runnable_clones(SGD)[0]
    assert native.runnable_clones(SGD)[-1] == "baseline"


def test_auto_runs_the_fastest_code_of_its_cached_calibration(fresh_cache, monkeypatch):
    """auto runs whatever the calibration measured fastest, the numpy twin included; the
    rates are measured once per case and kept in a JSON file beside the compiled kernel."""
    fake = {"reference": 3.0, **{clone: 1.0 for clone in native.runnable_clones(SGD)}}
    measured = []
    monkeypatch.setattr(ts, "_calibrate", lambda arch, B, R: measured.append(R) or dict(fake))
    runs = ts.draw_runs(3, 1.0, seed=1)
    data = ts.draw_data(runs, 4, 5, 2)
    for _ in range(2):
        res = ts.train_sgd(runs, data, 0.1, 10, engine="auto")
        assert (res.engine, res.clone) == ("reference", "none")
    assert measured == [3]
    (cal,) = fresh_cache.glob("sgd_teacher_student-*.calibration.json")
    assert cal.with_suffix("").with_suffix(".so").is_file() and not list(fresh_cache.glob("tmp*"))
    fake["baseline"] = 5.0  # a new case (two runs) measures again
    res = ts.train_sgd(runs.select([0, 1]), data.select([0, 1]), 0.1, 10, engine="auto")
    assert (res.engine, res.clone, measured) == ("native", "baseline", [3, 2])
    monkeypatch.setenv(native.CLONE_ENV, native.runnable_clones(SGD)[0])  # forced: that clone or the twin
    if native.runnable_clones(SGD)[0] != "baseline":
        assert ts.train_sgd(runs.select([0, 1]), data.select([0, 1]), 0.1, 10, engine="auto").clone == "none"


def test_calibration_in_a_read_only_cache_is_measured_and_not_kept(fresh_cache, monkeypatch, caplog):
    native.load(SGD)

    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(native.tempfile, "mkstemp", read_only)
    with caplog.at_level(logging.WARNING, logger="physml.native"):
        assert native.calibration(SGD, "case", lambda: {"reference": 1.0}) == {"reference": 1.0}
    assert "cannot cache the calibration" in caplog.text and not list(fresh_cache.glob("*.json"))
