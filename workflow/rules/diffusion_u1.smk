# Physics-conditioned diffusion for U(1) (arXiv:2502.05504): one model trained on the
# u1.training ensemble at (beta_0, L_0); generated at beta_0 on diffusion.u1.volume_L and at
# L_0 on diffusion.u1.coupling_beta (raw: dm; after MALA: dm_mala), the MALA-only control
# from a hot start (mala_only), the beta_0 DM + MALA ensemble reweighted to
# diffusion.u1.reweight_beta (dm_reweighted); all compared with the exact sampler.
DM_U1 = DIFF["u1"]
BETA0, L0 = U1["training"]["beta"], U1["training"]["L"]
U1_MODEL = f"results/u1/models/L{L0}_beta{fmt(BETA0)}/model.pt"
U1_GENERATED = ("hmc", "exact", "dm", "dm_mala", "mala_only")
U1_REWEIGHTED = ("hmc", "exact", "dm_reweighted")
U1_VOLUME_OBSERVABLES = u1_observables([(BETA0, L) for L in DM_U1["volume_L"]], U1_GENERATED)
U1_COUPLING_OBSERVABLES = list(
    dict.fromkeys(  # a reweighting target may also be a generated coupling
        u1_observables([(b, L0) for b in DM_U1["coupling_beta"]], U1_GENERATED)
        + u1_observables([(b, L0) for b in DM_U1["reweight_beta"]], U1_REWEIGHTED)
    )
)
U1_DM_OBSERVABLES = list(dict.fromkeys(U1_VOLUME_OBSERVABLES + U1_COUPLING_OBSERVABLES))
# Exact model-free controls at strong coupling and SMC in beta (physml lattice smc) from beta_0 at
# L_0 to each u1.smc.beta: from the training ensemble (smc) and from the model's raw
# samples (dm_smc), beside HMC with flux moves (hmc_flux) and the exact sampler.
SMC = U1["smc"]
SMC_START = {"smc": "training", "dm_smc": "dm"}
SMC_START_CONFIGS = {"smc": U1["training"]["n_configs"], "dm_smc": DM_U1["n_configs"]}
U1_SMC_OBSERVABLES = u1_observables([(b, L0) for b in SMC["beta"]], ("exact", "hmc", "hmc_flux", "smc", "dm_smc"))
# The authors' annealed-Langevin sampler with Metropolis-Hastings steps (dm_authors) at L_0.
AUTHORS = DM_U1["authors"]
AUTHORS_FLAGS = cli_flags(AUTHORS, skip=("beta", "n_configs"))
U1_AUTHORS_OBSERVABLES = u1_observables([(b, L0) for b in AUTHORS["beta"]], ("exact", "dm_authors"))


rule train_u1:
    conda:
        CONDA_ENV
    input:
        ensemble=f"{U1_TRAINING}/ensemble.nc",
    output:
        model=U1_MODEL,
        history=U1_MODEL.replace("model.pt", "training.nc"),
    log:
        f"results/logs/u1/models/L{L0}_beta{fmt(BETA0)}.train.log",
    benchmark:
        f"results/benchmarks/u1/models/L{L0}_beta{fmt(BETA0)}.train.tsv"
    params:
        seed=derive_seed(config["seed"], "train_u1", L0, fmt(BETA0)),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=3000,
        runtime=240,
    shell:
        train_command(DIFF, DM_U1["epochs"], "song", " " + cli_flags(DM_U1, ["gauge_covariant"]))


rule sample_u1:
    conda:
        CONDA_ENV
    input:
        model=U1_MODEL,
    output:
        dm="results/u1/dm/L{L}_beta{beta}/ensemble.nc",
        dm_mala="results/u1/dm_mala/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/dm/L{L}_beta{beta}.sample.log",
    benchmark:
        "results/benchmarks/u1/dm/L{L}_beta{beta}.sample.tsv"
    params:
        n_configs=DM_U1["n_configs"],
        seed=lambda wc: derive_seed(config["seed"], "sample_u1", wc.L, wc.beta),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=3000,
        runtime=240,
    shell:
        sample_command(DM_U1["sample"], MALA_OPTIONS, extra=" --beta {wildcards.beta}")


rule sample_u1_authors:
    conda:
        CONDA_ENV
    input:
        model=U1_MODEL,
    output:
        ensemble="results/u1/dm_authors/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/dm_authors/L{L}_beta{beta}.sample.log",
    benchmark:
        "results/benchmarks/u1/dm_authors/L{L}_beta{beta}.sample.tsv"
    params:
        n_configs=AUTHORS["n_configs"],
        seed=lambda wc: derive_seed(config["seed"], "sample_u1_authors", wc.L, wc.beta),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=3000,
        runtime=240,
    shell:
        "python -m physml diffusion sample {input.model} --L {wildcards.L} --n-configs {params.n_configs}"
        f" --beta {{wildcards.beta}} --sampler authors {AUTHORS_FLAGS}"
        f" {cli_flags(DM_U1['sample'], ['batch_size'])} --n-snapshots 0"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output.ensemble} > {log} 2>&1"


rule mala_u1:
    conda:
        CONDA_ENV
    output:
        ensemble="results/u1/mala_only/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/mala_only/L{L}_beta{beta}.log",
    params:
        n_configs=DM_U1["n_configs"],
        seed=lambda wc: derive_seed(config["seed"], "mala_u1", wc.L, wc.beta),
        device=config["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m physml lattice mala u1 --L {wildcards.L} --beta {wildcards.beta} --start hot"
        f" --n-configs {{params.n_configs}} {MALA_OPTIONS}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output.ensemble} > {log} 2>&1"


rule reweight_u1:
    conda:
        CONDA_ENV
    input:
        ensemble=f"{u1_dir(BETA0, L0, 'dm_mala')}/ensemble.nc",
    output:
        ensemble="results/u1/dm_reweighted/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/dm_reweighted/L{L}_beta{beta}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml lattice reweight {input.ensemble} --beta {wildcards.beta} --threads {threads}"
        " --out {output.ensemble} > {log} 2>&1"


rule smc_u1:
    conda:
        CONDA_ENV
    input:
        ensemble=lambda wc: f"{u1_dir(BETA0, L0, SMC_START[wc.source])}/ensemble.nc",
    output:
        ensemble=f"results/u1/{{source}}/L{L0}_beta{{beta}}/ensemble.nc",
    log:
        f"results/logs/u1/{{source}}/L{L0}_beta{{beta}}.log",
    benchmark:
        f"results/benchmarks/u1/{{source}}/L{L0}_beta{{beta}}.tsv"
    wildcard_constraints:
        source="smc|dm_smc",
    params:
        n_particles=lambda wc: min(SMC["n_particles"], SMC_START_CONFIGS[wc.source] // SMC["replicas"]),
        seed=lambda wc: derive_seed(config["seed"], "smc_u1", wc.source, L0, wc.beta),
        device=config["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m physml lattice smc {input.ensemble} --beta {wildcards.beta} --n-particles {params.n_particles}"
        f" {cli_flags(SMC, skip=('beta', 'n_particles'))} {cli_flags(U1['hmc'], ['step_size', 'n_steps'])}"
        " --seed {params.seed} --device {params.device} --threads {threads} --out {output.ensemble} > {log} 2>&1"


rule compare_u1:
    conda:
        CONDA_ENV
    input:
        observables=list(dict.fromkeys(U1_DM_OBSERVABLES + U1_SMC_OBSERVABLES + U1_AUTHORS_OBSERVABLES)),
    output:
        table="results/tables/u1_hmc_vs_dm.nc",
        csv=table_csv("u1_hmc_vs_dm", "Lattice: U(1)"),
    log:
        "results/logs/tables/u1_hmc_vs_dm.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml lattice compare {input.observables} --reference exact --out {output.table}"
        " --csv {output.csv} --threads {threads} > {log} 2>&1"


rule fig_u1_volume:
    conda:
        CONDA_ENV
    input:
        observables=U1_VOLUME_OBSERVABLES,
        table="results/tables/u1_hmc_vs_dm.nc",
    output:
        figure_outputs("fig_u1_volume"),
    log:
        "results/logs/figures/fig_u1_volume.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure u1_volume {input.observables} {input.table} --threads {threads}"
        " --out results/figures/fig_u1_volume > {log} 2>&1"


rule fig_u1_coupling:
    conda:
        CONDA_ENV
    input:
        observables=list(dict.fromkeys(U1_COUPLING_OBSERVABLES + U1_SMC_OBSERVABLES + U1_AUTHORS_OBSERVABLES)),
        table="results/tables/u1_hmc_vs_dm.nc",
    output:
        figure_outputs("fig_u1_coupling"),
    log:
        "results/logs/figures/fig_u1_coupling.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure u1_coupling {input.observables} {input.table} --threads {threads}"
        " --out results/figures/fig_u1_coupling > {log} 2>&1"


ALL_TARGETS.extend(
    [
        "results/tables/u1_hmc_vs_dm.nc",
        "results/tables/u1_hmc_vs_dm.csv",
        *figure_outputs("fig_u1_volume"),
        *figure_outputs("fig_u1_coupling"),
    ]
)
