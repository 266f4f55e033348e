"""The physml command line: documented options, artifacts, clear errors."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from physml.cli.main import HelpFormatter, build_parser, main
from physml.io.artifacts import read_artifact

ROOT = Path(__file__).parents[1]


def _help(*verb):
    return subprocess.run([sys.executable, "-m", "physml", *verb, "--help"], capture_output=True,
                          text=True, check=True).stdout


def _verbs(parser, name=""):
    """(name, parser) of every verb, nested ones included ('hmc phi4')."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups and name:
        yield name, parser
    for group in groups:
        for verb, sub in group.choices.items():
            yield from _verbs(sub, f"{name} {verb}".strip())


VERB_PARSERS = dict(_verbs(build_parser(every=True)))


def test_every_verb_documents_its_options():
    for name, parser in VERB_PARSERS.items():
        for opt in parser._actions:
            if opt.option_strings and opt.dest != "help":
                assert opt.help, f"physml {name} {opt.option_strings} has no help"
    text = _help("lattice", "hmc", "phi4")
    for opt in ("--L", "--kappa", "--lam", "--n-configs", "--seed", "--out", "--step-size", "--start"):
        assert opt in text


@pytest.mark.parametrize("name", sorted(VERB_PARSERS))
def test_every_verb_help_has_description_and_example_and_no_empty_defaults(name):
    text = VERB_PARSERS[name].format_help()
    assert VERB_PARSERS[name].description and f"example:\n  physml {name}" in text
    assert "(default: None)" not in text
    formatter = HelpFormatter(name)
    for opt in VERB_PARSERS[name]._actions:   # a switch (--no-progress) shows no default
        if opt.nargs == 0 and not isinstance(opt, argparse.BooleanOptionalAction):
            assert "(default" not in formatter._get_help_string(opt), opt.option_strings
    for line in text.split("example:")[1].strip().splitlines():  # the example parses
        argv = line.split()[1:]
        build_parser(argv[0]).parse_args(argv)


@pytest.mark.parametrize("verb, old, new, value", [
    (["lattice", "mala", "u1", "--L", "4", "--beta", "1", "--n-configs", "2", "--seed", "1", "--out", "x"], "--mala-target",
     "--mala-target-acceptance", "0.7"),
    (["diffusion", "train", "e.nc", "--out", "m", "--history", "h", "--seed", "1"], "--sigma", "--sde-sigma", "5"),
    (["phases", "cell", "--lr", "1", "--sigma-w", "1", "--seed", "1", "--out", "x"], "--snapshots",
     "--snapshot-steps", "0,100")])
def test_an_old_spelling_gives_the_same_setting_and_is_not_shown(verb, old, new, value):
    """One name per setting in --help (the config key's); scripts with the old name still run."""
    parser = build_parser(verb[0])
    assert vars(parser.parse_args([*verb, old, value])) == vars(parser.parse_args([*verb, new, value]))
    sub = next(p for name, p in VERB_PARSERS.items() if verb[:len(name.split())] == name.split())
    assert new in sub.format_help() and f"{old} " not in sub.format_help()


def test_list_options_take_spaces_or_commas():
    argv = ["phases", "cell", "--lr", "1", "--sigma-w", "1", "--seed", "1", "--out", "x"]
    parser = build_parser("phases")
    spaced = parser.parse_args([*argv, "--snapshot-steps", "0", "10", "1e3"]).snapshot_steps
    assert spaced == parser.parse_args([*argv, "--snapshot-steps", "0,10,1e3"]).snapshot_steps == [0, 10, 1000]
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--snapshot-steps", "0,ten"])


def test_figure_takes_the_target_name():
    args = build_parser("figure").parse_args(["figure", "fig_phi4_hmc", "obs.nc", "--out", "f"])
    assert args.name == "phi4_hmc"


def test_help_version_and_the_phases_verbs_import_no_torch():
    for argv in (["--help"], ["--version"], ["lattice", "--help"], ["phases", "cell", "--help"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "physml", *argv],
                              capture_output=True, text=True, check=True)
        assert "torch" not in proc.stderr, argv
    text = _help()
    for verb in VERB_PARSERS:
        assert f"    {verb.split()[0]}" in text


def test_study_verbs_are_nested_under_their_group_and_tools_stand_alone():
    from physml.cli.main import GROUPS, VERBS
    top = {verb.split()[0] for verb in VERB_PARSERS}
    assert top == set(GROUPS) | {"figure", "provenance", "doctor"}
    assert all(len(verb.split()) == 2 for verb in VERBS if verb.split()[0] in GROUPS)
    for group in GROUPS:
        text = _help(group)
        assert all(f"    {v.split()[1]}" in text for v in VERBS if v.startswith(f"{group} ")), group
        pages = re.findall(r"docs/\w+\.md", text)
        assert pages and all((ROOT / page).is_file() for page in pages), (group, pages)


@pytest.mark.parametrize("old, new", [
    (["hmc", "phi4", "--L", "4", "--kappa", "0.2", "--n-configs", "8", "--seed", "1", "--out", "x"],
     ["lattice", "hmc", "phi4", "--L", "4", "--kappa", "0.2", "--n-configs", "8", "--seed", "1", "--out", "x"]),
    (["train", "e.nc", "--out", "m", "--history", "h", "--seed", "1"],
     ["diffusion", "train", "e.nc", "--out", "m", "--history", "h", "--seed", "1"])])
def test_an_earlier_top_level_verb_runs_as_its_nested_one_and_is_not_listed(old, new):
    from physml.cli.main import _with_group
    assert _with_group(old) == new and _with_group(new) == new
    parser = build_parser(" ".join(new[:2]))
    assert vars(parser.parse_args(_with_group(old))) == vars(parser.parse_args(new))
    assert f"    {old[0]} " not in _help()
    proc = subprocess.run([sys.executable, "-m", "physml", *old[:-2], "--out"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith(f"physml {' '.join(new[:2])}"), proc.stderr


def test_hmc_then_measure(tmp_path):
    ens, obs = tmp_path / "ens.nc", tmp_path / "obs.nc"
    assert main(["lattice", "hmc", "phi4", "--L", "4", "--kappa", "0.21", "--n-configs", "64", "--n-chains", "8",
                 "--n-therm", "10", "--seed", "1", "--out", str(ens), "--no-progress"]) == 0
    assert main(["lattice", "measure", str(ens), "--out", str(obs)]) == 0
    ds = read_artifact(obs)
    assert ds.attrs["theory"] == "phi4" and "chi2" in ds and ds.attrs["seed"] == 1


def test_measure_missing_file_names_it(tmp_path, capsys):
    assert main(["lattice", "measure", str(tmp_path / "absent.nc"), "--out", str(tmp_path / "o.nc")]) == 2
    assert "absent.nc" in capsys.readouterr().err


def test_bad_lattice_size_is_rejected():
    with pytest.raises(SystemExit):
        main(["lattice", "hmc", "phi4", "--L", "0", "--kappa", "0.2", "--n-configs", "8", "--seed", "1", "--out", "x.nc"])


@pytest.mark.parametrize("name", sorted(VERB_PARSERS))
def test_every_verb_reports_a_wrong_argument_on_one_line(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*name.split(), "--no-such-option", "x"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"physml {name}: error: "), err


def test_every_float_option_takes_finite_numbers_only():
    from physml.cli.options import NumberList
    floats = [(name, a.dest) for name, parser in VERB_PARSERS.items() for a in parser._actions
              if a.type is float or isinstance(a, NumberList) and a.convert is float]
    assert not floats


def test_an_error_after_a_progress_bar_is_the_last_line(tmp_path, capsys):
    """The bar is closed before the error is printed, and not drawn again after it."""
    assert main(["rmt", "linear", "--lr", "0.1", "--batch-size", "4", "--seed", "1", "--n-steps", "10",
                 "--burn-in", "400", "--out", str(tmp_path / "w.nc")]) == 2
    err = capsys.readouterr().err
    assert "linear lr=0.1" in err and err.splitlines()[-1].startswith("physml rmt linear: error: burn_in")


def test_a_failing_verb_reports_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    argv = ["lattice", "hmc", "phi4", "--L", "4", "--kappa", "-1", "--n-configs", "8", "--seed", "1",
            "--out", str(tmp_path / "x.nc")]
    assert main(argv) == 2
    assert capsys.readouterr().err == "physml lattice hmc phi4: error: need kappa >= 0 and lam >= 0, got kappa=-1.0, lam=0.022\n"
    with pytest.raises(ValueError, match="need kappa"):
        main([*argv, "--debug"])
    with pytest.raises(SystemExit):   # no private names in argparse's messages
        main(["lattice", "hmc", "phi4", "--L", "abc"])
    assert "_positive_int" not in capsys.readouterr().err
