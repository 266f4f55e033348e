# Named figure targets: `snakemake fig_NAME` rebuilds one figure and what it needs.


rule fig_phi4_hmc:
    conda:
        CONDA_ENV
    input:
        observables=[f"{phi4_dir(k)}/observables.nc" for k in PHI4["kappa"]],
    output:
        figure_outputs("fig_phi4_hmc"),
    log:
        "results/logs/figures/fig_phi4_hmc.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure phi4_hmc {input.observables} --threads {threads}"
        " --out results/figures/fig_phi4_hmc > {log} 2>&1"


ALL_TARGETS.extend(figure_outputs("fig_phi4_hmc"))


rule fig_u1_hmc:
    conda:
        CONDA_ENV
    input:
        observables=[f"{u1_dir(b, L, source)}/observables.nc"
                     for source in ("hmc", "exact") for L in U1["L"] for b in U1["beta"]],
    output:
        figure_outputs("fig_u1_hmc"),
    log:
        "results/logs/figures/fig_u1_hmc.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m physml figure u1_hmc {input.observables} --threads {threads}"
        " --out results/figures/fig_u1_hmc > {log} 2>&1"


ALL_TARGETS.extend(figure_outputs("fig_u1_hmc"))
