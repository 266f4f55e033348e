# Diffusion model for phi^4: train on the HMC ensemble at phi4.L (one model per kappa),
# generate at L * diffusion.generate.L_factors, measure (generic `measure` rule), compare.
DIFF = config["diffusion"]
DM_GEN = DIFF["generate"]
if len(DM_GEN["n_configs"]) != len(DM_GEN["L_factors"]):
    raise ValueError(
        "config key 'diffusion.generate.n_configs' must have one entry per "
        f"'diffusion.generate.L_factors' ({DM_GEN['L_factors']}), got {DM_GEN['n_configs']}"
    )
DM_LS = [PHI4["L"] * f for f in DM_GEN["L_factors"]]
DM_N_CONFIGS = dict(zip(DM_LS, DM_GEN["n_configs"]))



rule train_phi4:
    conda:
        CONDA_ENV
    input:
        ensemble="results/phi4/hmc/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    output:
        model="results/phi4/models/L{L}_kappa{kappa}_lam{lam}/model.pt",
        history="results/phi4/models/L{L}_kappa{kappa}_lam{lam}/training.nc",
    log:
        "results/logs/phi4/models/L{L}_kappa{kappa}_lam{lam}.train.log",
    benchmark:
        "results/benchmarks/phi4/models/L{L}_kappa{kappa}_lam{lam}.train.tsv"
    params:
        sde=DIFF["sde"],
        net=DIFF["model"],
        channels=" ".join(str(c) for c in DIFF["model"]["channels"]),
        train=DIFF["train"],
        flags=train_flags(DIFF["train"], DIFF["model"]),
        seed=lambda wc: derive_seed(config["seed"], "train_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        gpu=1,
        mem_mb=3000,
        runtime=240,
    shell:
        "python -m physml train {input.ensemble} --out {output.model} --history {output.history}"
        " --sde {params.sde[name]} --sigma {params.sde[sigma]} --channels {params.channels}"
        " --embed-dim {params.net[embed_dim]} --fourier-scale {params.net[fourier_scale]}"
        " --groups {params.net[groups]} --blocks-per-level {params.net[blocks_per_level]}"
        " --epochs {params.train[epochs]} --batch-size {params.train[batch_size]}"
        " --lr {params.train[lr]} --lr-schedule {params.train[lr_schedule]}"
        " --lr-final-factor {params.train[lr_final_factor]} --ema-decay {params.train[ema_decay]}"
        " --t-min {params.train[t_min]} --t-sampling {params.train[t_sampling]}"
        " --normalisation {params.train[normalisation]}"
        " --grad-clip {params.train[grad_clip]}{params.flags} --seed {params.seed}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule sample_phi4:
    conda:
        CONDA_ENV
    input:
        model=lambda wc: f"{phi4_model_dir(wc.kappa, wc.lam)}/model.pt",
    output:
        ensemble="results/phi4/dm/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/dm/L{L}_kappa{kappa}_lam{lam}.sample.log",
    benchmark:
        "results/benchmarks/phi4/dm/L{L}_kappa{kappa}_lam{lam}.sample.tsv"
    params:
        sample=DIFF["sample"],
        taus=" ".join(f"{t:g}" for t in DIFF["sample"]["snapshot_taus"]),
        n_configs=lambda wc: DM_N_CONFIGS.get(int(wc.L), DM_GEN["n_configs"][-1]),
        seed=lambda wc: derive_seed(config["seed"], "sample_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        gpu=1,
        mem_mb=3000,
        runtime=240,
    shell:
        "python -m physml sample {input.model} --L {wildcards.L} --n-configs {params.n_configs}"
        " --sampler {params.sample[sampler]} --n-steps {params.sample[n_steps]}"
        " --t-min {params.sample[t_min]} --grid {params.sample[grid]} --snr {params.sample[snr]}"
        " --n-corrector {params.sample[n_corrector]} --batch-size {params.sample[batch_size]}"
        " --snapshot-taus {params.taus} --n-snapshots {params.sample[n_snapshots]}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output.ensemble} > {log} 2>&1"


PHI4_DM_OBSERVABLES = [
    f"{phi4_dir(k, L=L, source=s)}/observables.nc"
    for k in PHI4["kappa"]
    for L in DM_LS
    for s in ("hmc", "dm")
]


rule compare_phi4:
    conda:
        CONDA_ENV
    input:
        observables=PHI4_DM_OBSERVABLES,
    output:
        table="results/tables/phi4_hmc_vs_dm.nc",
        csv="results/tables/phi4_hmc_vs_dm.csv",
    log:
        "results/logs/tables/phi4_hmc_vs_dm.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml compare {input.observables} --reference hmc --out {output.table}"
        " --csv {output.csv} --threads {threads} > {log} 2>&1"


rule fig_phi4_denoising:
    conda:
        CONDA_ENV
    input:
        ensembles=[f"{phi4_dir(k, source='dm')}/ensemble.nc" for k in PHI4["kappa"]],
    output:
        figure_outputs("fig_phi4_denoising"),
    log:
        "results/logs/figures/fig_phi4_denoising.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure phi4_denoising {input.ensembles} --threads {threads}"
        " --out results/figures/fig_phi4_denoising > {log} 2>&1"


rule fig_phi4_hmc_vs_dm:
    conda:
        CONDA_ENV
    input:
        observables=PHI4_DM_OBSERVABLES,
        table="results/tables/phi4_hmc_vs_dm.nc",
    output:
        figure_outputs("fig_phi4_hmc_vs_dm"),
    log:
        "results/logs/figures/fig_phi4_hmc_vs_dm.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure phi4_hmc_vs_dm {input.observables} {input.table} --threads {threads}"
        " --out results/figures/fig_phi4_hmc_vs_dm > {log} 2>&1"


ALL_TARGETS.extend(
    [
        "results/tables/phi4_hmc_vs_dm.nc",
        "results/tables/phi4_hmc_vs_dm.csv",
        *figure_outputs("fig_phi4_denoising"),
        *figure_outputs("fig_phi4_hmc_vs_dm"),
    ]
)
