"""CLI verb ``doctor``: what this machine offers the pipeline, before a run is planned.

Which physml is imported and from where, which C kernels compile here (compiler and
version) and so which engine each study's jobs will use, torch and CUDA, the SLURM
executor plugin and whether ``sbatch`` answers.  Exits 0: it reports, it does not judge.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
from pathlib import Path

import physml
from physml import native
from physml.io.artifacts import git_state

# study -> (the kernel it can use, what runs without it, what auto does with it); None: no kernel
STUDIES = {"hmc phi4": ("phi4_leapfrog", "torch leapfrog (about 3x slower)", "float64 on the CPU"),
           "phases cell": ("sgd_teacher_student", "numpy twin",
                           "where its cached calibration finds it faster than the twin"),
           "hmc u1, exact u1, smc": (None, "torch (no C kernel)", "")}


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _answer(cmd: list[str]) -> str:
    """The first line ``cmd`` prints, or why it printed none."""
    if shutil.which(cmd[0]) is None:
        return "not found on PATH"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"does not answer ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    first = text[0] if text else ""
    return first if out.returncode == 0 else f"fails (exit {out.returncode}: {first})"


def kernel_lines() -> list[str]:
    """One line per kernel (compiles here, with which clones) and per study (its engine)."""
    compiler = native._compiler()
    lines = [f"C compiler: {' '.join(compiler)} ({native.compiler_version(tuple(compiler))}); "
             f"kernel cache {native.cache_dir()}"]
    ok = {}
    for name in sorted({k for k, _, _ in STUDIES.values() if k}):
        try:
            native.load(name)
            ok[name] = True
            try:
                clones = ", ".join(native.runnable_clones(name))
            except AttributeError:      # a kernel without clones
                clones = ""
            lines.append(f"  kernel {name}: compiles" + (f"; clones this CPU runs: {clones}" if clones else ""))
        except native.KernelUnavailable as exc:
            ok[name] = False
            lines.append(f"  kernel {name}: UNAVAILABLE ({str(exc).splitlines()[0]})")
    lines.append("engines with --engine auto:")
    for study, (kernel, twin, when) in STUDIES.items():
        engine = (f"C kernel {kernel} ({when}), else the {twin}" if kernel and ok[kernel] else
                  f"{twin}" + (f": kernel {kernel} does not compile here" if kernel else ""))
        lines.append(f"  {study}: {engine}")
    return lines


def torch_lines() -> list[str]:
    import torch
    cuda = torch.cuda.is_available()
    gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if cuda else ""
    return [f"torch {torch.__version__}; CUDA {'available: ' + gpus if cuda else 'not available'}"
            f" (built for CUDA {torch.version.cuda or 'none'}); train, sample and rmt jobs run on "
            f"{'cuda' if cuda else 'cpu'} with --device auto"]


def slurm_lines() -> list[str]:
    plugin = _version("snakemake-executor-plugin-slurm")
    return [f"snakemake {_version('snakemake') or 'not installed'}; SLURM executor plugin "
            f"{plugin or 'not installed (pip install snakemake-executor-plugin-slurm)'}",
            f"sbatch --test-only (asks the controller, submits nothing): "
            f"{_answer(['sbatch', '--test-only', '--wrap', 'true'])}"]


def cmd_doctor(args: argparse.Namespace) -> None:
    commit, dirty = git_state()
    where = Path(physml.__file__).resolve().parent
    print(f"physml {physml.__version__} imported from {where} (git {commit[:10]}"
          f"{', uncommitted changes' if dirty else ''})")
    for line in kernel_lines() + torch_lines() + slurm_lines():
        print(line)


def verb_doctor(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=cmd_doctor)
