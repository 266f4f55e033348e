# Config validation, wildcard constraints and helpers shared by every rule file.
import importlib.util
import os
import sys
from pathlib import Path

# One physml for the Snakefile and its jobs: jobs import this checkout's src/ (PYTHONPATH
# below), so the Snakefile must import the same one; two checkouts sharing one environment
# would otherwise mix code without notice. Without src/ the installed physml serves both.
_SRC, _FOUND = Path(workflow.basedir) / "src", importlib.util.find_spec("physml")
if (_SRC / "physml").is_dir() and _FOUND is None:
    sys.path.insert(0, str(_SRC))
elif (_SRC / "physml").is_dir() and Path(_FOUND.origin).parent.resolve() != (_SRC / "physml").resolve():
    print(f"physml: this environment's physml is {Path(_FOUND.origin).parent}, not this checkout's "
          f"{_SRC / 'physml'}; install this checkout into it (pip install -e {workflow.basedir}) "
          "or give each checkout its own environment", file=sys.stderr)
    sys.exit(1)

from physml.config import exit_on_config_error, validate_config
from physml.seeds import derive_seed

with exit_on_config_error():  # every problem, one line each, before any job (also at `snakemake -n`)
    validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

# Jobs run `python -m physml ...`: the Python running Snakemake comes first on PATH (no
# reliance on an activated venv; with --software-deployment-method conda the rule's env
# comes first instead), and this checkout's src/ is importable even where physml is not
# installed (the conda env holds only its dependencies). Jobs inherit this environment,
# locally and through sbatch.
os.environ.update(
    PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    PYTHONPATH=os.pathsep.join(
        p for p in [str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")] if p
    ),
)
CONDA_ENV = "../../envs/physml.yaml"  # relative to workflow/rules/
# GPUs per GPU job (rules train_*, sample_*, rmt_transformer): none when the config says
# device: cpu, so that a CPU-only SLURM cluster is never asked for one.
GPUS = 0 if config["device"] == "cpu" else 1

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


def table_csv(name, category):
    """A result table's CSV, shown as a table in `snakemake --report` (caption
    workflow/report/NAME.rst)."""
    return report(f"results/tables/{name}.csv", caption=f"../report/{name}.rst", category=category,
                  subcategory="tables")


def figure_outputs(name):
    """The PDF, PNG (shown in `snakemake --report`, caption workflow/report/NAME.rst) and
    provenance sidecar of a named figure."""
    category = next(c for prefix, c in REPORT_CATEGORIES.items() if name.startswith(prefix))
    png = report(f"results/figures/{name}.png", caption=f"../report/{name}.rst", category=category)
    return [f"results/figures/{name}.pdf", png, f"results/figures/{name}.json"]


# Result paths and shell fragments used by the rule files (Snakemake's linter wants
# functions here, apart from the rules).
def phi4_dir(kappa, L=None, lam=None, source="hmc"):
    """Folder of a phi^4 ensemble; L and lambda default to the config's."""
    L = config["phi4"]["L"] if L is None else L
    lam = config["phi4"]["lam"] if lam is None else lam
    return f"results/phi4/{source}/L{L}_kappa{fmt(kappa)}_lam{fmt(lam)}"


def u1_dir(beta, L, source="hmc"):
    return f"results/u1/{source}/L{L}_beta{fmt(beta)}"


def u1_observables(points, sources):
    """Observable artifacts of every (beta, L) point and source, without repeats."""
    return list(dict.fromkeys(f"{u1_dir(b, L, s)}/observables.nc" for b, L in points for s in sources))


def u1_hmc_options(hmc, run):
    """CLI options of `physml lattice hmc u1`: the settings `hmc` (u1.hmc), with the run lengths of
    `run` where it has its own (u1.training)."""
    return cli_flags({**hmc, **{k: v for k, v in run.items() if k in hmc}})


def phase_cell(model, lr, sigma_w):
    return f"results/phases/{model}/lr{fmt(lr)}_sw{fmt(sigma_w)}/cell.nc"


def phase_grid(model):
    return f"results/phases/{model}/phase_grid.nc"


def phase_cell_runtime(n_runs, n_steps):
    """SLURM minutes of a phase cell at a pessimistic 5e5 run-steps/s: the numpy twin on a
    busy core (the C kernel does 4-6e6 on one core, benchmarks/phase_cell.py), so a paper
    cell (100 runs x 1e8 steps, 42 min with the kernel) asks for 5.6 h."""
    return 5 + n_runs * n_steps // (5 * 10**5 * 60)


def phase_cut_cells(study, cut):
    """Cell artifacts of one cut of the boundary study: cut "sigma_w" (fixed lr) or "T"
    (fixed sigma_W)."""
    c = study[f"{cut}_cut"]
    pairs = [(c["lr"], sw) for sw in c["sigma_w"]] if cut == "sigma_w" else [(lr, c["sigma_w"]) for lr in c["lr"]]
    return [f"results/phases/cuts/{study['model']}/lr{fmt(lr)}_sw{fmt(sw)}/cell.nc" for lr, sw in pairs]


def phase_figure_rule(name):
    """The shell command of a phase figure from every model's grid."""
    return (
        f"python -m physml figure {name} {{input.grids}} --threads {{threads}}"
        f" --out results/figures/fig_{name} > {{log}} 2>&1"
    )


def phi4_model_dir(kappa, lam=None, L=None, recipe=None):
    """Folder of the diffusion model trained on the phi^4 ensemble at kappa (`recipe`: a
    recipe compared beside the default one, diffusion.compare_recipes)."""
    lam = config["phi4"]["lam"] if lam is None else lam
    L = config["phi4"]["L"] if L is None else L
    models = "models" if recipe is None else f"models_{recipe}"
    return f"results/phi4/{models}/L{L}_kappa{fmt(kappa)}_lam{fmt(lam)}"


def cli_flags(block, keys=None, skip=(), prefix=""):
    """`physml` options from the config `block`, named by its keys: key `n_steps` is the option
    `--PREFIXn-steps VALUE`, a list gives its values space-separated, True `--key` and False
    `--no-key`, None nothing. `keys`: these keys (default: every key that is not a nested
    block, less `skip`). A setting is thus declared once, in the schema; the verbs' options
    carry the same names (tests/test_rule_flags.py parses every command of a dry run)."""
    keys = [k for k, v in block.items() if not isinstance(v, dict) and k not in skip] if keys is None else keys
    flags = []
    for key in keys:
        value, flag = block[key], f"{prefix}{key}".replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{flag}" if value else f"--no-{flag}")
        elif isinstance(value, (list, tuple)):
            flags.append(f"--{flag} " + " ".join(str(v) for v in value))
        elif value is not None:
            flags.append(f"--{flag} {value}")
    return " ".join(flags)


def train_command(diff, epochs, recipe, extra=""):
    """The shell command of `physml diffusion train`: the network (diffusion.model), the training
    (diffusion.train, `epochs` of them) and the SDE (diffusion.sde, song recipe) from the
    config; `extra`: more options."""
    return (
        "python -m physml diffusion train {input.ensemble} --out {output.model} --history {output.history}"
        f" --recipe {recipe} {cli_flags(diff['sde'], prefix='sde_')} {cli_flags(diff['model'])}"
        f" {cli_flags(diff['train'], skip=('epochs',))} --epochs {epochs}{extra}"
        " --seed {params.seed} --device {params.device} --threads {threads} > {log} 2>&1"
    )


def mala_flags(mala):
    """The MALA stage's options (--mala-*) from diffusion.mala, without the phi^4-only keys."""
    return cli_flags(mala, skip=("phi4_constant_start_kappa", "global_moves", "fourier"), prefix="mala_")


def exact_command(exact, steps, extra, out):
    """The shell command of `physml diffusion sample` on the exact path (diffusion.exact): its
    deterministic sampler with the levels `steps` (--n-steps N) and the Jacobian density;
    `extra`: the outputs beside `out`."""
    return (
        "python -m physml diffusion sample {input.model} --L {wildcards.L} --n-configs {params.n_configs}"
        f" {cli_flags(exact, ['sampler', 'density_dtype'])} {steps} --density jacobian --n-snapshots 0{extra}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        f" --out {out} > {{log}} 2>&1"
    )


def sample_command(sample, mala_options="", extra=""):
    """The shell command of `physml diffusion sample` with the settings `sample` writing the dm
    ensemble, and the dm_mala one after the MALA stage with `mala_options` (--mala-*) where
    given; `extra`: more options."""
    stage = f" {mala_options} --mala-out {{output.dm_mala}}" if mala_options else ""
    return (
        "python -m physml diffusion sample {input.model} --L {wildcards.L} --n-configs {params.n_configs}"
        f"{extra} {cli_flags(sample)}{stage}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output.dm} > {log} 2>&1"
    )
