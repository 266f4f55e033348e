# Config validation, wildcard constraints and helpers shared by every rule file.
import sys
from pathlib import Path

from physml.config import validate_config
from physml.seeds import derive_seed

validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# The physml CLI of the Python running Snakemake (no reliance on an activated venv).
PHYSML = f"{sys.executable} -m physml"

# Final targets; each rule file appends the figures it makes.
ALL_TARGETS = []


wildcard_constraints:
    L=r"\d+",
    kappa=r"\d+(\.\d+)?",
    lam=r"\d+(\.\d+)?",
    beta=r"\d+(\.\d+)?",
    seed=r"\d+",
    source=r"[a-z_]+",


def fmt(x):
    """A number as it appears in result paths (0.21 -> '0.21', 1.0 -> '1')."""
    return f"{float(x):g}"


def figure_outputs(name):
    """The PDF, PNG and provenance sidecar of a named figure."""
    return multiext(f"results/figures/{name}", ".pdf", ".png", ".json")
