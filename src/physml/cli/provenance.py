"""CLI verb ``provenance``: audit an artifact's lineage, the integrity of its inputs and of
its own contents.

Exits 1 when an input is missing or changed or an artifact's contents no longer match their
checksums, 2 (one line) when the file is not a physml artifact or its lineage is cyclic;
notes (a dirty checkout, another version or commit, no checksums) are printed, not fatal."""

from __future__ import annotations

import argparse
import json

from physml.io.lineage import format_tree, lineage


def cmd_provenance(args: argparse.Namespace) -> None:
    tree = lineage(args.artifact)
    problems, warnings = tree.problems(), tree.warnings()
    if args.json:
        print(json.dumps({"lineage": tree.to_dict(), "problems": problems, "warnings": warnings},
                         indent=2, default=str))
    else:
        print(format_tree(tree))
        if warnings:
            print("NOTES:\n" + "\n".join(f"  {w}" for w in warnings))
        print("OK: every input re-hashed and matches, every artifact's contents match their checksums"
              if not problems
              else "PROBLEMS:\n" + "\n".join(f"  {p}" for p in problems))
    if problems:
        raise SystemExit(1)


def verb_provenance(p: argparse.ArgumentParser) -> None:
    p.description = ("Lineage tree of an artifact back to its ensembles; re-hashes every input, "
                     "checks every artifact's contents against its checksums, and exits 1 on any "
                     "mismatch or missing file.")
    p.add_argument("artifact", help="an artifact (.nc), a figure's sidecar (.json) or a model file (.pt) "
                   "made by the pipeline")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_provenance)
