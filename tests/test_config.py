"""Config validation: shipped configs pass, bad values fail naming the key and what is allowed."""

import copy

import pytest
import yaml

from physml.config import ConfigError, validate_config


@pytest.fixture
def schema(root):
    return root / "workflow" / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(root, schema, name):
    config = yaml.safe_load((root / "config" / name).read_text())
    validate_config(config, schema)


def test_defaults_are_filled(schema):
    config = validate_config({}, schema)
    assert config["phi4"]["hmc"]["n_steps"] >= 1 and config["phi4"]["lam"] == 0.022


@pytest.mark.parametrize("patch, key, allowed", [
    ({"phi4": {"kappa": [-1]}}, "phi4.kappa.0", "> 0"),
    ({"phi4": {"L": 7.5}}, "phi4.L", "type integer"),
    ({"phi4": {"L": "big"}}, "phi4.L", "type integer"),
    ({"phi4": {"hmc": {"start": "warm"}}}, "phi4.hmc.start", "['cold', 'random']"),
    ({"phi4": {"kapa": [0.2]}}, "phi4", "keys ['L', 'hmc', 'kappa', 'lam']"),
    ({"sed": 3}, "<top level>", "keys"),
])
def test_bad_values_name_key_and_allowed(root, schema, patch, key, allowed):
    config = copy.deepcopy(yaml.safe_load((root / "config" / "config.yaml").read_text()))
    for section, value in patch.items():
        if isinstance(value, dict) and isinstance(config.get(section), dict):
            for k, v in value.items():
                if isinstance(v, dict):
                    config[section][k].update(v)
                else:
                    config[section][k] = v
        else:
            config[section] = value
    with pytest.raises(ConfigError) as info:
        validate_config(config, schema)
    assert f"config key '{key}'" in str(info.value)
    assert allowed in str(info.value)
