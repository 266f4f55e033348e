"""Helpers shared by the CLI verbs: common options, the checks of the paths a verb reads and
writes, and artifact writing (torch is imported only by :func:`setup_runtime`, so torch-free
verbs such as ``phases`` stay torch-free)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

from physml.io.artifacts import FLAG, file_format, integrity_problems, non_finite, write_artifact

RUNTIME_KEYS = {"out", "func", "threads", "rule", "device", "progress"}
# what a file of each suffix is, for the message of a wrong one
SUFFIX_KINDS = {".nc": "a NetCDF artifact", ".pt": "a model file", ".csv": "a CSV table",
                ".txt": "a text file", "": "a path without extension"}


class Output:
    """``type=`` of an option that names a file the verb writes: its name must end in
    ``suffix`` ("" = no extension; None = any), and the verb also writes the files
    ``Path(value).with_suffix(s)`` for each ``s`` of ``beside`` (see :func:`check_paths`)."""

    def __init__(self, suffix: str | None = ".nc", beside: tuple[str, ...] = ()):
        self.suffix, self.beside = suffix, beside

    def __call__(self, text: str) -> str:
        return text


def _identity(path: Path):
    """What makes two paths the same file: device and inode where it exists (symlinks and
    hard links included), else the path with every symlink resolved."""
    try:
        st = path.stat()
        return st.st_dev, st.st_ino
    except OSError:
        return str(path.resolve())


def _writable(path: Path) -> str | None:
    """Why no file can be written at ``path`` (its folder, or the nearest existing folder
    above it, is no folder or refuses a new file; found by creating and deleting one), else None."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".physml-probe-", dir=folder)
    except OSError as exc:
        return f"cannot create a file in {folder} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None


def paths_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, list]:
    """The paths of a parsed verb, by the convention of :func:`check_paths`: ``outputs`` as
    (option, path, the suffix it must have), ``beside`` (files written beside an output) and
    ``inputs`` as (option, path)."""
    found = {"outputs": [], "beside": [], "inputs": []}
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if value is None or action.choices is not None or action.dest == "help":
            continue
        label = action.option_strings[0] if action.option_strings else action.dest
        output = action.type if isinstance(action.type, Output) else (
            Output() if action.dest == "out" or action.dest.endswith("_out") else None)
        if output is not None:
            found["outputs"].append((label, Path(value), output.suffix))
            found["beside"] += [(f"{label} (the {s} file beside it)", Path(value).with_suffix(s))
                                for s in output.beside]
        elif action.type in (None, str):
            found["inputs"] += [(label, Path(v)) for v in (value if isinstance(value, list) else [value])
                                if isinstance(v, str) and os.path.exists(v)]
    return found


def check_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse, before any work, a verb whose outputs would destroy a file it reads or another
    output, or could not be written; ``parser`` is the verb's own.  A ValueError names the
    option(s) and path(s).

    The convention: an option writes a file when its ``type`` is :class:`Output` (which gives
    the suffix its name must have and any files written beside it), or when its destination
    is ``out`` or ends in ``_out`` (a NetCDF artifact, ``.nc``); so a new ``--x-out`` option
    is checked with no further code.  Every other option or positional whose value (or each
    value of a list) names an existing file is an input.  Refused: an output (or a file
    beside one) that is an input, an output that is another output (symlinks resolved, hard
    links too), an output that is an existing directory or whose folder is a file or refuses
    new files, a wrong suffix; and, for a verb that writes, an input model file (zip) whose
    entries fail their CRC-32 (a NetCDF input is checked as it is read,
    :func:`physml.io.artifacts.read_artifact`)."""
    paths = paths_of(args, parser)
    outputs = [(label, path) for label, path, _ in paths["outputs"]]
    for i, (label, path) in enumerate(outputs + paths["beside"]):
        earlier = outputs[:i] if i < len(outputs) else []   # a file beside may be an output too
        same = [(lb, p, "it would destroy that input") for lb, p in paths["inputs"]
                if _identity(p) == _identity(path)]
        same += [(lb, p, "the two outputs would overwrite each other") for lb, p in earlier
                 if _identity(p) == _identity(path)]
        if same:
            other, other_path, why = same[0]
            raise ValueError(f"{label} {path} and {other} {other_path} are the same file: {why}; "
                             "choose another output path")
    for label, path in outputs + paths["beside"]:
        if path.is_dir():
            raise ValueError(f"{label} {path}: is a directory, expected a file to write")
        why = _writable(path)
        if why:
            raise ValueError(f"{label} {path}: cannot be written: {why}")
    for label, path, suffix in paths["outputs"]:
        if suffix is not None and path.suffix != suffix:
            raise ValueError(f"{label} {path}: expected {SUFFIX_KINDS.get(suffix, 'a file')}"
                             f"{f' ending in {suffix}' if suffix else ''}, got a name ending in "
                             f"{path.suffix or 'no extension'}")
    for label, path in paths["inputs"] if outputs else ():   # a verb that writes nothing reports
        if path.is_file() and file_format(path) == "zip":
            problems = integrity_problems(path)
            if problems:
                raise ValueError(f"{label} {path}: corrupted since it was written: {'; '.join(problems)}")


def add_runtime_options(parser: argparse.ArgumentParser, device: bool = False,
                        threads: str = "torch intra-op threads (set from the Snakemake rule's threads)"
                        ) -> None:
    """--threads (its help text ``threads``), --rule, --no-progress (and --device where the
    verb uses torch heavily)."""
    parser.add_argument("--threads", type=int, default=1, help=threads)
    parser.add_argument("--rule", default=None,
                        help="name recorded in the artifact's 'rule' attribute (default: the CLI verb)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="do not print progress bars")
    if device:
        parser.add_argument("--device", default="auto",
                            help="torch device: auto (cuda if available), cpu, cuda[:N]")


def setup_runtime(args: argparse.Namespace):
    """Apply --threads; return the torch device (CPU when the verb has no --device)."""
    from physml.device import select_device, set_threads
    set_threads(args.threads)
    return select_device(getattr(args, "device", "cpu"))


def resolved_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The parameters that determine an artifact's numbers (runtime options removed)."""
    cfg = {k: v for k, v in vars(args).items() if k not in RUNTIME_KEYS}
    cfg.update(extra)
    return cfg


def save(ds, args: argparse.Namespace, verb: str, inputs: Iterable[str] = (),
         seed: int | None = None, **extra: Any):
    """Write ``ds`` to ``args.out`` with provenance; ``seed`` defaults to ``args.seed``, the
    recorded rule to ``--rule`` or else the verb (``hmc phi4`` -> ``hmc_phi4``, as the rule).
    Observables that hold NaN or infinity are written flagged, with a warning."""
    seed = getattr(args, "seed", None) if seed is None else seed
    path = write_artifact(ds, args.out, config=resolved_config(args, **extra),
                          rule=args.rule or verb.replace(" ", "_"), seed=seed, inputs=inputs)
    print(f"wrote {path}")
    flagged = non_finite(ds)   # an ensemble's would have been refused
    if flagged:
        print(f"warning: {path}: NaN or infinity in {', '.join(flagged)} (flagged: attribute {FLAG})",
              file=sys.stderr)
    return path
