"""Validation of the workflow config against its JSON Schema (``workflow/schemas``).

The schema is split by study: ``config.schema.yaml`` refers to sibling files
(``phi4.schema.yaml``, ...) by name.  Validation refuses NaN and infinity anywhere
(:func:`non_finite_keys`; JSON Schema's bounds let NaN through), fills in the schema's
defaults, rejects unknown keys (with a "did you mean"), then checks what the schema cannot
express across keys (:func:`cross_key_problems`), and raises :class:`ConfigError`
with one line per problem that names the offending key and what is allowed, before
any job runs (``workflow/rules/common.smk``; config/README.md lists the checks).
"""

from __future__ import annotations

import contextlib
import difflib
import math
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012


class ConfigError(ValueError):
    """The config is unreadable or invalid; the message names the file and line or the key."""


def _with_defaults(validator_class):
    """A validator class that also inserts ``default`` values of missing properties."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = sub["default"]
        yield from validate_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def _registry(schema_dir: Path) -> Registry:
    resources = []
    for f in sorted(schema_dir.glob("*.schema.yaml")):
        contents = load_yaml(f)
        resources.append((f.name, DRAFT202012.create_resource(contents)))
    return Registry().with_resources(resources)


def _allowed(schema: dict[str, Any]) -> str:
    """What a schema node allows and, for a leaf, what the key means."""
    parts = []
    if "enum" in schema:
        parts.append(f"one of {schema['enum']}")
    if "type" in schema:
        parts.append(f"type {schema['type']}")
    for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                      ("exclusiveMaximum", "<"), ("multipleOf", "a multiple of")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    text = f"allowed: {', '.join(parts)}" if parts else ""
    if "description" in schema and "properties" not in schema:
        meaning = " ".join(str(schema["description"]).split())
        text = f"{text}; meaning: {meaning}" if text else f"meaning: {meaning}"
    return text


def _messages(err: jsonschema.ValidationError) -> list[str]:
    """One line per problem: the dotted key, what is wrong, what is allowed."""
    path = ".".join(str(p) for p in err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = sorted(schema.get("properties", {}))
        lines = []
        for key in sorted(set(err.instance) - set(known), key=str):
            guess = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            full = f"{path}.{key}" if path else str(key)
            lines.append(f"config key '{full}': unknown key{hint} (keys here: {', '.join(known)})")
        return lines
    allowed = _allowed(schema)
    msg = f"config key '{path or '<top level>'}': {err.message}"
    return [f"{msg}; {allowed}" if allowed else msg]


def non_finite_keys(node: Any, path: str = "") -> dict[str, float]:
    """Every NaN or infinite number in a config, by its dotted key (list items by index)."""
    if isinstance(node, float) and not math.isfinite(node):
        return {path: node}
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    found = {}
    for key, value in items:
        found.update(non_finite_keys(value, f"{path}.{key}" if path else str(key)))
    return found


def _get(config, path):
    for key in path.split("."):
        config = config[key]
    return config


def _multiple(config, path, of):
    """A problem line if config[path] is not a whole multiple of config[of] (dotted paths)."""
    a, b = _get(config, path), _get(config, of)
    return [] if a % b == 0 else [f"config key '{path}': {a} is not a multiple of '{of}' = {b}"]


def cross_key_problems(config: dict[str, Any]) -> list[str]:
    """Checks across keys that the schema cannot express, on a config that passed it:
    everything a job would otherwise find only when it runs."""
    problems = []
    for block in ("phi4.hmc", "u1.hmc", "u1.training"):
        problems += _multiple(config, f"{block}.n_configs", f"{block}.n_chains")

    diff = config["diffusion"]
    factor = 2 ** (len(diff["model"]["channels"]) - 1)  # the U-Net's downsampling factor
    lattices = [("phi4.L", config["phi4"]["L"]), ("u1.training.L", config["u1"]["training"]["L"])]
    lattices += [(f"diffusion.u1.volume_L.{i}", L) for i, L in enumerate(diff["u1"]["volume_L"])]
    for key, L in lattices:
        if L % factor:
            problems.append(f"config key '{key}': {L} is not a multiple of the U-Net's downsampling "
                            f"factor {factor} (2^(levels - 1) of 'diffusion.model.channels')")
    gen = diff["generate"]
    if len(gen["n_configs"]) != len(gen["L_factors"]):
        problems.append(f"config key 'diffusion.generate.n_configs': {len(gen['n_configs'])} entries, "
                        f"need one per 'diffusion.generate.L_factors' ({len(gen['L_factors'])})")

    phases, study = config["phases"], config["phases"]["boundary_study"]
    for key, block in (("phases", phases), ("phases.boundary_study", study)):
        late = [s for s in block["snapshot_steps"] if s > block["n_steps"]]
        if late:
            problems.append(f"config key '{key}.snapshot_steps': {late} beyond '{key}.n_steps' = {block['n_steps']}")
    if study["model"] not in phases["models"]:
        problems.append(f"config key 'phases.boundary_study.model': '{study['model']}' is not a key of "
                        f"'phases.models' ({', '.join(phases['models'])})")

    rmt = config["rmt"]
    lin = rmt["linear"]
    if lin["burn_in"] >= lin["n_steps"]:
        problems.append(f"config key 'rmt.linear.burn_in': {lin['burn_in']} must be below "
                        f"'rmt.linear.n_steps' = {lin['n_steps']}")
    n = len(lin["singular_values"])
    unstable = [(lr, B) for lr in lin["lr"] for B in lin["batch_size"] if 2 - lr - lr * (n + 1) / B <= 0]
    if unstable:
        problems.append(f"config key 'rmt.linear.lr': SGD diverges at (lr, batch_size) = {unstable} "
                        f"(needs 2 - lr - lr (n + 1)/B > 0, n = {n} singular values)")
    dbm = rmt["dbm"]
    sub = dbm["dt"] / dbm["dt_sde"]
    if abs(sub - round(sub)) > 1e-9:
        problems.append(f"config key 'rmt.dbm.dt_sde': 'rmt.dbm.dt' = {dbm['dt']} is not a whole "
                        f"multiple of it ({dbm['dt_sde']})")
    for key in ("mlp_online", "rbm"):
        grid = rmt[key]
        if grid["burn_in_time"] >= grid["time"]:
            problems.append(f"config key 'rmt.{key}.burn_in_time': {grid['burn_in_time']} must be below "
                            f"'rmt.{key}.time' = {grid['time']}")
    rbm = rmt["rbm"]
    if rbm["mu2"] <= rbm["m2"] + 4:
        problems.append(f"config key 'rmt.rbm.mu2': {rbm['mu2']} must exceed 'rmt.rbm.m2' + 4 = "
                        f"{rbm['m2'] + 4} (the target's largest kernel eigenvalue)")
    if rmt["transformer"]["dense_until"] > rmt["transformer"]["n_steps"]:
        problems.append(f"config key 'rmt.transformer.dense_until': {rmt['transformer']['dense_until']} "
                        f"beyond 'rmt.transformer.n_steps' = {rmt['transformer']['n_steps']}")
    return problems


def validate_config(config: dict[str, Any], schema_file: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (defaults inserted) and return it; raise :class:`ConfigError`
    listing every violation otherwise: first the schema's, then, on a config that passes it,
    the checks across keys (:func:`cross_key_problems`)."""
    schema_file = Path(schema_file)
    schema = load_yaml(schema_file)
    cls = _with_defaults(jsonschema.Draft202012Validator)
    validator = cls(schema, registry=_registry(schema_file.parent))
    bad = non_finite_keys(config)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"config key '{key}': {value} is not a finite number" for key, value in bad.items()]
    problems += [line for e in errors if ".".join(map(str, e.absolute_path)) not in bad
                 for line in _messages(e)]
    problems = problems or cross_key_problems(config)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid config ({len(problems)} problem(s)):\n{lines}")
    return config


def load_yaml(path: str | Path) -> Any:
    """A YAML file's contents; a syntax error raises :class:`ConfigError` naming file and line."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        what = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start:
            what += f" ({context} that starts at line {start.line + 1})"
        raise ConfigError(f"{where}: YAML syntax error: {what}") from None


def load_config(path: str | Path, schema_file: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    return validate_config(load_yaml(path) or {}, schema_file)


@contextlib.contextmanager
def exit_on_config_error():
    """In the Snakefile: a :class:`ConfigError` prints its message alone (no traceback) and
    ends Snakemake with exit code 1, before any job runs."""
    try:
        yield
    except ConfigError as exc:
        print(f"physml: {exc}", file=sys.stderr)
        sys.exit(1)


def _merge(base: dict, over: dict) -> dict:
    """``over`` laid over ``base`` key by key (nested blocks merged, other values replaced),
    as Snakemake lays ``--configfile`` over the Snakefile's ``configfile``."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def main(argv: list[str] | None = None) -> int:
    """``python -m physml.config [FILE ...]``, in the repository: check config/config.yaml with
    each FILE laid over it, as ``snakemake --configfile FILE`` would (Snakemake reports a YAML
    syntax error in a ``--configfile`` without file or line; this names both)."""
    files = ["config/config.yaml", *(sys.argv[1:] if argv is None else argv)]
    try:
        config: dict = {}
        for f in files:
            _merge(config, load_yaml(f) or {})
        validate_config(config, "workflow/schemas/config.schema.yaml")
    except ConfigError as exc:
        print(f"physml: {exc}", file=sys.stderr)
        return 1
    print(f"physml: config valid ({' + '.join(files)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
