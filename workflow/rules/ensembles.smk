# Monte Carlo ensembles: one job per (theory, parameters).
PHI4 = config["phi4"]


def phi4_dir(kappa, L=PHI4["L"], lam=PHI4["lam"], source="hmc"):
    return f"results/phi4/{source}/L{L}_kappa{fmt(kappa)}_lam{fmt(lam)}"


rule hmc_phi4:
    output:
        ensemble="results/phi4/hmc/L{L}_kappa{kappa}_lam{lam}/ensemble.nc",
    log:
        "results/logs/phi4/hmc/L{L}_kappa{kappa}_lam{lam}.log",
    benchmark:
        "results/benchmarks/phi4/hmc/L{L}_kappa{kappa}_lam{lam}.tsv"
    params:
        hmc=PHI4["hmc"],
        seed=lambda wc: derive_seed(config["seed"], "hmc_phi4", wc.L, wc.kappa, wc.lam),
        device=config["device"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "{PHYSML} hmc phi4 --L {wildcards.L} --kappa {wildcards.kappa} --lam {wildcards.lam}"
        " --n-configs {params.hmc[n_configs]} --n-chains {params.hmc[n_chains]}"
        " --n-therm {params.hmc[n_therm]} --meas-interval {params.hmc[meas_interval]}"
        " --step-size {params.hmc[step_size]} --n-steps {params.hmc[n_steps]}"
        " --start {params.hmc[start]} --seed {params.seed} --device {params.device}"
        " --threads {threads} --rule {rule} --out {output.ensemble} > {log} 2>&1"
