"""NetCDF artifacts that carry their own provenance.

Every artifact is an :class:`xarray.Dataset` written with the ``netcdf4`` engine
(pinned for reading and writing).  :func:`write_artifact` stamps the global
provenance attributes listed below and writes atomically: a temporary file in the
destination folder is renamed over the target only once it is complete, so a
killed job never leaves a half-written artifact; the file gets the mode the umask
allows (0644 under umask 022), as if created directly.

Paths.  ``root`` is the directory the job ran in (the workflow directory);
``artifact_path`` and each input's ``path`` are relative to it where they lie below it
(else absolute), with the absolute path beside each input (``abspath``).  An audit
finds the inputs from the artifact's own location (``artifact_path`` tells where the
root is now, so a copied or moved results tree still checks), else at ``abspath``.

Self-verification.  Every variable is stored with HDF5's Fletcher-32 checksum (where HDF5
allows one: arrays of numbers), and the global attribute ``content_sha256`` records the
sha256 of every variable's stored values (JSON, variable -> hex digest).  :func:`read_artifact`
checks both, and ``config_json`` against ``config_sha256``, before it returns, so a flipped
byte fails the read with the file's name (:func:`content_problems`).  Model files (torch's zip
archives) are checked by the CRC-32 of each entry (:func:`integrity_problems`).

Finite values (:func:`non_finite`).  :func:`write_artifact` refuses an ensemble whose
field, action or weights hold NaN or infinity, and flags observables whose value or error
does: their attribute ``non_finite`` names them (absent when all are finite).
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Mapping

import netCDF4
import numpy as np
import xarray as xr

from physml import __version__
from physml.io import umask

ENGINE = "netcdf4"
FULL_DISK = 1 << 20   # a write that fails with less free space than this (bytes) ran out of it
PROVENANCE_KEYS = (
    "physml_version", "git_commit", "git_dirty", "software_versions", "config_json",
    "config_sha256", "rule", "seed", "created", "history", "inputs", "root", "artifact_path",
    "content_sha256",
)
# variables of an ensemble that must be finite (observables: every value with an error)
FINITE_ENSEMBLE = ("phi", "theta", "action", "weight")
FLAG = "non_finite"   # the attribute that flags observables holding NaN or infinity
HDF5, CDF, ZIP = b"\x89HDF\r\n\x1a\n", b"CDF", b"PK\x03\x04"   # how each kind of file starts


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


def git_state() -> tuple[str, int]:
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


def _relative(path: str | os.PathLike, root: Path) -> str:
    """``path`` relative to ``root`` where it lies below it, else absolute."""
    path = Path(path).absolute()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def provenance_attrs(config: Mapping[str, Any], rule: str, seed: int | None,
                     inputs: Iterable[str | os.PathLike] = (),
                     out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Global attributes for a new artifact ``out`` (all values plain ``str`` or ``int``)."""
    commit, dirty = git_state()
    root = Path.cwd()
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
        "inputs": canonical_json([{"path": _relative(p, root), "abspath": str(Path(p).absolute()),
                                   "sha256": sha256_file(p)} for p in inputs]),
        "root": str(root),
        "artifact_path": "" if out is None else _relative(out, root),
    }


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int = 0o666):
    """Yield a temporary path beside ``path``; on success give it ``mode`` less the umask
    and rename it over ``path``, on any error (a full disk included) delete it, so ``path``
    is either the old file or the complete new one.  Errors name ``path``, never the
    temporary file."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path}: is a directory, expected a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot write here ({exc.strerror or exc})") from exc
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode & ~umask())
        os.replace(tmp, path)
    except Exception as exc:
        free = shutil.disk_usage(path.parent).free
        Path(tmp).unlink(missing_ok=True)
        if getattr(exc, "errno", None) == errno.ENOSPC or free < FULL_DISK:  # HDF5 hides the errno
            raise ArtifactError(f"{path}: no space left on the device ({free} bytes free when "
                                f"the write failed: {exc}); nothing was written") from exc
        if isinstance(exc, ArtifactError):
            raise
        what = str(exc).replace(tmp, str(path)) or type(exc).__name__
        raise ArtifactError(f"{path}: not written ({what})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stored_sha256(var: netCDF4.Variable) -> str:
    """sha256 of a variable's values as stored (raw: no masking, scaling or decoding)."""
    var.set_auto_maskandscale(False)
    var.set_auto_chartostring(False)
    values = np.asarray(var[...])
    digest = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    if values.dtype == object:     # variable-length strings
        digest.update("\0".join(map(str, values.ravel())).encode())
    else:
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def content_problems(path: str | os.PathLike) -> list[str]:
    """What in the NetCDF file ``path`` no longer matches what was written: a variable whose
    stored values fail their Fletcher-32 checksum or the ``content_sha256`` recorded for them,
    a ``config_json`` that does not hash to ``config_sha256``; ``[]`` when intact (an artifact
    written before checksums were recorded is checked for its config only)."""
    problems = []
    with netCDF4.Dataset(path) as nc:
        attrs = nc.__dict__
        recorded = json.loads(attrs.get("content_sha256", "{}"))
        for name, var in nc.variables.items():
            try:
                digest = _stored_sha256(var)
            except (RuntimeError, OSError) as exc:    # HDF5: a Fletcher-32 mismatch
                problems.append(f"variable {name!r} fails its checksum ({exc})")
                continue
            if name in recorded and digest != recorded[name]:
                problems.append(f"variable {name!r} no longer matches the sha256 recorded when "
                                "it was written")
        if "config_json" in attrs and "config_sha256" in attrs and hashlib.sha256(
                str(attrs["config_json"]).encode()).hexdigest() != attrs["config_sha256"]:
            problems.append("attribute config_json no longer matches config_sha256")
    return problems


def file_format(path: str | os.PathLike) -> str:
    """'netcdf', 'zip' (a torch model file) or 'other', from the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    return "netcdf" if head.startswith((HDF5, CDF)) else "zip" if head.startswith(ZIP) else "other"


def integrity_problems(path: str | os.PathLike) -> list[str]:
    """What in the file no longer matches the checksums written with it: a NetCDF artifact's
    (:func:`content_problems`), a zip archive's CRC-32 of each entry; [] for other files."""
    kind = file_format(path)
    if kind == "netcdf":
        return content_problems(path)
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError) as exc:
            return [f"not a readable archive ({exc})"]
        return [] if bad is None else [f"entry {bad} fails its CRC-32 checksum"]
    return []


def non_finite(ds: xr.Dataset) -> list[str]:
    """The variables that should be finite and are not, each as 'NAME (N of M values)': an
    ensemble's field, action and weights; every observable that has an error, and the error
    (X and X_err; not tau_int_X, undefined for some estimators)."""
    kind = kind_of(ds)
    if kind == "ensemble":
        names = [v for v in FINITE_ENSEMBLE if v in ds]
    elif kind == "observables":
        measured = [str(v) for v in ds.data_vars if f"{v}_err" in ds and not str(v).startswith("tau_int_")]
        names = [name for v in measured for name in (v, f"{v}_err")]
    else:
        return []
    bad = []
    for name in names:
        values = np.asarray(ds[name].values, dtype=float)
        n = int(values.size - np.isfinite(values).sum())
        if n:
            bad.append(f"{name} ({n} of {values.size} values)")
    return bad


def _likely_cause(ds: xr.Dataset) -> str:
    """Words on what makes an ensemble non-finite, from what it records."""
    if "acceptance_rate" in ds.attrs:
        return (f"HMC acceptance {float(ds.attrs['acceptance_rate']):.3f}: the couplings or the step "
                "size make the action overflow (try a smaller --step-size)")
    return "the sampler diverged (a step size or noise level too large for the action)"


def write_artifact(ds: xr.Dataset, path: str | os.PathLike, *, config: Mapping[str, Any],
                   rule: str, seed: int | None = None,
                   inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``ds`` to ``path`` as NetCDF with provenance, atomically.

    ``config`` holds the resolved parameters that made the artifact; ``inputs``
    the files it was computed from (each is hashed now).  Attributes already on
    ``ds`` are kept unless they are provenance keys; a ``history`` already there
    (copied from an input) gets this program's line appended.
    """
    bad = non_finite(ds)
    if bad and kind_of(ds) == "ensemble":
        raise ArtifactError(f"{path}: not written: the ensemble holds NaN or infinity in "
                            f"{', '.join(bad)}; likely cause: {_likely_cause(ds)}")
    ds = ds.copy()
    ds.attrs.pop(FLAG, None)
    if bad:
        ds.attrs[FLAG] = ", ".join(bad)
    previous = ds.attrs.get("history")
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in PROVENANCE_KEYS}
    ds.attrs.update(provenance_attrs(config, rule, seed, inputs, out=path))
    if previous:
        ds.attrs["history"] = f"{previous}\n{ds.attrs['history']}"
    with atomic_path(path) as tmp:
        free = shutil.disk_usage(tmp.parent).free
        if free < ds.nbytes:   # before HDF5 fails: with checksums it would keep the file open
            raise ArtifactError(f"{path}: no space left on the device (the artifact needs about "
                                f"{ds.nbytes} bytes, {free} are free); nothing was written")
        ds.to_netcdf(tmp, engine=ENGINE, encoding={v: {"fletcher32": True} for v in ds.variables})
        with netCDF4.Dataset(tmp, "a") as nc:
            nc.content_sha256 = canonical_json({name: _stored_sha256(var)
                                                for name, var in nc.variables.items()})
    return Path(path)


def read_artifact(path: str | os.PathLike) -> xr.Dataset:
    """Load an artifact fully into memory after checking its contents (:func:`content_problems`);
    a missing, truncated, corrupted or foreign file raises :class:`ArtifactError` naming it."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path}: is a directory, not an artifact file")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    try:
        problems = content_problems(path)
        if not problems:
            with xr.open_dataset(path, engine=ENGINE) as ds:
                return ds.load()
    except Exception as exc:  # netCDF4 raises OSError/RuntimeError/ValueError variants
        raise ArtifactError(f"{path}: not a readable NetCDF artifact ({exc})") from exc
    raise ArtifactError(f"{path}: corrupted since it was written: {'; '.join(problems)}")


def artifact_config(ds: xr.Dataset) -> dict[str, Any]:
    """The resolved parameters stored in an artifact's ``config_json``."""
    return json.loads(ds.attrs["config_json"])


def artifact_inputs(ds: xr.Dataset) -> list[dict[str, str]]:
    """The ``[{path, abspath, sha256}]`` input records of an artifact."""
    return json.loads(ds.attrs.get("inputs", "[]"))


def input_locations(rec: Mapping[str, str], attrs: Mapping[str, Any],
                    artifact: str | os.PathLike | None = None) -> list[Path]:
    """Where the input ``rec`` of the artifact ``artifact`` (with provenance ``attrs``) may be
    now, most likely first: below the artifact's current root, at its absolute path,
    below the recorded root, as recorded (see the module docstring)."""
    rel, found = Path(rec["path"]), []
    own = str(attrs.get("artifact_path", ""))
    if artifact is not None and own and not rel.is_absolute() and not Path(own).is_absolute():
        here = Path(artifact).absolute()
        if here.parts[-len(Path(own).parts):] == Path(own).parts:
            found.append(here.parents[len(Path(own).parts) - 1] / rel)
    if rec.get("abspath"):
        found.append(Path(rec["abspath"]))
    if attrs.get("root"):
        found.append(Path(str(attrs["root"])) / rel)
    found.append(rel)
    return list(dict.fromkeys(found))


def locate_input(rec: Mapping[str, str], attrs: Mapping[str, Any],
                 artifact: str | os.PathLike | None = None) -> Path:
    """The first of :func:`input_locations` that exists, else the first of them."""
    places = input_locations(rec, attrs, artifact)
    return next((p for p in places if p.is_file()), places[0])


def check_inputs(ds: xr.Dataset, artifact: str | os.PathLike | None = None) -> list[str]:
    """Re-hash the recorded inputs of ``ds`` (read from ``artifact``); return one message
    per missing or changed file."""
    problems = []
    for rec in artifact_inputs(ds):
        p = locate_input(rec, ds.attrs, artifact)
        if not p.is_file():
            problems.append(f"{p}: input is missing")
        elif sha256_file(p) != rec["sha256"]:
            problems.append(f"{p}: sha256 mismatch (recorded {rec['sha256'][:12]}..., "
                            f"now {sha256_file(p)[:12]}...)")
    return problems


def kind_of(ds: xr.Dataset) -> str:
    """What an artifact is, in words: its ``kind`` attribute, else an ensemble (a field
    variable), a phase cell, grid or boundaries, a comparison table, a training history or
    observables, else its rule's output."""
    kind = ds.attrs.get("kind")
    if kind:
        return str(kind)
    if "phi" in ds or "theta" in ds:
        return "ensemble"
    if "sgd_engine" in ds.attrs:
        return "phase cell"
    if "cell_phase" in ds:
        return "phase grid"
    if "glass" in ds and "ferro" in ds:
        return "phase boundaries"
    if "reference" in ds.attrs and "coupling" in ds.attrs:
        return "table"
    if "loss" in ds and "epoch" in ds.dims:
        return "training history"
    if "theory" in ds.attrs and any(str(v).endswith("_err") for v in ds.data_vars):
        return "observables"
    return f"output of rule {ds.attrs.get('rule', '?')}"


def _describe(ds: xr.Dataset) -> str:
    """``kind_of`` with the theory and source where recorded."""
    extra = [f"{k} {ds.attrs[k]}" for k in ("theory", "source") if k in ds.attrs]
    return kind_of(ds) + (f" ({', '.join(extra)})" if extra else "")


def read_input(path: str | os.PathLike, expected: str, *, kinds: Iterable[str] | None = None,
               theories: Iterable[str] | None = None, variables: Iterable[str] = ()) -> xr.Dataset:
    """Read the artifact a verb takes as ``expected`` (words for the error message) and check
    its kind (:func:`kind_of`), theory and variables; anything else (a foreign NetCDF, another
    file, a directory, another kind) raises :class:`ArtifactError`, one line naming ``path``."""
    try:
        ds = read_artifact(path)
    except ArtifactError as exc:
        raise ArtifactError(f"{exc}; expected {expected}") from None
    if "config_sha256" not in ds.attrs:
        raise ArtifactError(f"{path}: not a physml artifact (no provenance attributes); "
                            f"expected {expected}")
    theory = ds.attrs.get("theory")
    missing = [v for v in variables if v not in ds]
    if ((kinds is not None and kind_of(ds) not in kinds)
            or (theories is not None and theory not in theories) or missing):
        lacks = f", without variable {', '.join(missing)}" if missing else ""
        raise ArtifactError(f"{path}: expected {expected}, got {_describe(ds)}{lacks}")
    bad = non_finite(ds)
    if bad:
        raise ArtifactError(f"{path}: {_describe(ds)} holds NaN or infinity in {', '.join(bad)}; "
                            f"expected {expected} with finite values")
    return ds
