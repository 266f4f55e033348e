"""Registered names are declared once: every CLI verb in physml.cli.main.VERBS (its module
defines verb_WORD for the verb's last word, nothing else declares the name), samplers and SDEs by decorator on the
class, and the schema's enums of them are the registries'."""

import argparse
import importlib
import inspect
from pathlib import Path

import yaml

from physml.cli.main import GROUPS, VERBS, build_parser

SCHEMA = Path(__file__).parents[1] / "workflow" / "schemas" / "diffusion.schema.yaml"


def _verb_functions(module: str) -> set[str]:
    mod = importlib.import_module(f"physml.cli.{module}")
    return {name.removeprefix("verb_") for name, f in vars(mod).items()
            if name.startswith("verb_") and inspect.isfunction(f) and f.__module__ == mod.__name__}


def test_every_verb_is_declared_once_in_main():
    modules = {module for module, _ in VERBS.values()}
    for module in modules:
        assert _verb_functions(module) == {v.split()[-1] for v, (m, _) in VERBS.items() if m == module}, module
    parsers, parser = {}, build_parser(every=True)
    for group in (parser, *parser._subparsers._group_actions[0].choices.values()):
        for sub in (a for a in group._actions if isinstance(a, argparse._SubParsersAction)):
            parsers.update({p.prog.removeprefix("physml "): p for p in sub.choices.values()})
    assert set(VERBS) <= set(parsers)
    assert set(parsers) - set(VERBS) == set(GROUPS)   # every other parser is a study's group


def test_samplers_and_sdes_are_registered_by_name_on_the_class():
    from physml.diffusion.samplers import SAMPLERS
    from physml.diffusion.sde import SDES

    for registry in (SAMPLERS, SDES):
        assert registry and all(cls.name == name for name, cls in registry.items())


def test_schema_enums_are_the_registries():
    from physml.diffusion.samplers import SAMPLERS
    from physml.diffusion.sde import SDES

    props = yaml.safe_load(SCHEMA.read_text())["properties"]
    assert props["sde"]["properties"]["name"]["enum"] == sorted(SDES)
    # the authors' preset has its own block (diffusion.u1.authors), not a value of sampler
    assert sorted(props["sample"]["properties"]["sampler"]["enum"]) == sorted(set(SAMPLERS) - {"authors"})
