"""Helpers shared by the CLI verbs: common options and artifact writing (torch is imported
only by :func:`setup_runtime`, so torch-free verbs such as ``phases`` stay torch-free)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable

from physml.io.artifacts import write_artifact

RUNTIME_KEYS = {"out", "func", "threads", "rule", "device", "progress"}


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
    """Refuse an --out that is a directory; apply --threads; return the torch device (CPU when
    the verb has no --device)."""
    from physml.device import select_device, set_threads
    out = getattr(args, "out", None)
    if out and Path(out).is_dir():
        raise ValueError(f"--out {out}: is a directory, expected a file to write")
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
    recorded rule to ``--rule`` or else the verb (``hmc phi4`` -> ``hmc_phi4``, as the rule)."""
    seed = getattr(args, "seed", None) if seed is None else seed
    path = write_artifact(ds, args.out, config=resolved_config(args, **extra),
                          rule=args.rule or verb.replace(" ", "_"), seed=seed, inputs=inputs)
    print(f"wrote {path}")
    return path
