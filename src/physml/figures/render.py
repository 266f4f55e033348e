"""Writing a named figure: PDF and PNG (atomically) plus a JSON provenance sidecar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from physml.io.artifacts import atomic_path, provenance_attrs  # noqa: E402


def save_figure(fig, stem: str | Path, *, name: str, rule: str, inputs: Iterable[str],
                config: dict | None = None) -> list[Path]:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png`` and write ``stem.json`` with the
    provenance of the data it plots (the sha256 of every input artifact)."""
    stem = Path(stem)
    inputs = list(inputs)
    prov = provenance_attrs(config or {"figure": name}, rule, None, inputs, out=stem.with_suffix(".json"))
    metadata = {"Title": name, "Subject": f"physml figure; inputs sha256 in {stem.name}.json",
                "Keywords": f"git_commit={prov['git_commit']} config_sha256={prov['config_sha256']}"}
    written = []
    for ext in (".pdf", ".png"):
        target = stem.with_suffix(ext)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext[1:], dpi=150, bbox_inches="tight",
                        metadata=metadata if ext == ".pdf" else {"Title": name})
        written.append(target)
    with atomic_path(stem.with_suffix(".json")) as tmp:
        prov["inputs"] = json.loads(prov["inputs"])
        tmp.write_text(json.dumps({"figure": name, **prov}, indent=2, sort_keys=True))
    written.append(stem.with_suffix(".json"))
    plt.close(fig)
    return written
