"""Lineage of an artifact: walk its recorded ``inputs`` back to the ensembles that
started it, re-hashing every file on the way."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from physml.io.artifacts import ArtifactError, read_artifact, sha256_file

NODE_ATTRS = ("rule", "config_sha256", "seed", "git_commit", "git_dirty", "created")


@dataclass
class Node:
    """One file of the lineage; ``problem`` is set when it is missing, changed or unreadable."""

    path: str
    attrs: dict = field(default_factory=dict)
    problem: str | None = None
    inputs: list["Node"] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every problem in this subtree, as 'path: what'."""
        own = [f"{self.path}: {self.problem}"] if self.problem else []
        return own + [p for child in self.inputs for p in child.problems()]

    def to_dict(self) -> dict:
        return {"path": self.path, **self.attrs, "problem": self.problem,
                "inputs": [c.to_dict() for c in self.inputs]}


def lineage(path: str | Path, expected_sha256: str | None = None, _seen: dict | None = None) -> Node:
    """The lineage tree of ``path``; ``expected_sha256`` is what the parent recorded."""
    seen = {} if _seen is None else _seen
    node = Node(str(path))
    p = Path(path)
    if not p.is_file():
        node.problem = "missing"
        return node
    digest = sha256_file(p)
    if expected_sha256 is not None and digest != expected_sha256:
        node.problem = f"sha256 mismatch: recorded {expected_sha256[:12]}..., now {digest[:12]}..."
    if digest in seen:
        node.attrs = dict(seen[digest].attrs)
        return node
    if p.suffix == ".json":  # a figure's provenance sidecar
        attrs = json.loads(p.read_text())
        inputs = attrs.get("inputs", [])
    elif p.suffix == ".nc":
        try:
            attrs = read_artifact(p).attrs
        except ArtifactError as exc:
            node.problem = node.problem or str(exc)
            return node
        inputs = json.loads(attrs.get("inputs", "[]"))
    else:
        return node
    node.attrs = {k: (attrs[k].item() if hasattr(attrs[k], "item") else attrs[k])
                  for k in NODE_ATTRS if k in attrs}
    for rec in inputs:
        node.inputs.append(lineage(rec["path"], rec["sha256"], seen))
    seen[digest] = node
    return node


def format_tree(node: Node, indent: str = "") -> str:
    """A readable tree, one line per file."""
    a = node.attrs
    desc = (f"rule={a.get('rule', '?')} config={str(a.get('config_sha256', '?'))[:12]} "
            f"seed={a.get('seed', '?')} git={str(a.get('git_commit', '?'))[:10]}"
            f"{'+dirty' if a.get('git_dirty') else ''} created={a.get('created', '?')}") if a else ""
    status = f"  !! {node.problem}" if node.problem else ""
    lines = [f"{indent}{node.path}  {desc}{status}".rstrip()]
    for child in node.inputs:
        lines.append(format_tree(child, indent + "  "))
    return "\n".join(lines)
