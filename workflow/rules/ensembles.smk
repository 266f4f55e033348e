# Monte Carlo ensembles: one job per (theory, parameters).
PHI4 = config["phi4"]



rule hmc_phi4:
    """`hmc`: the reference of every comparison at (kappa, L), phi4.reference_factor times the
    configurations; `hmc_train`: the training ensemble of the diffusion models, the same
    settings with another seed."""
    conda:
        CONDA_ENV
    output:
        ensemble="results/phi4/{source}/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/{source}/L{L}_kappa{kappa}_lam{lam}.log",
    benchmark:
        "results/benchmarks/phi4/{source}/L{L}_kappa{kappa}_lam{lam}.tsv"
    wildcard_constraints:
        source="hmc|hmc_train",
    params:
        seed=lambda wc: derive_seed(config["seed"], *(["hmc_phi4"] if wc.source == "hmc" else ["hmc_phi4", "train"]),
                                    wc.L, wc.kappa, wc.lam),
        source=lambda wc: "" if wc.source == "hmc" else f" --source {wc.source}",
        n_configs=lambda wc: PHI4["hmc"]["n_configs"] * (PHI4["reference_factor"] if wc.source == "hmc" else 1),
        device=config["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m physml lattice hmc phi4 --L {wildcards.L} --kappa {wildcards.kappa} --lam {wildcards.lam}"
        f" {cli_flags(PHI4['hmc'], skip=('n_configs',))} --n-configs {{params.n_configs}}{{params.source}}"
        " --seed {params.seed} --device {params.device}"
        " --threads {threads} --out {output.ensemble} > {log} 2>&1"


# 2D U(1): HMC over the beta x L grid, the diffusion model's training ensemble (HMC),
# HMC with u1.flux_moves global flux moves after every trajectory (source = hmc_flux;
# leapfrog and run lengths of u1.hmc), and the exact sampler (source = exact) over the
# same grid.
U1 = config["u1"]



U1_TRAINING = u1_dir(U1["training"]["beta"], U1["training"]["L"], source="training")



rule hmc_u1:
    conda:
        CONDA_ENV
    output:
        ensemble="results/u1/{source}/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/{source}/L{L}_beta{beta}.log",
    benchmark:
        "results/benchmarks/u1/{source}/L{L}_beta{beta}.tsv"
    wildcard_constraints:
        source="hmc|hmc_flux|training",
    params:
        options=lambda wc: u1_hmc_options(U1["hmc"], U1["training"] if wc.source == "training" else U1["hmc"])
        + (" " + cli_flags(U1, ["flux_moves"]) if wc.source == "hmc_flux" else ""),
        seed=lambda wc: derive_seed(config["seed"], "hmc_u1", wc.source, wc.L, wc.beta),
        device=config["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "python -m physml lattice hmc u1 --L {wildcards.L} --beta {wildcards.beta} {params.options}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --out {output.ensemble} > {log} 2>&1"


rule exact_u1:
    conda:
        CONDA_ENV
    output:
        ensemble="results/u1/exact/L{L}_beta{beta}/ensemble.nc",
    log:
        "results/logs/u1/exact/L{L}_beta{beta}.log",
    params:
        seed=lambda wc: derive_seed(config["seed"], "exact_u1", wc.L, wc.beta),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m physml lattice exact u1 --L {wildcards.L} --beta {wildcards.beta}"
        f" {cli_flags(U1['exact'])}"
        " --seed {params.seed} --threads {threads} --out {output.ensemble} > {log} 2>&1"


ALL_TARGETS.append(f"{U1_TRAINING}/observables.nc")
