"""Validation of the workflow config against its JSON Schema (``workflow/schemas``).

The schema is split by study: ``config.schema.yaml`` refers to sibling files
(``phi4.schema.yaml``, ...) by name.  Validation fills in the schema's defaults,
rejects unknown keys, and raises :class:`ConfigError` with a message that names
the offending key and what is allowed, before any job runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012


class ConfigError(ValueError):
    """The config does not match the schema."""


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
        contents = yaml.safe_load(f.read_text())
        resources.append((f.name, DRAFT202012.create_resource(contents)))
    return Registry().with_resources(resources)


def _allowed(schema: dict[str, Any]) -> str:
    """A short description of what a schema node allows."""
    parts = []
    if "enum" in schema:
        parts.append(f"one of {schema['enum']}")
    if "type" in schema:
        parts.append(f"type {schema['type']}")
    for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                      ("exclusiveMaximum", "<"), ("multipleOf", "a multiple of")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "properties" in schema and schema.get("additionalProperties") is False:
        parts.append(f"keys {sorted(schema['properties'])}")
    if "description" in schema:
        parts.append(f"({schema['description']})")
    return ", ".join(parts)


def _message(err: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    allowed = _allowed(err.schema) if isinstance(err.schema, dict) else ""
    msg = f"config key '{path}': {err.message}"
    return f"{msg}; allowed: {allowed}" if allowed else msg


def validate_config(config: dict[str, Any], schema_file: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (defaults inserted) and return it; raise :class:`ConfigError`
    listing every violation otherwise."""
    schema_file = Path(schema_file)
    schema = yaml.safe_load(schema_file.read_text())
    cls = _with_defaults(jsonschema.Draft202012Validator)
    validator = cls(schema, registry=_registry(schema_file.parent))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_message(e)}" for e in errors)
        raise ConfigError(f"invalid config ({len(errors)} problem(s)):\n{lines}")
    return config


def load_config(path: str | Path, schema_file: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config, schema_file)
