"""Small C kernels (``physml/kernels/*.c``), compiled on first use and cached.

Some inner loops (SGD of many tiny networks, a leapfrog trajectory of one lattice
field) are dominated by per-call overhead or memory traffic in numpy / torch; the
kernels do the same arithmetic in one fused loop.  Every kernel has a numpy or torch
twin in the calling module, which the tests compare it against and which is used
where no C compiler is available.

Compilation: ``$CC`` (default ``cc``) with ``-O3 -std=gnu11 -fPIC -shared``, once per
source and compiler, into ``$PHYSML_KERNEL_CACHE`` (default
``$XDG_CACHE_HOME/physml/kernels``, i.e. ``~/.cache/physml/kernels``); the library's
name carries the sha256 of source, command and platform, and it is written to a
temporary file and renamed, so concurrent jobs never load a half-written library.
x86-64 kernels are compiled as ``target_clones`` (AVX-512, AVX2, baseline) and pick
their version at load time, so one cached library serves every node of a cluster
that shares a home directory.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
FLAGS = ("-O3", "-std=gnu11", "-fPIC", "-shared", "-Wall", "-Wno-psabi")
ENGINES = ("auto", "native", "reference")

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
def load(name: str) -> ctypes.CDLL:
    """The compiled kernel ``kernels/<name>.c`` (compiling it if not cached yet).

    Raises :class:`KernelUnavailable` with the compiler's message if that fails.
    """
    source = KERNEL_DIR / f"{name}.c"
    if not source.is_file():
        raise KernelUnavailable(f"no kernel source {source}")
    cmd = [*_compiler(), *FLAGS]
    key = hashlib.sha256(source.read_bytes() + repr((cmd, platform.machine(), sys.platform)).encode())
    target = cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"
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
        os.replace(tmp, target)
    try:
        return ctypes.CDLL(str(target))
    except OSError as exc:
        raise KernelUnavailable(f"cannot load {target}: {exc}") from exc


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
