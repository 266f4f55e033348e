"""Config validation: shipped configs pass; bad values (NaN and infinity included), unknown keys,
inconsistent keys and YAML syntax errors fail before any job, with one line per problem naming
the key (or file and line); config/README.md describes every key of the schema, with the
schema's default and the quick config's value."""

import copy
import re
import subprocess
import sys

import pytest
import yaml

from physml.config import ConfigError, _merge, load_yaml, validate_config


@pytest.fixture
def schema(root):
    return root / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def quick(root):
    return yaml.safe_load((root / "config" / "config.yaml").read_text())


def _problems(config, schema) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, schema)
    return str(info.value)


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(root, schema, name):
    validate_config(yaml.safe_load((root / "config" / name).read_text()), schema)


def test_defaults_are_filled(schema):
    config = validate_config({}, schema)
    assert config["phi4"]["hmc"]["n_steps"] >= 1 and config["phi4"]["lam"] == 0.022


def test_paper_config_inherits_nothing_from_the_quick_one(root, schema, quick):
    """`--configfile config/paper.yaml` is laid over config/config.yaml: the result must be
    paper.yaml alone."""
    paper = yaml.safe_load((root / "config" / "paper.yaml").read_text())
    merged = validate_config(_merge(quick, copy.deepcopy(paper)), schema)
    assert merged == validate_config(paper, schema)


@pytest.mark.parametrize("patch, key, allowed", [
    ({"phi4": {"kappa": [-1]}}, "phi4.kappa.0", "> 0"),
    ({"phi4": {"L": 7.5}}, "phi4.L", "type integer"),
    ({"phi4": {"L": "big"}}, "phi4.L", "type integer"),
    ({"phi4": {"hmc": {"start": "warm"}}}, "phi4.hmc.start", "['cold', 'hot']"),
    ({"phi4": {"kapa": [0.2]}}, "phi4.kapa", "did you mean 'kappa'? (keys here: L, hmc, kappa, lam, reference_factor)"),
    ({"sed": 3}, "sed", "did you mean 'seed'?"),
])
def test_bad_values_name_key_and_allowed(schema, quick, patch, key, allowed):
    text = _problems(_merge(quick, patch), schema)
    assert f"config key '{key}'" in text and allowed in text
    assert ", (" not in text and "Each study has its own section" not in text  # no schema dump


@pytest.mark.parametrize("patch, key", [
    ({"phi4": {"hmc": {"step_size": float("nan")}}}, "phi4.hmc.step_size"),   # exclusiveMinimum lets NaN by
    ({"phi4": {"kappa": [0.2, float("nan")]}}, "phi4.kappa.1"),
    ({"rmt": {"dbm": {"dt": float("inf")}}}, "rmt.dbm.dt"),
    ({"phases": {"n_steps": float("-inf")}}, "phases.n_steps"),               # and not also a type error
])
def test_nan_and_infinity_are_refused_naming_the_key(schema, quick, patch, key):
    text = _problems(_merge(quick, patch), schema)
    assert f"config key '{key}': " in text and "is not a finite number" in text, text
    assert text.count(f"'{key}'") == 1 and "1 problem(s)" in text, text


# three per study: each passes the schema and fails a check across keys
CROSS = [
    ({"phi4": {"hmc": {"n_configs": 1000, "n_chains": 64}}}, "phi4.hmc.n_configs"),
    ({"phi4": {"L": 18}}, "phi4.L"),                                   # U-Net factor 4
    ({"diffusion": {"generate": {"n_configs": [256]}}}, "diffusion.generate.n_configs"),
    ({"u1": {"hmc": {"n_configs": 1000}}}, "u1.hmc.n_configs"),
    ({"u1": {"training": {"n_configs": 100, "n_chains": 64}}}, "u1.training.n_configs"),
    ({"u1": {"training": {"L": 10}}}, "u1.training.L"),
    ({"diffusion": {"u1": {"volume_L": [8, 12, 30]}}}, "diffusion.u1.volume_L.2"),
    ({"diffusion": {"model": {"channels": [8, 16, 32, 64, 64]}}}, "diffusion.u1.volume_L.0"),  # factor 16
    ({"phases": {"snapshot_steps": [0, 100, 50000]}}, "phases.snapshot_steps"),
    ({"phases": {"n_steps": 100}}, "phases.snapshot_steps"),
    ({"phases": {"boundary_study": {"model": "relu"}}}, "phases.boundary_study.model"),
    ({"phases": {"boundary_study": {"n_steps": 1000}}}, "phases.boundary_study.snapshot_steps"),
    ({"rmt": {"linear": {"burn_in": 1000}}}, "rmt.linear.burn_in"),
    ({"rmt": {"linear": {"lr": [0.1, 1.5]}}}, "rmt.linear.lr"),
    ({"rmt": {"dbm": {"dt_sde": 0.003}}}, "rmt.dbm.dt_sde"),
    ({"rmt": {"transformer": {"dense_until": 5000}}}, "rmt.transformer.dense_until"),
]


@pytest.mark.parametrize("patch, key", CROSS)
def test_inconsistent_keys_are_caught(schema, quick, patch, key):
    text = _problems(_merge(quick, patch), schema)
    assert f"config key '{key}'" in text, text


def _dry_run(root, tmp_path, text):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
                          cwd=root, capture_output=True, text=True, timeout=300)


def test_dry_run_lists_every_problem_without_traceback(root, tmp_path):
    """`snakemake -n` stops on the config, one line per study's problem, no traceback."""
    proc = _dry_run(root, tmp_path, yaml.safe_dump(
        {"phi4": {"hmc": {"n_configs": 1000}}, "u1": {"training": {"L": 10}},
         "phases": {"snapshot_steps": [0, 10**9]}, "rmt": {"linear": {"burn_in": 5000}}}))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for key in ("phi4.hmc.n_configs", "u1.training.L", "phases.snapshot_steps", "rmt.linear.burn_in"):
        assert f"config key '{key}'" in out
    assert "Traceback" not in out and 'File "' not in out


def test_dry_run_refuses_nan_naming_the_key(root, tmp_path):
    """`kappa: [.nan]` once passed the schema and failed inside Snakemake (MissingInputException)."""
    proc = _dry_run(root, tmp_path, "phi4:\n  kappa: [0.21, .nan]\n  hmc: {step_size: .nan}\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for key in ("phi4.kappa.1", "phi4.hmc.step_size"):
        assert f"config key '{key}': nan is not a finite number" in out
    assert "Traceback" not in out and 'File "' not in out


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("phi4:\n  L: 16\n   lam: 2\n")
    with pytest.raises(ConfigError, match=rf"{bad}, line 3, column 7: YAML syntax error"):
        load_yaml(bad)
    proc = subprocess.run([sys.executable, "-m", "physml.config", str(bad)], cwd=tmp_path.parent,
                          capture_output=True, text=True)
    assert proc.returncode == 1


def _schema_keys(schema, prefix):
    for key, sub in schema.get("properties", {}).items():
        yield prefix + key
        yield from _schema_keys(sub, f"{prefix}{key}.")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _schema_keys(schema["additionalProperties"], f"{prefix}NAME.")


def test_config_readme_describes_every_schema_key(root):
    """config/README.md names every key of workflow/schemas as `block.key...`."""
    readme = (root / "config" / "README.md").read_text()
    schemas = root / "workflow" / "schemas"
    top = load_yaml(schemas / "config.schema.yaml")
    keys = [k for k in top["properties"] if "$ref" not in top["properties"][k]]
    for block, sub in top["properties"].items():
        if "$ref" in sub:
            keys += list(_schema_keys(load_yaml(schemas / sub["$ref"]), f"{block}."))
    missing = [k for k in keys if f"`{k}`" not in readme]
    assert not missing, f"config/README.md lacks {missing}"


def _readme_value(value) -> str:
    """A value as config/README.md writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(map(_readme_value, value)) + "]"
    return str(value)


def _get(config, key):
    for part in key.split("."):
        config = config[part]
    return config


def test_config_readme_shows_the_schema_default_and_the_quick_value(root, schema, quick):
    """Each key's row gives the schema's default and the quick config's value (bold where they
    differ), so that "default" has one meaning; blocks and NAME rows show their keys instead."""
    defaults, quick = validate_config({}, schema), validate_config(quick, schema)
    rows = re.findall(r"^\| `([\w.]+)` \| (.*?) \| (.*?) \| ", (root / "config" / "README.md").read_text(), re.M)
    wrong, checked = [], 0
    for key, default, quick_cell in rows:
        if "NAME" in key or isinstance(_get(defaults, key), dict):
            continue
        d, q = _get(defaults, key), _get(quick, key)
        expected = _readme_value(q) if q == d else f"**{_readme_value(q)}**"
        if (default, quick_cell) != (_readme_value(d), expected):
            wrong.append(f"{key}: README says {default} / {quick_cell}, configs give {_readme_value(d)} / {expected}")
        checked += 1
    assert checked > 150 and not wrong, "\n".join(wrong)


def test_the_quick_config_samples_phi4_as_the_cli_does_by_default(schema, quick):
    """`physml lattice hmc phi4` by hand (its defaults are the schema's, tests/test_defaults.py)
    runs the HMC settings of the quick config, which decorrelate near criticality."""
    assert validate_config(quick, schema)["phi4"]["hmc"] == validate_config({}, schema)["phi4"]["hmc"]


@pytest.mark.parametrize("device, gpus", [("auto", "gpu=1"), ("cpu", "gpu=0")])
def test_device_cpu_asks_slurm_for_no_gpu(root, device, gpus):
    """CPU-only SLURM clusters: `--config device=cpu` makes the GPU rules ask for no GPU
    through the shipped SLURM profile (a dry run prints each job's resources)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-F", "results/rmt/transformer/weights.nc",
                           "--profile", "profiles/slurm", "--config", f"device={device}"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    (line,) = [s for s in out.splitlines() if s.strip().startswith("resources:")]
    assert gpus in line.replace(" ", "").split(":", 1)[1].split(","), line
