"""Artifacts, their provenance and lineage."""

import os
from pathlib import Path


def umask() -> int:
    """The process's umask (read without changing it, from /proc where it can)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
