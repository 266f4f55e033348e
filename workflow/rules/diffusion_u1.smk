# Physics-conditioned diffusion for U(1) (arXiv:2502.05504): one model trained on the
# u1.training ensemble at (beta_0, L_0); generated at beta_0 on diffusion.u1.volume_L and at
# L_0 on diffusion.u1.coupling_beta (raw: dm; after MALA: dm_mala), the MALA-only control
# from a hot start (mala_only), the beta_0 DM + MALA ensemble reweighted to
# diffusion.u1.reweight_beta (dm_reweighted), the model as an exact sampler with its density
# (diffusion.u1.exact: dm_q, dm_imh, dm_rw, dm_smc); all compared with the exact sampler.
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
# L_0 to each u1.smc.beta from the training ensemble (smc), beside HMC with flux moves
# (hmc_flux) and the exact sampler.
SMC = U1["smc"]
U1_SMC_OBSERVABLES = u1_observables([(b, L0) for b in SMC["beta"]], ("exact", "hmc", "hmc_flux", "smc"))
# The model as an exact sampler at the generated beta (diffusion.u1.exact): proposals with their
# density (dm_q), the independence Metropolis chain (dm_imh), importance weights (dm_rw) at every
# (beta, L); SMC from the weighted proposals at smc_beta0 (dm_smc) beside SMC from the exact
# sampler there (smc; at L_0 the training ensemble's smc rows), to each smc_beta.
EXACT_U1 = DM_U1["exact"]
EXACT_BETA0 = EXACT_U1["smc_beta0"]
U1_EXACT_POINTS = [(b, L) for L in EXACT_U1["L"] for b in EXACT_U1["beta"]]
U1_EXACT_ENSEMBLES = [f"{u1_dir(b, L, s)}/ensemble.nc" for b, L in U1_EXACT_POINTS for s in ("dm_q", "dm_imh")]
U1_EXACT_OBSERVABLES = u1_observables(U1_EXACT_POINTS, ("exact", "dm_q", "dm_imh", "dm_rw")) + u1_observables(
    [(b, L) for L in EXACT_U1["L"] for b in EXACT_U1["smc_beta"]], ("exact", "smc", "dm_smc")
)
EXACT_SMC_PARTICLES = min(SMC["n_particles"], EXACT_U1["smc_n_configs"] // SMC["replicas"])


def smc_start(source, L):
    """The start ensemble of SMC `source` at L: the model's weighted proposals at smc_beta0
    (dm_smc); the training ensemble at L_0 and the exact sampler at smc_beta0 elsewhere (smc)."""
    if source == "dm_smc":
        return f"{u1_dir(EXACT_BETA0, L, 'dm_q')}/ensemble.nc"
    return f"{U1_TRAINING}/ensemble.nc" if int(L) == L0 else f"{u1_dir(EXACT_BETA0, L, 'exact')}/ensemble.nc"


def smc_particles(source, L):
    """Particles per replica: u1.smc.n_particles, capped by the start ensemble; off L_0 the pair
    dm_smc / smc at the exact path's count, so that the two stand side by side."""
    if source == "smc" and int(L) == L0:
        return min(SMC["n_particles"], U1["training"]["n_configs"] // SMC["replicas"])
    return EXACT_SMC_PARTICLES
# The authors' annealed-Langevin sampler with Metropolis-Hastings steps (dm_authors) at L_0.
AUTHORS = DM_U1["authors"]
AUTHORS_FLAGS = cli_flags(AUTHORS, skip=("beta", "n_configs"))
U1_AUTHORS_OBSERVABLES = u1_observables([(b, L0) for b in AUTHORS["beta"]], ("exact", "dm_authors"))


rule sample_u1_exact:
    """The model at beta with its density on the torus (dm_q), the independence Metropolis chain
    over the proposals (dm_imh) and their importance weights (dm_rw); at smc_beta0 the proposals
    dm_smc starts from."""
    conda:
        CONDA_ENV
    input:
        model=U1_MODEL,
    output:
        dm_q="results/u1/dm_q/L{L}_beta{beta}/ensemble.nc",
        dm_imh="results/u1/dm_imh/L{L}_beta{beta}/ensemble.nc",
        dm_rw="results/u1/dm_rw/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/dm_q/L{L}_beta{beta}.sample.log",
    benchmark:
        "results/benchmarks/u1/dm_q/L{L}_beta{beta}.sample.tsv"
    params:
        n_configs=lambda wc: EXACT_U1["smc_n_configs"] if float(wc.beta) == EXACT_BETA0 else EXACT_U1["n_configs"],
        seed=lambda wc: derive_seed(config["seed"], "sample_u1_exact", wc.L, wc.beta),
        device=config["device"],
    threads: 1
    resources:
        gpu=GPUS,
        mem_mb=4000,
        runtime=240,
    shell:
        exact_command(
            EXACT_U1,
            cli_flags(EXACT_U1, ["n_steps"]),
            " --beta {wildcards.beta} --source dm_q --imh-out {output.dm_imh} --rw-out {output.dm_rw}",
            "{output.dm_q}",
        )


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
        train_command(DIFF, DM_U1["epochs"], "song", " " + cli_flags(DM_U1, ["gauge_covariant", "plaquette_law"]))


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
        ensemble=lambda wc: smc_start(wc.source, wc.L),
    output:
        ensemble="results/u1/{source}/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/{source}/L{L}_beta{beta}.log",
    benchmark:
        "results/benchmarks/u1/{source}/L{L}_beta{beta}.tsv"
    wildcard_constraints:
        source="smc|dm_smc",
    params:
        n_particles=lambda wc: smc_particles(wc.source, wc.L),
        seed=lambda wc: derive_seed(config["seed"], "smc_u1", wc.source, int(wc.L), wc.beta),
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
        observables=list(
            dict.fromkeys(U1_DM_OBSERVABLES + U1_SMC_OBSERVABLES + U1_AUTHORS_OBSERVABLES + U1_EXACT_OBSERVABLES)
        ),
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


rule fig_u1_exact_dm:
    conda:
        CONDA_ENV
    input:
        ensembles=U1_EXACT_ENSEMBLES,
    output:
        figure_outputs("fig_u1_exact_dm"),
    log:
        "results/logs/figures/fig_u1_exact_dm.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure u1_exact_dm {input.ensembles} --threads {threads}"
        " --out results/figures/fig_u1_exact_dm > {log} 2>&1"


ALL_TARGETS.extend(
    [
        "results/tables/u1_hmc_vs_dm.nc",
        "results/tables/u1_hmc_vs_dm.csv",
        *figure_outputs("fig_u1_volume"),
        *figure_outputs("fig_u1_coupling"),
        *figure_outputs("fig_u1_exact_dm"),
    ]
)
