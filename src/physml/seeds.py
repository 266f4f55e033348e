"""Per-job seeds derived from the config's base seed and the job's parameters."""

from __future__ import annotations

import hashlib


def derive_seed(base: int, *parts: object) -> int:
    """A 31-bit seed from sha256 of the base seed and the parts' text (stable across runs
    and platforms, unlike Python's ``hash``)."""
    text = "/".join([str(int(base)), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
