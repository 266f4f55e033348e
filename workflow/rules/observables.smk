# Observables of any ensemble artifact (the theory is read from the file).


rule measure:
    conda:
        CONDA_ENV
    input:
        ensemble="results/{theory}/{source}/{point}/ensemble.nc",
    output:
        observables="results/{theory}/{source}/{point}/observables.nc",
    log:
        "results/logs/{theory}/{source}/{point}.measure.log",
    wildcard_constraints:
        theory=r"[a-z0-9]+",
        point=r"[^/]+",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m physml lattice measure {input.ensemble} --threads {threads}"
        " --out {output.observables} > {log} 2>&1"
