# Phase diagram of learning: one job per (model, lr, sigma_W) cell, a gather per
# model, three named figures.  The cell jobs are pure numpy (`physml phases` imports no
# torch) and run with one BLAS thread (threads only slow these tiny matrix products down;
# split runs over jobs instead).
PHASES = config["phases"]
PHASE_MODELS = list(PHASES["models"])
STUDY = PHASES["boundary_study"]
# the T cut's floor cells: the cut's lr at floor_sigma_w (rule order compares every run with them)
T_CUT_FLOOR = {**STUDY, "T_cut": {**STUDY["T_cut"], "sigma_w": STUDY["T_cut"]["floor_sigma_w"]}}
# settings a cell takes from the grid (the cut cells of the boundary study too)
CELL_KEYS = ("batch_size", "n_batches", "n_test", "n_eval", "divergence_threshold", "check_every")
PHASE_CELL_SHELL = (
    "OPENBLAS_NUM_THREADS={threads} OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
    " python -m physml phases cell --lr {wildcards.lr} --sigma-w {wildcards.sigma_w} {params.flags}"
    " --seed {params.seed} --threads {threads} --out {output.cell} > {log} 2>&1"
)
RUN_KEYS = ("n_runs", "n_steps", "snapshot_steps")  # the boundary study has its own


rule phase_cell:
    conda:
        CONDA_ENV
    output:
        cell="results/phases/{model}/lr{lr}_sw{sigma_w}/cell.nc",
    log:
        "results/logs/phases/{model}/lr{lr}_sw{sigma_w}.log",
    benchmark:
        "results/benchmarks/phases/{model}/lr{lr}_sw{sigma_w}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_]+",
        lr=r"\d+(\.\d+)?(e-?\d+)?",
        sigma_w=r"\d+(\.\d+)?(e-?\d+)?",
    params:
        # only what the cell uses, so that editing the grid or the thresholds reruns no cell
        flags=lambda wc: cli_flags(PHASES["models"][wc.model]) + " " + cli_flags(PHASES, RUN_KEYS + CELL_KEYS),
        # common random numbers: every cell of a model shares its teachers, data and init directions
        seed=lambda wc: derive_seed(config["seed"], "phases", wc.model),
    threads: 1
    resources:
        mem_mb=lambda wc: 500 + PHASES["n_runs"] * PHASES["n_batches"] * PHASES["batch_size"] // 1000,
        runtime=lambda wc: phase_cell_runtime(PHASES["n_runs"], PHASES["n_steps"]),
    shell:
        PHASE_CELL_SHELL


rule phase_cut_cell:
    """A cell of the boundary-against-training-length study: the grid's cell settings, the
    study's runs, length and snapshots, the same seed (teachers, data and init directions
    shared with the grid)."""
    conda:
        CONDA_ENV
    output:
        cell="results/phases/cuts/{model}/lr{lr}_sw{sigma_w}/cell.nc",
    log:
        "results/logs/phases/cuts/{model}/lr{lr}_sw{sigma_w}.log",
    benchmark:
        "results/benchmarks/phases/cuts/{model}/lr{lr}_sw{sigma_w}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_]+",
        lr=r"\d+(\.\d+)?(e-?\d+)?",
        sigma_w=r"\d+(\.\d+)?(e-?\d+)?",
    params:
        flags=lambda wc: " ".join([cli_flags(PHASES["models"][wc.model]), cli_flags(STUDY, RUN_KEYS),
                                   cli_flags(PHASES, CELL_KEYS)]),
        seed=lambda wc: derive_seed(config["seed"], "phases", wc.model),
    threads: 1
    resources:
        mem_mb=lambda wc: 500 + STUDY["n_runs"] * PHASES["n_batches"] * PHASES["batch_size"] // 1000,
        runtime=lambda wc: phase_cell_runtime(STUDY["n_runs"], STUDY["n_steps"]),
    shell:
        PHASE_CELL_SHELL


rule phase_gather:
    conda:
        CONDA_ENV
    input:
        cells=lambda wc: [phase_cell(wc.model, lr, sw) for lr in PHASES["lr"] for sw in PHASES["sigma_w"]],
    output:
        grid="results/phases/{model}/phase_grid.nc",
    log:
        "results/logs/phases/{model}/gather.log",
    wildcard_constraints:
        model=r"[A-Za-z0-9_]+",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml phases gather {input.cells} --model {wildcards.model}"
        f" {cli_flags(PHASES['classify'])} --out {{output.grid}} > {{log}} 2>&1"



rule fig_phase_diagram:
    conda:
        CONDA_ENV
    input:
        grids=[phase_grid(m) for m in PHASE_MODELS],
    output:
        figure_outputs("fig_phase_diagram"),
    log:
        "results/logs/figures/fig_phase_diagram.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        phase_figure_rule("phase_diagram")


rule fig_phase_observables:
    conda:
        CONDA_ENV
    input:
        grids=[phase_grid(m) for m in PHASE_MODELS],
    output:
        figure_outputs("fig_phase_observables"),
    log:
        "results/logs/figures/fig_phase_observables.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        phase_figure_rule("phase_observables")


rule fig_phase_trajectories:
    conda:
        CONDA_ENV
    input:
        grids=[phase_grid(m) for m in PHASE_MODELS],
    output:
        figure_outputs("fig_phase_trajectories"),
    log:
        "results/logs/figures/fig_phase_trajectories.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        phase_figure_rule("phase_trajectories")


rule phase_boundaries:
    """Boundaries against training length along the two cuts of the boundary study (the T cut
    with its floor cells), under each classification rule and against the thresholds of rule
    order, beside the predicted lines (physml phases boundaries)."""
    conda:
        CONDA_ENV
    input:
        sigma_w_cut=phase_cut_cells(STUDY, "sigma_w"),
        T_cut=phase_cut_cells(STUDY, "T"),
        T_cut_floor=phase_cut_cells(T_CUT_FLOOR, "T"),
    output:
        study=f"results/phases/cuts/{STUDY['model']}/boundaries.nc",
    log:
        f"results/logs/phases/cuts/{STUDY['model']}/boundaries.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml phases boundaries --sigma-w-cut {input.sigma_w_cut} --T-cut {input.T_cut}"
        " --T-cut-floor {input.T_cut_floor}"
        f" {cli_flags(STUDY, ['model', 'floor_factors', 'sv_growths'])} {cli_flags(PHASES['classify'], skip=['classification'])}"
        " --out {output.study} > {log} 2>&1"


rule fig_phase_boundaries:
    """The boundary study's figure; the grid of the study's model gives the diagram under each rule."""
    conda:
        CONDA_ENV
    input:
        grids=[f"results/phases/cuts/{STUDY['model']}/boundaries.nc", phase_grid(STUDY["model"])],
    output:
        figure_outputs("fig_phase_boundaries"),
    log:
        "results/logs/figures/fig_phase_boundaries.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        phase_figure_rule("phase_boundaries")


for _name in ("fig_phase_diagram", "fig_phase_observables", "fig_phase_trajectories"):
    ALL_TARGETS.extend(figure_outputs(_name))
if STUDY["in_all"]:
    ALL_TARGETS.extend(figure_outputs("fig_phase_boundaries"))
