# Phase diagram of learning: one job per (model, lr, sigma_W) cell, a gather per
# model, three named figures.  The cell jobs are pure numpy: they run the torch-free module
# entry of the `physml phases` verbs with one BLAS thread (threads only slow these tiny
# matrix products down; split runs over jobs instead).
PHASES = config["phases"]
PHASE_MODELS = list(PHASES["models"])




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
        p={k: PHASES[k] for k in ("n_runs", "n_steps", "batch_size", "n_batches", "n_test", "n_eval",
                                  "divergence_threshold", "check_every")},
        arch=lambda wc: PHASES["models"][wc.model],
        snapshots=",".join(str(s) for s in PHASES["snapshot_steps"]),
        # common random numbers: every cell of a model shares its teachers, data and init directions
        seed=lambda wc: derive_seed(config["seed"], "phases", wc.model),
    threads: 1
    resources:
        mem_mb=lambda wc: 500 + PHASES["n_runs"] * PHASES["n_batches"] * PHASES["batch_size"] // 1000,
        # minutes at a pessimistic 2e5 run-steps/s (a busy core; benchmarks/phase_cell.py)
        runtime=lambda wc: 5 + PHASES["n_runs"] * PHASES["n_steps"] // (2 * 10**5 * 60),
    shell:
        "OPENBLAS_NUM_THREADS={threads} OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml.cli.phases cell --lr {wildcards.lr} --sigma-w {wildcards.sigma_w}"
        " --activation {params.arch[activation]} --n1 {params.arch[n1]} --n2 {params.arch[n2]}"
        " --n-runs {params.p[n_runs]} --n-steps {params.p[n_steps]} --batch-size {params.p[batch_size]}"
        " --n-batches {params.p[n_batches]} --n-test {params.p[n_test]} --n-eval {params.p[n_eval]}"
        " --snapshots {params.snapshots} --divergence-threshold {params.p[divergence_threshold]}"
        " --check-every {params.p[check_every]} --seed {params.seed}"
        " --threads {threads} --out {output.cell} > {log} 2>&1"


rule phase_gather:
    conda:
        CONDA_ENV
    input:
        cells=lambda wc: [phase_cell(wc.model, lr, sw) for lr in PHASES["lr"] for sw in PHASES["sigma_w"]],
    output:
        grid="results/phases/{model}/phase_grid.nc",
    params:
        c=PHASES["classify"],
    log:
        "results/logs/phases/{model}/gather.log",
    wildcard_constraints:
        model=r"[A-Za-z0-9_]+",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml.cli.phases gather {input.cells} --model {wildcards.model}"
        " --ferro-max-test-loss {params.c[ferro_max_test_loss]}"
        " --glass-min-overlap {params.c[glass_min_overlap]}"
        " --glass-min-saturation {params.c[glass_min_saturation]}"
        " --boundary-fraction {params.c[boundary_fraction]}"
        " --out {output.grid} > {log} 2>&1"



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


for _name in ("fig_phase_diagram", "fig_phase_observables", "fig_phase_trajectories"):
    ALL_TARGETS.extend(figure_outputs(_name))
