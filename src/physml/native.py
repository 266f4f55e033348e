"""Small C kernels (``physml/kernels/*.c``), compiled on first use and cached.

Some inner loops (SGD of many tiny networks, a leapfrog trajectory of one lattice
field) are dominated by per-call overhead or memory traffic in numpy / torch; the
kernels do the same arithmetic in one fused loop.  Every kernel has a numpy or torch
twin in the calling module, which the tests compare it against and which is used
where no C compiler is available.

Compilation: ``$CC`` (default ``cc``) with ``-O3 -std=gnu11 -fPIC -shared``, once per
source and compiler, into ``$PHYSML_KERNEL_CACHE`` (default
``$XDG_CACHE_HOME/physml/kernels``, i.e. ``~/.cache/physml/kernels``); the library's
name carries the sha256 of source, command, the compiler's version (its first line of
``--version``) and platform, and it is written to a temporary file and renamed (with the
mode the umask allows), so concurrent jobs never load a half-written library.
x86-64 kernels hold versions for several instruction sets (:data:`CLONES`), so one
cached library serves every node of a cluster that shares a home directory.  Either the
compiler's ``target_clones`` picks one at load time, or the kernel exports one function
``<symbol>_<clone>`` per clone it has and ``int cpu_clones(void)``, the bitmask (bit i for
``CLONES[i]``) of those this CPU runs; then :func:`pick_clone` chooses, and
``$PHYSML_KERNEL_CLONE`` forces one (benchmarks, tests).

Calibration: :func:`calibration` measures rates once per kernel build, CPU and case, and
keeps them in ``<library>.calibration.json`` beside the compiled kernel (written to a
temporary file and renamed), so that ``auto`` can run whichever code is fastest here.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from physml.io import umask

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
FLAGS = ("-O3", "-std=gnu11", "-fPIC", "-shared", "-Wall", "-Wno-psabi")
ENGINES = ("auto", "native", "reference")
CLONES = ("avx512", "avx2", "baseline")  # x86-64-v4, x86-64-v3, the compiler's default; best first
CLONE_ENV = "PHYSML_KERNEL_CLONE"

log = logging.getLogger(__name__)


class KernelUnavailable(RuntimeError):
    """The kernel could not be compiled or loaded (no C compiler, compiler error, ...)."""


def cache_dir() -> Path:
    """Where compiled kernels are kept (see the module docstring)."""
    if os.environ.get("PHYSML_KERNEL_CACHE"):
        return Path(os.environ["PHYSML_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "physml" / "kernels"


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc"))


@functools.lru_cache(maxsize=None)
def compiler_version(compiler: tuple[str, ...]) -> str:
    """The first line of ``compiler --version``, or why there is none."""
    try:
        out = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if out.returncode == 0 and lines else f"unavailable (exit {out.returncode})"


def _library(name: str) -> tuple[Path, list[str], Path]:
    """Source, compile command and cached library of kernel ``name`` (the library's name
    carries the sha256 of source, command, compiler version and platform)."""
    source = KERNEL_DIR / f"{name}.c"
    if not source.is_file():
        raise KernelUnavailable(f"no kernel source {source}")
    cmd = [*_compiler(), *FLAGS]
    version = compiler_version(tuple(_compiler()))
    key = hashlib.sha256(source.read_bytes()
                         + repr((cmd, version, platform.machine(), sys.platform)).encode())
    return source, cmd, cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"


@functools.lru_cache(maxsize=None)
def load(name: str) -> ctypes.CDLL:
    """The compiled kernel ``kernels/<name>.c`` (compiling it if not cached yet).

    Raises :class:`KernelUnavailable` with the compiler's message if that fails.
    """
    source, cmd, target = _library(name)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            out = subprocess.run([*cmd, "-o", tmp, str(source), "-lm"], capture_output=True, text=True)
        except OSError as exc:
            os.unlink(tmp)
            raise KernelUnavailable(f"cannot compile {source.name}: {exc} (set CC to a C compiler)") from exc
        if out.returncode != 0:
            os.unlink(tmp)
            raise KernelUnavailable(f"compiling {source.name} failed ({' '.join(cmd)}):\n{out.stderr}")
        os.chmod(tmp, 0o755 & ~umask())
        os.replace(tmp, target)
    try:
        return ctypes.CDLL(str(target))
    except OSError as exc:
        raise KernelUnavailable(f"cannot load {target}: {exc}") from exc


def runnable_clones(name: str) -> tuple[str, ...]:
    """The clones of kernel ``name`` (one exporting ``cpu_clones``) that this CPU runs, best first."""
    lib = load(name)
    lib.cpu_clones.restype = ctypes.c_int
    mask = lib.cpu_clones()
    return tuple(clone for i, clone in enumerate(CLONES) if mask >> i & 1)


def pick_clone(name: str) -> str:
    """The clone of kernel ``name`` to run: ``$PHYSML_KERNEL_CLONE`` where set, else the best
    one this CPU runs.  Raises :class:`KernelUnavailable` if the forced clone cannot run here."""
    runnable = runnable_clones(name)
    forced = os.environ.get(CLONE_ENV)
    if not forced:
        return runnable[0]
    if forced not in runnable:
        raise KernelUnavailable(f"{CLONE_ENV}={forced}: this CPU runs only {', '.join(runnable)} "
                                f"of kernel {name} (clones: {', '.join(CLONES)})")
    return forced


def cpu_id() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`) and machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return f"{platform.processor()} ({platform.machine()})"


def calibration(name: str, case: str, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Rates ``measure()`` returned for kernel ``name`` on this CPU model and ``case``, measured
    at the first call and cached beside the compiled kernel (see the module docstring)."""
    load(name)
    path = _library(name)[2].with_suffix(".calibration.json")
    entry = f"{cpu_id()}; {case}"

    def read() -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    cached = read().get(entry)
    if cached is not None:
        return cached
    rates = measure()
    try:
        fd, tmp = tempfile.mkstemp(suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump({**read(), entry: rates}, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644 & ~umask())
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache: measure again next time
        log.warning("cannot cache the calibration of kernel %s in %s: %s", name, path, exc)
    return rates


def check_engine(engine: str) -> None:
    """Raise a ValueError naming :data:`ENGINES` unless ``engine`` is one of them."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def use_native(name: str, engine: str) -> bool:
    """Whether a computation with ``engine`` in :data:`ENGINES` runs the kernel ``name``.

    ``native`` demands it (raises :class:`KernelUnavailable`), ``reference`` never uses it,
    ``auto`` uses it when it compiles and otherwise logs a warning once and falls back.
    """
    check_engine(engine)
    if engine == "reference":
        return False
    try:
        load(name)
        return True
    except KernelUnavailable as exc:
        if engine == "native":
            raise
        _warn_once(name, str(exc))
        return False


@functools.lru_cache(maxsize=None)
def function(name: str, symbol: str, argtypes: tuple):
    """The C function ``symbol`` of kernel ``name``, with ctypes ``argtypes`` and no result."""
    f = getattr(load(name), symbol)
    f.argtypes = list(argtypes)
    f.restype = None
    return f


@functools.lru_cache(maxsize=None)
def _warn_once(name: str, why: str) -> None:
    log.warning("kernel %s unavailable, using the slower reference code: %s", name, why)
