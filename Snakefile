# physml: one DAG, three studies. Rules live in workflow/rules, science in src/physml.
from pathlib import Path

from snakemake.utils import min_version

from physml.config import exit_on_config_error, load_yaml

min_version("9.0")

with exit_on_config_error():  # a YAML syntax error names file and line (Snakemake's own message does not)
    load_yaml(Path(workflow.basedir) / "config" / "config.yaml")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/ensembles.smk"
include: "workflow/rules/observables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/phases.smk"
include: "workflow/rules/diffusion.smk"
include: "workflow/rules/diffusion_u1.smk"
include: "workflow/rules/rmt.smk"


rule all:
    default_target: True
    input:
        [str(target) for target in ALL_TARGETS],  # plain paths: no output flags
