# Config validation, wildcard constraints and helpers shared by every rule file.
import os
import sys
from pathlib import Path

from physml.config import validate_config
from physml.seeds import derive_seed

validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# Jobs run `python -m physml ...`: the Python running Snakemake comes first on PATH (no
# reliance on an activated venv; with --software-deployment-method conda the rule's env
# comes first instead), and this checkout's src/ is importable even where physml is not
# installed (the conda env holds only its dependencies). Jobs inherit this environment,
# locally and through sbatch.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")] if p
)
CONDA_ENV = "../../envs/physml.yaml"  # relative to workflow/rules/
PHYSML = "python -m physml"

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


REPORT_CATEGORIES = {
    "fig_phi4": "Lattice: phi^4",
    "fig_u1": "Lattice: U(1)",
    "fig_rmt": "SGD and random matrices",
    "fig_phase": "Phase diagram of learning",
}


def figure_outputs(name):
    """The PDF, PNG (shown in `snakemake --report`, caption workflow/report/NAME.rst) and
    provenance sidecar of a named figure."""
    category = next(c for prefix, c in REPORT_CATEGORIES.items() if name.startswith(prefix))
    png = report(f"results/figures/{name}.png", caption=f"../report/{name}.rst", category=category)
    return [f"results/figures/{name}.pdf", png, f"results/figures/{name}.json"]
