# Diffusion model for phi^4: train on the hmc_train ensemble at phi4.L (one model per kappa),
# generate at L * diffusion.generate.L_factors (raw: dm; after MALA: dm_mala; the network
# silenced: law_only), the MALA-only control (mala_only), and the exact path at
# diffusion.exact.L (the same models; proposals with their density: dm_q; corrected: dm_imh,
# dm_rw); measure (generic `measure` rule) and compare with the independent hmc ensemble at
# every (kappa, L).
DIFF = config["diffusion"]
DM_GEN = DIFF["generate"]  # one n_configs per L_factor (checked with the config)
DM_LS = [PHI4["L"] * f for f in DM_GEN["L_factors"]]
DM_N_CONFIGS = dict(zip(DM_LS, DM_GEN["n_configs"]))
MALA = DIFF["mala"]
MALA_OPTIONS = mala_flags(MALA)
PHI4_MALA_OPTIONS = f"{MALA_OPTIONS} {cli_flags(MALA, ['global_moves', 'fourier'], prefix='mala_')}"   # phi^4 only
EXACT = DIFF["exact"]


rule train_phi4:
    """One model per kappa: `models` with the default recipe (diffusion.recipe), `models_RECIPE`
    with another recipe compared beside it (diffusion.compare_recipes); trained on the hmc_train
    ensemble, never on the reference."""
    conda:
        CONDA_ENV
    input:
        ensemble="results/phi4/hmc_train/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    output:
        model="results/phi4/{models}/L{L}_kappa{kappa}_lam{lam}/model.pt",
        history="results/phi4/{models}/L{L}_kappa{kappa}_lam{lam}/training.nc",
    log:
        "results/logs/phi4/{models}/L{L}_kappa{kappa}_lam{lam}.train.log",
    benchmark:
        "results/benchmarks/phi4/{models}/L{L}_kappa{kappa}_lam{lam}.train.tsv"
    wildcard_constraints:
        models="models(_edm|_song)?",
    params:
        recipe=lambda wc: wc.models.removeprefix("models_") if "_" in wc.models else DIFF["recipe"],
        seed=lambda wc: derive_seed(config["seed"], "train_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=3000,
        runtime=240,
    shell:
        train_command(DIFF, DIFF["train"]["epochs"], "{params.recipe}", f" --generate-L {max(DM_LS)}")


rule sample_phi4:
    conda:
        CONDA_ENV
    input:
        model=lambda wc: f"{phi4_model_dir(wc.kappa, wc.lam)}/model.pt",
    output:
        dm="results/phi4/dm/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
        dm_mala="results/phi4/dm_mala/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
        law_only="results/phi4/law_only/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/dm/L{L}_kappa{kappa}_lam{lam}.sample.log",
    benchmark:
        "results/benchmarks/phi4/dm/L{L}_kappa{kappa}_lam{lam}.sample.tsv"
    params:
        n_configs=lambda wc: DM_N_CONFIGS.get(int(wc.L), DM_GEN["n_configs"][-1]),
        seed=lambda wc: derive_seed(config["seed"], "sample_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=3000,
        runtime=240,
    shell:
        sample_command(DIFF["sample"], PHI4_MALA_OPTIONS, " --law-out {output.law_only}")


rule sample_phi4_exact:
    """The exact path: the model's proposals at diffusion.exact.L with their density (dm_q), the
    independence Metropolis chain over them (dm_imh) and their importance weights (dm_rw)."""
    conda:
        CONDA_ENV
    input:
        model=lambda wc: f"{phi4_model_dir(wc.kappa, wc.lam)}/model.pt",
    output:
        dm_q="results/phi4/dm_q/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
        dm_imh="results/phi4/dm_imh/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
        dm_rw="results/phi4/dm_rw/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/dm_q/L{L}_kappa{kappa}_lam{lam}.sample.log",
    benchmark:
        "results/benchmarks/phi4/dm_q/L{L}_kappa{kappa}_lam{lam}.sample.tsv"
    params:
        n_configs=EXACT["n_configs"],
        seed=lambda wc: derive_seed(config["seed"], "sample_phi4_exact", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=240,
    shell:
        exact_command(EXACT, cli_flags(EXACT, ["n_steps"]),
                      " --source dm_q --imh-out {output.dm_imh} --rw-out {output.dm_rw}", "{output.dm_q}")


rule sample_phi4_exact_steps:
    """ESS/N and acceptance against the sampler's steps (fig_phi4_exact_dm)."""
    conda:
        CONDA_ENV
    input:
        model=lambda wc: f"{phi4_model_dir(wc.kappa, wc.lam)}/model.pt",
    output:
        dm_q="results/phi4/exact_steps/L{L}_kappa{kappa}_lam{lam}/steps{steps}/dm_q.nc",
        dm_imh="results/phi4/exact_steps/L{L}_kappa{kappa}_lam{lam}/steps{steps}/dm_imh.nc",
    log:
        "results/logs/phi4/exact_steps/L{L}_kappa{kappa}_lam{lam}_steps{steps}.log",
    wildcard_constraints:
        steps=r"\d+",
    params:
        n_configs=EXACT["sweep_n_configs"],
        seed=lambda wc: derive_seed(config["seed"], "sample_phi4_exact", wc.L, wc.kappa, wc.lam, wc.steps),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=240,
    shell:
        exact_command(EXACT, "--n-steps {wildcards.steps}", " --source dm_q --imh-out {output.dm_imh}",
                      "{output.dm_q}")


rule mala_phi4:
    conda:
        CONDA_ENV
    input:
        data=lambda wc: f"{phi4_dir(wc.kappa, lam=wc.lam, source='hmc_train')}/ensemble.nc",
    output:
        ensemble="results/phi4/mala_only/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/mala_only/L{L}_kappa{kappa}_lam{lam}.log",
    params:
        n_configs=lambda wc: DM_N_CONFIGS.get(int(wc.L), DM_GEN["n_configs"][-1]),
        start=lambda wc: "constant" if float(wc.kappa) in MALA["phi4_constant_start_kappa"] else "noise",
        seed=lambda wc: derive_seed(config["seed"], "mala_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m physml lattice mala phi4 --L {wildcards.L} --kappa {wildcards.kappa} --lam {wildcards.lam}"
        " --n-configs {params.n_configs} --start {params.start} --scale-from {input.data}"
        f" {PHI4_MALA_OPTIONS}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output.ensemble} > {log} 2>&1"


# every (kappa, L) compared: its hmc reference, the training ensemble where a model was
# trained, and the generated sources
PHI4_DM_OBSERVABLES = [
    f"{phi4_dir(k, L=L, source=s)}/observables.nc"
    for k in PHI4["kappa"]
    for L in DM_LS
    for s in ("hmc", "dm", "dm_mala", "mala_only", "law_only") + (("hmc_train",) if L == PHI4["L"] else ())
]
PHI4_EXACT_OBSERVABLES = [
    f"{phi4_dir(k, L=EXACT['L'], source=s)}/observables.nc"
    for k in PHI4["kappa"]
    for s in ("hmc", "dm_q", "dm_imh", "dm_rw")
]
PHI4_EXACT_STEPS = [
    f"results/phi4/exact_steps/L{EXACT['L']}_kappa{fmt(k)}_lam{fmt(PHI4['lam'])}/steps{n}/{s}.nc"
    for k in EXACT["sweep_kappa"]
    for n in EXACT["step_sweep"]
    for s in ("dm_q", "dm_imh")
]
# Other recipes side by side (diffusion.compare_recipes): raw samples, source dm_RECIPE.
OTHER_RECIPES = [r for r in DIFF["compare_recipes"] if r != DIFF["recipe"]]
PHI4_RECIPE_OBSERVABLES = [
    f"{phi4_dir(k, L=L, source='dm_' + r)}/observables.nc" for k in PHI4["kappa"] for L in DM_LS for r in OTHER_RECIPES
]


rule sample_phi4_recipe:
    conda:
        CONDA_ENV
    input:
        model=lambda wc: f"{phi4_model_dir(wc.kappa, wc.lam, recipe=wc.recipe)}/model.pt",
    output:
        dm="results/phi4/dm_{recipe}/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/dm_{recipe}/L{L}_kappa{kappa}_lam{lam}.sample.log",
    wildcard_constraints:
        recipe="edm|song",
    params:
        n_configs=lambda wc: DM_N_CONFIGS.get(int(wc.L), DM_GEN["n_configs"][-1]),
        seed=lambda wc: derive_seed(config["seed"], "sample_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=3000,
        runtime=240,
    shell:
        sample_command(DIFF["sample"], extra=" --source dm_{wildcards.recipe}")


rule compare_phi4:
    conda:
        CONDA_ENV
    input:
        observables=list(dict.fromkeys(PHI4_DM_OBSERVABLES + PHI4_EXACT_OBSERVABLES + PHI4_RECIPE_OBSERVABLES)),
    output:
        table="results/tables/phi4_hmc_vs_dm.nc",
        csv=table_csv("phi4_hmc_vs_dm", "Lattice: phi^4"),
    log:
        "results/logs/tables/phi4_hmc_vs_dm.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml lattice compare {input.observables} --reference hmc --out {output.table}"
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


rule fig_phi4_mala_steps:
    conda:
        CONDA_ENV
    input:
        hmc=[f"{phi4_dir(k, L=L)}/observables.nc" for k in PHI4["kappa"] for L in DM_LS],
        ensembles=[
            f"{phi4_dir(k, L=L, source=s)}/ensemble.nc"
            for k in PHI4["kappa"]
            for L in DM_LS
            for s in ("dm_mala", "mala_only")
        ],
    output:
        figure_outputs("fig_phi4_mala_steps"),
    log:
        "results/logs/figures/fig_phi4_mala_steps.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure phi4_mala_steps {input.hmc} {input.ensembles} --threads {threads}"
        " --out results/figures/fig_phi4_mala_steps > {log} 2>&1"


rule fig_phi4_exact_dm:
    conda:
        CONDA_ENV
    input:
        ensembles=[
            f"{phi4_dir(k, L=EXACT['L'], source=s)}/ensemble.nc" for k in PHI4["kappa"] for s in ("dm_q", "dm_imh")
        ]
        + PHI4_EXACT_STEPS,
    output:
        figure_outputs("fig_phi4_exact_dm"),
    log:
        "results/logs/figures/fig_phi4_exact_dm.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure phi4_exact_dm {input.ensembles} --threads {threads}"
        " --out results/figures/fig_phi4_exact_dm > {log} 2>&1"


ALL_TARGETS.extend(
    [
        *figure_outputs("fig_phi4_exact_dm"),
        *figure_outputs("fig_phi4_mala_steps"),
        "results/tables/phi4_hmc_vs_dm.nc",
        "results/tables/phi4_hmc_vs_dm.csv",
        *figure_outputs("fig_phi4_denoising"),
        *figure_outputs("fig_phi4_hmc_vs_dm"),
    ]
)
