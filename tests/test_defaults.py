"""Every default is declared alike wherever it is declared: the workflow schema's defaults
(workflow/schemas) equal the CLI's for every key they share, the samplers' constructor
defaults (``physml diffusion sample`` leaves an unset option to the class) and TrainConfig's."""

import argparse
import dataclasses
import inspect
from pathlib import Path

import pytest

from physml.cli.main import build_parser
from physml.config import validate_config

# (schema block, verb, {schema key: CLI dest} where the names differ, {key: why not compared})
PAIRS = [
    ("phi4", "lattice hmc phi4", {}, {}),
    ("phi4", "lattice mala phi4", {}, {}),
    ("phi4.hmc", "lattice hmc phi4", {}, {}),
    ("u1.hmc", "lattice hmc u1", {}, {}),
    ("u1.hmc", "lattice smc", {}, {"n_configs": "the smc verb reads an ensemble"}),   # the HMC moves' leapfrog
    ("u1.smc", "lattice smc", {}, {"n_particles": "the CLI's 0 takes the whole file; the rule caps the "
                                          "schema's count at the start ensemble's size"}),
    ("diffusion", "diffusion train", {}, {}),
    ("diffusion.sde", "diffusion train", {"name": "sde_name", "sigma": "sde_sigma"}, {}),   # cli_flags prefix sde_
    ("diffusion.model", "diffusion train", {}, {}),
    ("diffusion.train", "diffusion train", {}, {}),
    ("diffusion.u1", "diffusion train", {}, {"gauge_covariant": "a switch of the verb (it trains phi4 too); "
                                                      "the U(1) rules pass it"}),
    ("diffusion.sample", "diffusion sample", {}, {}),
    *[("diffusion.mala", verb, {k: f"mala_{k}" for k in ("steps", "target_acceptance", "tune_steps", "pilot",
                                                          "global_moves", "fourier")},
       {"steps": "sample runs MALA only when asked (--mala-steps 0)"} if verb == "diffusion sample" else {})
      for verb in ("lattice mala phi4", "lattice mala u1", "diffusion sample")],
    ("phases", "phases cell", {}, {}),
    ("phases.models.tanh", "phases cell", {}, {}),
    ("phases.classify", "phases gather", {}, {}),
    ("phases.classify", "phases boundaries", {}, {}),
    ("rmt.linear", "rmt linear", {}, {}),
    ("rmt.linear", "rmt temperature", {}, {}),
    ("rmt.mlp", "rmt mlp", {}, {}),
    ("rmt.mlp_online", "rmt mlp", {}, {"batch_size": "the grid's values, one job each",
                                       "label_noise": "the verb's 0 keeps the phases study's noiseless labels"}),
    ("rmt.rbm", "rmt rbm", {}, {}),
    ("rmt.transformer", "rmt transformer", {}, {}),
    ("rmt.transformer", "rmt corpus", {}, {}),
    ("rmt.dbm", "rmt dbm", {}, {}),
    ("rmt.spectra", "rmt spectra", {}, {}),
    ("rmt.tails", "rmt tails", {}, {}),
]
# blocks of the schema that configure no verb's default: other ensembles than the verb's own
# (u1.training, phases.boundary_study), the flux ensembles' moves (u1.flux_moves: the verb's
# --flux-moves 0 means none), the exact sampler, the sampler presets (their own test below)
# and the phi^4 exact path (its rules pass every setting: sampler, steps, density dtype)
NOT_VERB_DEFAULTS = {"u1", "u1.training", "u1.exact", "phases.boundary_study",
                     "phases.boundary_study.sigma_w_cut", "phases.boundary_study.T_cut",
                     "phases.models", "diffusion.generate", "diffusion.u1.sample", "diffusion.u1.authors",
                     "diffusion.exact", "diffusion.u1.exact"}


@pytest.fixture(scope="module")
def config():
    return validate_config({}, Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml")


def _block(config, path):
    for key in path.split("."):
        config = config[key]
    return config


def _verb(words: str) -> argparse.ArgumentParser:
    parser = build_parser(words.split()[0])
    for word in words.split():
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[word]
    return parser


def _cli_defaults(words: str) -> dict:
    """The defaults of a verb's options; required ones (no default) are left out."""
    return {a.dest: a.default for a in _verb(words)._actions if not a.required and a.dest != "help"}


def _same(a, b) -> bool:
    return list(a) == list(b) if isinstance(a, (list, tuple)) else a == b


@pytest.mark.parametrize("block, verb, names, skip", PAIRS, ids=[f"{p[0]}-{p[1]}" for p in PAIRS])
def test_schema_defaults_equal_cli_defaults(config, block, verb, names, skip):
    from physml.diffusion.samplers import SAMPLERS

    schema, cli = _block(config, block), _cli_defaults(verb)
    # options of `physml diffusion sample` that the sampler class sets when unset: compared below
    delegated = ({p for cls in SAMPLERS.values() for p in inspect.signature(cls).parameters}
                 if verb == "diffusion sample" else set())
    shared = {k: names.get(k, k) for k in schema if not isinstance(schema[k], dict)
              and names.get(k, k) in cli and k not in skip and names.get(k, k) not in delegated}
    assert shared or names, f"{block} shares no key with {verb}"
    drift = {k: (schema[k], cli[dest]) for k, dest in shared.items() if not _same(schema[k], cli[dest])}
    assert not drift, f"{block} (schema) vs {verb} (CLI): {drift}"


def test_every_schema_block_of_settings_is_compared(config):
    """A new block of scalar settings is either paired with a verb above or named as none."""
    def blocks(node, path):
        if any(not isinstance(v, dict) for v in node.values()):
            yield path
        for k, v in node.items():
            if isinstance(v, dict):
                yield from blocks(v, f"{path}.{k}")
    found = {b for top in ("phi4", "u1", "diffusion", "phases", "rmt") for b in blocks(config[top], top)}
    assert found - {p[0] for p in PAIRS} - NOT_VERB_DEFAULTS == set()


def test_sampler_defaults_equal_the_schema_block_that_presets_them(config):
    """Each sampler's constructor defaults equal the schema block whose sampler it is by default
    (diffusion.sample; diffusion.u1.sample for ald; diffusion.u1.authors for the authors' preset);
    the other samplers' own options (snr, churn, ...) equal diffusion.sample's."""
    from physml.diffusion.samplers import SAMPLERS

    sample = config["diffusion"]["sample"]
    home = {sample["sampler"]: sample, config["diffusion"]["u1"]["sample"]["sampler"]:
            config["diffusion"]["u1"]["sample"], "authors": config["diffusion"]["u1"]["authors"]}
    # a preset's deliberate choice, not the class's: the U(1) model's last noise level, measured
    chosen = {("ald", "sigma_min")}
    drift = {}
    for name, cls in SAMPLERS.items():
        block = home.get(name, sample)
        for key, param in inspect.signature(cls).parameters.items():
            if key in block and (name, key) not in chosen and block[key] != param.default:
                drift[f"{name}.{key}"] = (block[key], param.default)
    assert not drift, f"schema vs sampler class: {drift}"


def test_train_config_defaults_equal_the_schema(config):
    from physml.diffusion.training import TrainConfig

    schema = {**config["diffusion"]["train"], "recipe": config["diffusion"]["recipe"]}
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    shared = set(schema) & set(fields)
    assert {"batch_size", "epochs", "lr", "recipe"} <= shared
    assert {k: (schema[k], fields[k]) for k in shared if schema[k] != fields[k]} == {}
