"""Rules derive their flags from the config (common.smk `cli_flags`): every command of a dry
run parses with its verb's own parser, gives no option twice, and no rule spells a config
value into a flag by hand."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from physml.cli.main import build_parser

ROOT = Path(__file__).parents[1]
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
# a flag whose value indexes a config block inside the shell string: `--x {params.p[x]}`,
# f"--x {BLOCK['x']}"
HAND_SPELLED = re.compile(r"--[a-z0-9-]+ \{+[^{}\s]*\[")


def _commands(config: str, *targets: str) -> list[list[str]]:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *targets, "-n", "-F", "-p", "--configfile",
                           config], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    commands = []
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.removeprefix("Shell command: ").strip()
        if "python -m physml" not in line:
            continue
        words = shlex.split(line.split(" > ")[0])
        module = words.index("-m") + 1
        argv = words[module + 1:]
        commands.append(argv)
    return commands


def _options(argv: list[str]) -> list[str]:
    return [w for w in argv if w.startswith("--")]


@pytest.mark.parametrize("config, targets", [("config/config.yaml", ()),
                                             ("config/paper.yaml", ("all", "fig_phase_boundaries"))])
def test_every_command_of_a_dry_run_parses_with_its_verb(config, targets):
    commands = _commands(config, *targets)
    assert len(commands) > 50
    verbs = {" ".join(argv[:2]) for argv in commands}
    assert {"lattice hmc", "lattice exact", "lattice mala", "lattice smc", "diffusion train",
            "diffusion sample", "phases cell", "rmt linear"} <= verbs
    for argv in commands:
        options = _options(argv)
        assert len(options) == len(set(options)), f"an option given twice: {' '.join(argv)}"
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit:
            pytest.fail(f"does not parse: physml {' '.join(argv)}")


def test_no_rule_spells_a_config_value_into_a_flag():
    hits = [f"{path.name}:{n}: {line.strip()}" for path in RULE_FILES
            for n, line in enumerate(path.read_text().splitlines(), 1) if HAND_SPELLED.search(line)]
    assert not hits, "flags from the config go through cli_flags:\n" + "\n".join(hits)


def test_the_lint_finds_a_hand_spelled_flag():
    assert HAND_SPELLED.search('" --n-null {params.p[n_null]}"')
    assert HAND_SPELLED.search('f" --batch-size {DM_U1[\'sample\'][\'batch_size\']}"')
    assert not HAND_SPELLED.search('" --seed {params.seed} --L {wildcards.L}"')
