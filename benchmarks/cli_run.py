"""Shared by the benchmarks that drive the command line: run one `physml` verb as a user would."""

from __future__ import annotations

import subprocess
import sys
import time


def physml(*args: str) -> float:
    """Run ``python -m physml ARGS --no-progress``; its wall time in seconds (raises on failure)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "physml", *args, "--no-progress"], check=True)
    return time.perf_counter() - t0
