"""Run-time choice of the torch device and thread count (torch is imported by the functions
that need it, so that :func:`keep_freed_memory` serves torch-free verbs too)."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def select_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA when available, else the CPU; ``cpu``/``cuda`` force one."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def set_threads(threads: int) -> None:
    """One torch intra-op pool of ``threads`` (match the Snakemake rule's threads), and
    :func:`keep_freed_memory` for the many short-lived field-sized temporaries."""
    import torch

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    keep_freed_memory()


def keep_freed_memory(limit: int = 1 << 28) -> bool:
    """Ask glibc to serve allocations below ``limit`` bytes from its heap and not hand freed
    memory back to the OS at once.  By default each CPU tensor above 128 KiB is a fresh
    mmap whose pages fault in again on every use; for batched HMC on 32 x 32 fields that
    halved the throughput (measured with benchmarks/hmc_phi4.py at 256 chains).  Returns
    False (and changes nothing) where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, limit)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2 * limit))
    except (OSError, AttributeError, TypeError):
        return False
