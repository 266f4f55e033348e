# SGD and random matrix theory (docs/rmt.md): one job per (lr, B) point of the linear
# teacher-student, one MLP and one transformer run, a DBM simulation, spectra, the transformer's
# tail exponents (results/tables/rmt_tails.{nc,csv}), a temperature gather and four named figures.  Every job runs with one BLAS/OpenMP thread: multi-threaded
# BLAS on these small matrices only stalls.
RMT = config["rmt"]
RMT_LIN = RMT["linear"]
RMT_LINEAR_WEIGHTS = [
    f"results/rmt/linear/lr{fmt(lr)}_B{b}/weights.nc" for lr in RMT_LIN["lr"] for b in RMT_LIN["batch_size"]
]

RMT_MLP_DIR = f"results/rmt/mlp/lr{fmt(RMT['mlp']['lr'])}_B{RMT['mlp']['batch_size']}"


rule rmt_linear:
    conda:
        CONDA_ENV
    output:
        weights="results/rmt/linear/lr{lr}_B{batch}/weights.nc",
    log:
        "results/logs/rmt/linear/lr{lr}_B{batch}.log",
    benchmark:
        "results/benchmarks/rmt/linear/lr{lr}_B{batch}.tsv"
    wildcard_constraints:
        lr=r"\d+(\.\d+)?(e-?\d+)?",
        batch=r"\d+",
    params:
        # one teacher for the whole grid; common random numbers across points
        seed=derive_seed(config["seed"], "rmt_linear"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt linear --lr {wildcards.lr} --batch-size {wildcards.batch}"
        f" {cli_flags(RMT_LIN, skip=('lr', 'batch_size', 'lr_linear_max'))} --seed {{params.seed}} --device cpu"
        " --threads {threads} --no-progress --out {output.weights} > {log} 2>&1"


rule rmt_temperature:
    conda:
        CONDA_ENV
    input:
        weights=RMT_LINEAR_WEIGHTS,
    output:
        temperature="results/rmt/linear/temperature.nc",
    log:
        "results/logs/rmt/linear/temperature.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt temperature {input.weights}"
        f" {cli_flags(RMT_LIN, ['lr_linear_max'])}"
        " --threads {threads} --out {output.temperature} > {log} 2>&1"


rule rmt_mlp:
    conda:
        CONDA_ENV
    output:
        weights="results/rmt/mlp/lr{lr}_B{batch}/weights.nc",
    log:
        "results/logs/rmt/mlp/lr{lr}_B{batch}.log",
    wildcard_constraints:
        lr=r"\d+(\.\d+)?(e-?\d+)?",
        batch=r"\d+",
    params:
        seed=derive_seed(config["seed"], "rmt_mlp"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt mlp --lr {wildcards.lr} --batch-size {wildcards.batch}"
        f" {cli_flags(RMT['mlp'], skip=('lr', 'batch_size'))} --seed {{params.seed}}"
        " --threads {threads} --no-progress --out {output.weights} > {log} 2>&1"


rule rmt_transformer:
    conda:
        CONDA_ENV
    output:
        weights="results/rmt/transformer/weights.nc",
    log:
        "results/logs/rmt/transformer.log",
    benchmark:
        "results/benchmarks/rmt/transformer.tsv"
    params:
        seed=derive_seed(config["seed"], "rmt_transformer"),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=2000,
        runtime=240,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        f" python -m physml rmt transformer {cli_flags(RMT['transformer'])}"
        " --seed {params.seed} --device {params.device}"
        " --threads {threads} --out {output.weights} > {log} 2>&1"


rule rmt_spectra:
    conda:
        CONDA_ENV
    input:
        weights="results/rmt/{run}/weights.nc",
    output:
        spectra="results/rmt/{run}/spectra.nc",
    log:
        "results/logs/rmt/{run}/spectra.log",
    wildcard_constraints:
        run=r"(mlp/[^/]+|transformer)",
    params:
        seed=derive_seed(config["seed"], "rmt_spectra_null"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt spectra {input.weights}"
        f" {cli_flags(RMT['spectra'])} --seed {{params.seed}}"
        " --threads {threads} --out {output.spectra} > {log} 2>&1"


rule rmt_tails:
    conda:
        CONDA_ENV
    input:
        spectra="results/rmt/transformer/spectra.nc",
    output:
        tails="results/rmt/transformer/tails.nc",
        table="results/tables/rmt_tails.nc",
        csv=table_csv("rmt_tails", "SGD and random matrices"),
    log:
        "results/logs/rmt/transformer/tails.log",
    benchmark:
        "results/benchmarks/rmt/tails.tsv"
    params:
        seed=derive_seed(config["seed"], "rmt_tails_bootstrap"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,  # quick: 34 s of CPU; paper (91 snapshots, n_boot 500): ~15 min estimated
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt tails {input.spectra}"
        f" {cli_flags(RMT['tails'])} --seed {{params.seed}}"
        " --threads {threads} --out {output.tails} --table {output.table} > {log} 2>&1"


rule rmt_dbm:
    conda:
        CONDA_ENV
    output:
        dbm="results/rmt/dbm/dbm.nc",
    log:
        "results/logs/rmt/dbm.log",
    params:
        seed=derive_seed(config["seed"], "rmt_dbm"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        f" python -m physml rmt dbm {cli_flags(RMT['dbm'])} --seed {{params.seed}}"
        " --threads {threads} --no-progress --out {output.dbm} > {log} 2>&1"


rule fig_rmt_spacing:
    conda:
        CONDA_ENV
    input:
        "results/rmt/dbm/dbm.nc",
        "results/rmt/linear/temperature.nc",
    output:
        figure_outputs("fig_rmt_spacing"),
    log:
        "results/logs/figures/fig_rmt_spacing.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml figure rmt_spacing {input} --threads {threads}"
        " --out results/figures/fig_rmt_spacing > {log} 2>&1"


rule fig_rmt_mp:
    conda:
        CONDA_ENV
    input:
        f"{RMT_MLP_DIR}/spectra.nc",
        "results/rmt/transformer/spectra.nc",
    output:
        figure_outputs("fig_rmt_mp"),
    log:
        "results/logs/figures/fig_rmt_mp.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml figure rmt_mp {input} --threads {threads}"
        " --out results/figures/fig_rmt_mp > {log} 2>&1"


rule fig_rmt_temperature:
    conda:
        CONDA_ENV
    input:
        "results/rmt/linear/temperature.nc",
        "results/rmt/dbm/dbm.nc",
    output:
        figure_outputs("fig_rmt_temperature"),
    log:
        "results/logs/figures/fig_rmt_temperature.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml figure rmt_temperature {input} --threads {threads}"
        " --out results/figures/fig_rmt_temperature > {log} 2>&1"


rule fig_rmt_transformer:
    conda:
        CONDA_ENV
    input:
        "results/rmt/transformer/spectra.nc",
        "results/rmt/transformer/tails.nc",
    output:
        figure_outputs("fig_rmt_transformer"),
    log:
        "results/logs/figures/fig_rmt_transformer.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml figure rmt_transformer {input} --threads {threads}"
        " --out results/figures/fig_rmt_transformer > {log} 2>&1"


for _name in ("fig_rmt_spacing", "fig_rmt_mp", "fig_rmt_temperature", "fig_rmt_transformer"):
    ALL_TARGETS.extend(figure_outputs(_name))
ALL_TARGETS.extend(["results/tables/rmt_tails.nc", "results/tables/rmt_tails.csv"])
