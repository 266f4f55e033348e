"""NetCDF artifacts that carry their own provenance.

Every artifact is an :class:`xarray.Dataset` written with the ``netcdf4`` engine
(pinned for reading and writing).  :func:`write_artifact` stamps the global
provenance attributes listed below and writes atomically: a temporary file in the
destination folder is renamed over the target only once it is complete, so a
killed job never leaves a half-written artifact.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import xarray as xr

from physml import __version__

ENGINE = "netcdf4"
PROVENANCE_KEYS = (
    "physml_version", "git_commit", "git_dirty", "software_versions", "config_json",
    "config_sha256", "rule", "seed", "created", "history", "inputs",
)


class ArtifactError(RuntimeError):
    """An artifact could not be read, or its provenance does not check out."""


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def canonical_json(obj: Any) -> str:
    """Sorted, compact JSON; numpy scalars and paths become plain values."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (np.ndarray,)):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def _git_state() -> tuple[str, int]:
    """(commit, dirty) of the git checkout holding this package, else ('unknown', 0)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return commit, int(bool(status.strip()))
    except (OSError, subprocess.SubprocessError):
        return "unknown", 0


def software_versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries that shape the numbers."""
    import importlib.metadata as md
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "xarray", "snakemake", "netCDF4", "scipy", "pyerrors"):
        try:
            versions[name] = str(md.version(name))
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_attrs(config: Mapping[str, Any], rule: str, seed: int | None,
                     inputs: Iterable[str | os.PathLike] = ()) -> dict[str, Any]:
    """Global attributes for a new artifact (all values plain ``str`` or ``int``)."""
    commit, dirty = _git_state()
    config_json = canonical_json(dict(config))
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "physml_version": str(__version__),
        "git_commit": commit,
        "git_dirty": dirty,
        "software_versions": canonical_json(software_versions()),
        "config_json": config_json,
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        "rule": str(rule),
        "seed": -1 if seed is None else int(seed),
        "created": now,
        "history": f"{now} physml {__version__} {rule}",
        "inputs": canonical_json([{"path": str(p), "sha256": sha256_file(p)} for p in inputs]),
    }


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success rename it over ``path``,
    on any error delete it, so ``path`` is either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_artifact(ds: xr.Dataset, path: str | os.PathLike, *, config: Mapping[str, Any],
                   rule: str, seed: int | None = None,
                   inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``ds`` to ``path`` as NetCDF with provenance, atomically.

    ``config`` holds the resolved parameters that made the artifact; ``inputs``
    the files it was computed from (each is hashed now).  Attributes already on
    ``ds`` are kept unless they are provenance keys; a ``history`` already there
    (copied from an input) gets this program's line appended.
    """
    ds = ds.copy()
    previous = ds.attrs.get("history")
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in PROVENANCE_KEYS}
    ds.attrs.update(provenance_attrs(config, rule, seed, inputs))
    if previous:
        ds.attrs["history"] = f"{previous}\n{ds.attrs['history']}"
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE)
    return Path(path)


def read_artifact(path: str | os.PathLike) -> xr.Dataset:
    """Load an artifact fully into memory; a missing, truncated or foreign file raises
    :class:`ArtifactError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            return ds.load()
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError variants
        raise ArtifactError(f"{path}: not a readable NetCDF artifact ({exc})") from exc


def artifact_config(ds: xr.Dataset) -> dict[str, Any]:
    """The resolved parameters stored in an artifact's ``config_json``."""
    return json.loads(ds.attrs["config_json"])


def artifact_inputs(ds: xr.Dataset) -> list[dict[str, str]]:
    """The ``[{path, sha256}]`` input records of an artifact."""
    return json.loads(ds.attrs.get("inputs", "[]"))


def check_inputs(ds: xr.Dataset) -> list[str]:
    """Re-hash the recorded inputs; return one message per missing or changed file."""
    problems = []
    for rec in artifact_inputs(ds):
        p = Path(rec["path"])
        if not p.is_file():
            problems.append(f"{p}: input is missing")
        elif sha256_file(p) != rec["sha256"]:
            problems.append(f"{p}: sha256 mismatch (recorded {rec['sha256'][:12]}..., "
                            f"now {sha256_file(p)[:12]}...)")
    return problems
