"""Lineage of an artifact: walk its recorded ``inputs`` back to the ensembles that
started it (through model files to their training ensemble), re-hashing every file on
the way, checking each file's contents against the checksums it carries
(:func:`physml.io.artifacts.integrity_problems`), and noting what a reviewer should know
(a dirty checkout, another version).  A lineage that returns to a file already on the
path (an artifact written over one of its own inputs) raises :class:`ArtifactError`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4

from physml import __version__
from physml.io.artifacts import (ArtifactError, file_format, git_state, integrity_problems, locate_input,
                                 sha256_file)

ENGINE_ATTRS = ("hmc_engine", "sgd_engine")   # the code a job ran, recorded by the verbs that choose
NODE_ATTRS = ("rule", "config_sha256", "seed", "physml_version", "git_commit", "git_dirty", "created",
              *ENGINE_ATTRS)
REQUIRED = ("physml_version", "git_commit", "config_sha256", "rule", "inputs")


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance attributes of a physml artifact (NetCDF), figure sidecar (JSON) or
    model file, with ``inputs`` as a list; :class:`ArtifactError` naming the file for
    anything else (a directory, a foreign NetCDF, any other file)."""
    p = Path(path)
    if p.is_dir():
        raise ArtifactError(f"{p}: is a directory, not a physml artifact")
    if not p.is_file():
        raise ArtifactError(f"{p}: no such file")
    if file_format(p) == "netcdf":
        try:
            with netCDF4.Dataset(p) as nc:
                attrs = dict(nc.__dict__)
        except OSError as exc:
            raise ArtifactError(f"{p}: not a readable NetCDF artifact ({exc})") from None
    elif file_format(p) == "zip":
        from physml.diffusion.model import read_model_file   # torch: only for model files
        try:
            attrs = dict(read_model_file(p).get("provenance") or {})
        except (ValueError, OSError) as exc:
            raise ArtifactError(str(exc)) from None
    else:
        try:
            attrs = json.loads(p.read_text())
        except (UnicodeDecodeError, ValueError):
            attrs = None
        if not isinstance(attrs, dict):
            raise ArtifactError(f"{p}: not a physml artifact (expected a NetCDF artifact, "
                                "a figure's .json sidecar or a model file)")
    missing = [k for k in REQUIRED if k not in attrs]
    if missing:
        raise ArtifactError(f"{p}: not a physml artifact (no provenance attributes "
                            f"{', '.join(missing)})")
    if isinstance(attrs["inputs"], str):
        attrs["inputs"] = json.loads(attrs["inputs"])
    return attrs


@dataclass
class Node:
    """One file of the lineage; ``problem`` is set when it is missing, changed or unreadable,
    ``notes`` say what a reviewer should know about how it was made."""

    path: str
    attrs: dict = field(default_factory=dict)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    inputs: list["Node"] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every problem in this subtree, as 'path: what'."""
        own = [f"{self.path}: {self.problem}"] if self.problem else []
        return own + [p for child in self.inputs for p in child.problems()]

    def warnings(self) -> list[str]:
        """Every note in this subtree, as 'path: what', without repeats."""
        own = [f"{self.path}: {n}" for n in self.notes]
        return list(dict.fromkeys(own + [w for child in self.inputs for w in child.warnings()]))

    def to_dict(self) -> dict:
        return {"path": self.path, **self.attrs, "problem": self.problem, "notes": self.notes,
                "inputs": [c.to_dict() for c in self.inputs]}


def _notes(attrs: dict, checkout: tuple[str, int]) -> list[str]:
    """What differs from a clean build with this checkout."""
    notes = []
    if int(attrs.get("git_dirty", 0)):
        notes.append(f"made from a checkout with uncommitted changes (git_dirty) at "
                     f"{str(attrs.get('git_commit'))[:10]}")
    if str(attrs.get("physml_version")) != str(__version__):
        notes.append(f"made by physml {attrs.get('physml_version')}, this checkout is {__version__}")
    if checkout[0] != "unknown" and str(attrs.get("git_commit")) != checkout[0]:
        notes.append(f"made at commit {str(attrs.get('git_commit'))[:10]}, this checkout is at "
                     f"{checkout[0][:10]}")
    return notes


def lineage(path: str | Path, expected_sha256: str | None = None, _seen: dict | None = None,
            _checkout: tuple[str, int] | None = None, _path: tuple[str, ...] = ()) -> Node:
    """The lineage tree of ``path``; ``expected_sha256`` is what the parent recorded.
    The top file must be a physml artifact (else :class:`ArtifactError`); an input without
    provenance is only re-hashed."""
    seen = {} if _seen is None else _seen
    checkout = git_state() if _checkout is None else _checkout
    node = Node(str(path))
    p = Path(path)
    here = os.path.realpath(p)
    if here in _path:
        loop = " -> ".join([*_path[_path.index(here):], here])
        raise ArtifactError(f"{p}: cyclic lineage, the file is among its own inputs ({loop}): it was "
                            "written over one of its inputs")
    if expected_sha256 is None:
        attrs = read_provenance(p)
        digest = sha256_file(p)
    else:
        if not p.is_file():
            node.problem = "missing"
            return node
        digest = sha256_file(p)
        if digest != expected_sha256:
            node.problem = f"sha256 mismatch: recorded {expected_sha256[:12]}..., now {digest[:12]}..."
        if digest in seen:
            node.attrs, node.notes = dict(seen[digest].attrs), list(seen[digest].notes)
            return node
        try:
            attrs = read_provenance(p)
        except ArtifactError as exc:
            node.notes.append(str(exc).removeprefix(f"{p}: ") + ": re-hashed only")
            return node
    node.attrs = {k: (attrs[k].item() if hasattr(attrs[k], "item") else attrs[k])
                  for k in NODE_ATTRS if k in attrs}
    node.notes = _notes(attrs, checkout)
    corrupted = integrity_problems(p)
    if corrupted:
        node.problem = "; ".join(filter(None, [node.problem, "contents corrupted: " + "; ".join(corrupted)]))
    if file_format(p) == "netcdf" and "content_sha256" not in attrs:
        node.notes.append("carries no checksums of its contents (written before they were recorded)")
    for rec in attrs["inputs"]:
        where = locate_input(rec, attrs, p)
        node.inputs.append(lineage(where, rec["sha256"], seen, checkout, (*_path, here)))
    seen[digest] = node
    return node


def format_tree(node: Node, indent: str = "") -> str:
    """A readable tree, one line per file."""
    a = node.attrs
    desc = (f"rule={a.get('rule', '?')} config={str(a.get('config_sha256', '?'))[:12]} "
            f"seed={a.get('seed', '?')} git={str(a.get('git_commit', '?'))[:10]}"
            f"{'+dirty' if a.get('git_dirty') else ''} physml={a.get('physml_version', '?')}"
            f"{''.join(f' engine={a[k]}' for k in ENGINE_ATTRS if k in a)}"
            f" created={a.get('created', '?')}") if a else ""
    status = f"  !! {node.problem}" if node.problem else ""
    lines = [f"{indent}{node.path}  {desc}{status}".rstrip()]
    for child in node.inputs:
        lines.append(format_tree(child, indent + "  "))
    return "\n".join(lines)
