"""A deterministic text corpus built from the Python standard library's docstrings.

Nothing is downloaded: the top-level ``*.py`` files of the running interpreter's standard
library (``sysconfig.get_paths()["stdlib"]``) are read in sorted order and parsed with
:mod:`ast` (never imported); the docstrings of every module, class and function are joined
with blank lines, restricted to printable ASCII plus newline, and cut at ``max_chars``.  The
text depends on the Python version and on the standard-library files the distribution ships
(a vendor may patch or omit modules), so both the version and the text's sha256 are recorded;
the sha256 identifies the text exactly (the Python Software Foundation licence permits
redistribution of these texts).
"""

from __future__ import annotations

import ast
import hashlib
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

_ALLOWED = set(map(chr, range(32, 127))) | {"\n"}


@dataclass(frozen=True)
class Corpus:
    """The text and its provenance."""

    text: str
    python_version: str
    sha256: str
    n_files: int


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree] + [n for n in ast.walk(tree)
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return [d for d in (ast.get_docstring(n, clean=True) for n in nodes) if d]


def build_stdlib_corpus(max_chars: int = 400_000, stdlib: str | Path | None = None) -> Corpus:
    """Docstrings of the standard library's top-level modules, at most ``max_chars`` characters."""
    if max_chars < 1000:
        raise ValueError(f"max_chars must be at least 1000, got {max_chars}")
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    if not files:
        raise FileNotFoundError(f"no standard-library modules found in {root}")
    parts, size, used = [], 0, 0
    for f in files:
        docs = _docstrings(f)
        if not docs:
            continue
        used += 1
        for d in docs:
            text = "".join(ch for ch in d if ch in _ALLOWED) + "\n\n"
            parts.append(text)
            size += len(text)
        if size >= max_chars:
            break
    text = "".join(parts)[:max_chars]
    if len(text) < max_chars:
        raise ValueError(f"the standard library in {root} yields only {len(text)} characters "
                         f"of docstrings, fewer than max_chars = {max_chars}")
    return Corpus(text, platform.python_version(), hashlib.sha256(text.encode()).hexdigest(), used)
