# SGD and random matrix theory (docs/rmt.md): one job per (lr, B) point of three grids (the
# linear teacher-student, the MLP on fresh noisy batches, the Gaussian RBM), a temperature
# gather and table per grid (results/tables/rmt_temperature_{linear,mlp_online,rbm}.{nc,csv}),
# one MLP and one transformer run, a DBM simulation, spectra, the transformer's tail exponents
# (results/tables/rmt_tails.{nc,csv}), four named figures and the numbers of docs/rmt.md
# (results/rmt/docs_numbers.md).  Every job runs with one BLAS/OpenMP thread: multi-threaded
# BLAS on these small matrices only stalls.
RMT = config["rmt"]
RMT_LIN = RMT["linear"]
RMT_GRIDS = {"linear": RMT_LIN, "mlp_online": RMT["mlp_online"], "rbm": RMT["rbm"]}
RMT_TEMPERATURES = [f"results/rmt/{m}/temperature.nc" for m in RMT_GRIDS]
RMT_TABLES = [f"results/tables/rmt_temperature_{m}.{ext}" for m in RMT_GRIDS for ext in ("nc", "csv")]
RMT_FIGURES = ("fig_rmt_spacing", "fig_rmt_mp", "fig_rmt_temperature", "fig_rmt_transformer")

RMT_MLP_DIR = f"results/rmt/mlp/lr{fmt(RMT['mlp']['lr'])}_B{RMT['mlp']['batch_size']}"


def rmt_grid_weights(wildcards):
    """Weights of every (lr, B) point of the grid of one model."""
    block = RMT_GRIDS[wildcards.model]
    return [f"results/rmt/{wildcards.model}/lr{fmt(lr)}_B{b}/weights.nc"
            for lr in block["lr"] for b in block["batch_size"]]


def rmt_time_steps(block, lr):
    """--n-steps, --burn-in and --snapshot-every of a grid point that trains for the block's
    time (lr x steps): the times divided by lr, so that every lr trains equally long."""
    lr = float(lr)
    n_steps, burn_in = round(block["time"] / lr), round(block["burn_in_time"] / lr)
    every = max(1, round(block["snapshot_time"] / lr))
    return f"--n-steps {n_steps} --burn-in {burn_in} --snapshot-every {every}"


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
        weights=rmt_grid_weights,
    output:
        temperature="results/rmt/{model}/temperature.nc",
        table="results/tables/rmt_temperature_{model}.nc",
        csv=report("results/tables/rmt_temperature_{model}.csv", caption="../report/rmt_temperature.rst",
                   category="SGD and random matrices", subcategory="tables"),
    log:
        "results/logs/rmt/{model}/temperature.log",
    benchmark:
        "results/benchmarks/rmt/{model}/temperature.tsv"
    wildcard_constraints:
        model="|".join(RMT_GRIDS),
    params:
        flags=lambda wc: cli_flags(RMT_LIN, ["lr_linear_max"]) if wc.model == "linear" else "",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt temperature {input.weights} {params.flags}"
        " --threads {threads} --out {output.temperature} --table {output.table} > {log} 2>&1"


rule rmt_mlp_online:
    conda:
        CONDA_ENV
    output:
        weights="results/rmt/mlp_online/lr{lr}_B{batch}/weights.nc",
    log:
        "results/logs/rmt/mlp_online/lr{lr}_B{batch}.log",
    benchmark:
        "results/benchmarks/rmt/mlp_online/lr{lr}_B{batch}.tsv"
    wildcard_constraints:
        lr=r"\d+(\.\d+)?(e-?\d+)?",
        batch=r"\d+",
    params:
        seed=derive_seed(config["seed"], "rmt_mlp_online"),   # the same teachers at every point
        steps=lambda wc: rmt_time_steps(RMT["mlp_online"], wc.lr),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt mlp --data online --lr {wildcards.lr} --batch-size {wildcards.batch}"
        f" {cli_flags(RMT['mlp_online'], skip=('lr', 'batch_size', 'time', 'burn_in_time', 'snapshot_time'))}"
        " {params.steps} --seed {params.seed} --threads {threads} --no-progress --out {output.weights} > {log} 2>&1"


rule rmt_rbm:
    conda:
        CONDA_ENV
    output:
        weights="results/rmt/rbm/lr{lr}_B{batch}/weights.nc",
    log:
        "results/logs/rmt/rbm/lr{lr}_B{batch}.log",
    benchmark:
        "results/benchmarks/rmt/rbm/lr{lr}_B{batch}.tsv"
    wildcard_constraints:
        lr=r"\d+(\.\d+)?(e-?\d+)?",
        batch=r"\d+",
    params:
        seed=derive_seed(config["seed"], "rmt_rbm"),
        steps=lambda wc: rmt_time_steps(RMT["rbm"], wc.lr),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml rmt rbm --lr {wildcards.lr} --batch-size {wildcards.batch}"
        f" {cli_flags(RMT['rbm'], skip=('lr', 'batch_size', 'time', 'burn_in_time', 'snapshot_time'))}"
        " {params.steps} --seed {params.seed} --threads {threads} --no-progress --out {output.weights} > {log} 2>&1"


rule rmt_mlp:
    conda:
        CONDA_ENV
    output:
        weights="results/rmt/mlp/lr{lr}_B{batch}/weights.nc",
    log:
        "results/logs/rmt/mlp/lr{lr}_B{batch}.log",
    benchmark:
        "results/benchmarks/rmt/mlp/lr{lr}_B{batch}.tsv"
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
    benchmark:
        "results/benchmarks/rmt/{run}/spectra.tsv"
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
    benchmark:
        "results/benchmarks/rmt/dbm.tsv"
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
        "results/rmt/rbm/temperature.nc",
    output:
        figure_outputs("fig_rmt_spacing"),
    log:
        "results/logs/figures/fig_rmt_spacing.log",
    benchmark:
        "results/benchmarks/figures/fig_rmt_spacing.tsv"
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
    benchmark:
        "results/benchmarks/figures/fig_rmt_mp.tsv"
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
        RMT_TEMPERATURES,
        "results/rmt/dbm/dbm.nc",
    output:
        figure_outputs("fig_rmt_temperature"),
    log:
        "results/logs/figures/fig_rmt_temperature.log",
    benchmark:
        "results/benchmarks/figures/fig_rmt_temperature.tsv"
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
    benchmark:
        "results/benchmarks/figures/fig_rmt_transformer.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"
        " python -m physml figure rmt_transformer {input} --threads {threads}"
        " --out results/figures/fig_rmt_transformer > {log} 2>&1"


rule rmt_docs:
    conda:
        CONDA_ENV
    input:
        RMT_TEMPERATURES,
        dbm="results/rmt/dbm/dbm.nc",
        spectra="results/rmt/transformer/spectra.nc",
        tails="results/rmt/transformer/tails.nc",
        # last of the RMT jobs, so that the CPU-time block sees every benchmark file
        figures=[f"results/figures/{name}.png" for name in RMT_FIGURES],
        doc="docs/rmt.md",
    output:
        "results/rmt/docs_numbers.md",
    log:
        "results/logs/rmt/docs_numbers.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m physml rmt report --results results --out {output} --compare {input.doc} > {log} 2>&1"


for _name in RMT_FIGURES:
    ALL_TARGETS.extend(figure_outputs(_name))
ALL_TARGETS.extend(["results/tables/rmt_tails.nc", "results/tables/rmt_tails.csv", *RMT_TABLES,
                    "results/rmt/docs_numbers.md"])
