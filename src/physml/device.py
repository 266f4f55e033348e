"""Run-time choice of the torch device and thread count."""

from __future__ import annotations

import torch


def select_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA when available, else the CPU; ``cpu``/``cuda`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def set_threads(threads: int) -> None:
    """One torch intra-op pool of ``threads`` (match the Snakemake rule's threads)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
