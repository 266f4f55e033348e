"""Hostile input to every verb: a path reused as input and output (directly, through a symlink
or a hard link), NaN and infinity in float options, outputs that cannot be written or have the
wrong suffix, corrupted and non-finite artifacts, a cyclic lineage.  Each case must end with
exit status 2 and one line naming the problem, before any work: no file is created and every
file already there keeps its sha256."""

import hashlib
import os
import shutil

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from physml.cli.main import VERBS, main
from physml.io.artifacts import provenance_attrs, write_artifact

MARK = 0.123456789   # the field value whose bytes the corruption looks for


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:   # argparse's own exit
        return exc.code


def _ensemble(theory: str) -> xr.Dataset:
    if theory == "phi4":
        field = ("phi", (("config", "x", "y"), np.full((4, 4, 4), MARK)))
        attrs = {"theory": "phi4", "kappa": 0.2, "lam": 0.022}
    else:
        field = ("theta", (("config", "mu", "x", "y"), np.full((4, 2, 4, 4), MARK)))
        attrs = {"theory": "u1", "beta": 1.0}
    return xr.Dataset({field[0]: field[1], "action": ("config", np.arange(4.0))},
                      attrs={"source": "hmc", "L": 4, **attrs})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small artifacts (their contents matter only where a case reads them), links to them, a
    corrupted and a non-finite ensemble, a self-referencing artifact, a folder."""
    d = tmp_path_factory.mktemp("hostile")
    write_artifact(_ensemble("phi4"), d / "ens.nc", config={}, rule="hmc_phi4", seed=1)
    write_artifact(_ensemble("u1"), d / "u1.nc", config={}, rule="exact_u1", seed=1)
    obs = xr.Dataset({"chi2": ((), 1.0), "chi2_err": ((), 0.1)}, attrs={"theory": "phi4", "source": "hmc"})
    write_artifact(obs, d / "obs.nc", config={}, rule="measure", inputs=[d / "ens.nc"])
    for name in ("weights.nc", "weights2.nc", "spectra.nc", "cell_a.nc", "cell_b.nc", "fig.json"):
        shutil.copy(d / "ens.nc", d / name)
    torch.save({"weight": torch.full((8,), MARK, dtype=torch.float64)}, d / "model.pt")
    for name in ("ens.nc", "model.pt"):     # one bit inside phi's values, inside the weights
        data = bytearray((d / name).read_bytes())
        data[data.index(np.float64(MARK).tobytes()) + 3] ^= 0x10
        (d / f"corrupt{Path(name).suffix}").write_bytes(data)
    nan = _ensemble("phi4")   # as an earlier physml wrote it: no refusal, no checksums
    nan["phi"][0, 0, 0] = np.nan
    nan.assign_attrs(provenance_attrs({}, "hmc_phi4", 1)).to_netcdf(d / "nan.nc", engine="netcdf4")
    write_artifact(_ensemble("phi4"), d / "cyclic.nc", config={}, rule="measure", seed=1)
    write_artifact(_ensemble("phi4"), d / "cyclic.nc", config={}, rule="measure", inputs=[d / "cyclic.nc"])
    os.symlink(d / "ens.nc", d / "link.nc")
    os.link(d / "ens.nc", d / "hard.nc")
    (d / "adir").mkdir()
    return d


HMC = "lattice hmc phi4 --L 4 --kappa 0.2 --n-configs 8 --n-chains 8 --seed 1"
U1 = "lattice hmc u1 --L 4 --beta 1 --n-configs 8 --n-chains 8 --seed 1"
TRAIN = "diffusion train D/ens.nc --seed 1"
SAMPLE = "diffusion sample D/model.pt --L 8 --n-configs 4 --seed 1"
SAME = "same file"
# (command with D for the fixture's folder, words the one line must hold)
CASES = [
    # NaN and infinity in float options
    (f"{HMC} --step-size nan --out D/e.nc", ["--step-size", "finite", "nan"]),
    (f"{HMC} --lam inf --out D/e.nc", ["--lam", "finite"]),
    (f"{HMC} --therm-step-size nan --out D/e.nc", ["--therm-step-size", "finite"]),
    (f"{HMC} --kappa=-inf --out D/e.nc", ["--kappa", "finite"]),
    (f"{U1} --beta nan --out D/e.nc", ["--beta", "finite"]),
    (f"{U1} --step-size inf --out D/e.nc", ["--step-size", "finite"]),
    ("lattice exact u1 --L 4 --beta inf --n-configs 4 --seed 1 --out D/e.nc", ["--beta", "finite"]),
    ("lattice mala u1 --L 4 --beta 1 --n-configs 4 --seed 1 --mala-target-acceptance nan --out D/m.nc",
     ["--mala-target-acceptance", "finite"]),
    ("lattice reweight D/u1.nc --beta nan --out D/r.nc", ["--beta", "finite"]),
    ("lattice smc D/u1.nc --beta 2 --seed 1 --step-size inf --out D/s.nc", ["--step-size", "finite"]),
    (f"{TRAIN} --out D/m.pt --history D/h.nc --lr nan", ["--lr", "finite"]),
    (f"{SAMPLE} --sigma-max inf --out D/s.nc", ["--sigma-max", "finite"]),
    ("rmt linear --lr nan --batch-size 4 --seed 1 --out D/w.nc", ["--lr", "finite"]),
    ("rmt mlp --lr 0.2 --sigma-w inf --seed 1 --out D/w.nc", ["--sigma-w", "finite"]),
    ("rmt transformer --lr nan --seed 1 --out D/w.nc", ["--lr", "finite"]),
    ("rmt rbm --lr 0.02 --batch-size 32 --m2 inf --seed 1 --out D/w.nc", ["--m2", "finite"]),
    ("rmt rbm --lr 0.02 --batch-size 32 --seed 1 --out D/adir", ["--out", "is a directory"]),
    ("rmt dbm --dt nan --seed 1 --out D/d.nc", ["--dt", "finite"]),
    ("rmt dbm --temperatures 0.1,inf --seed 1 --out D/d.nc", ["--temperatures", "finite"]),
    ("rmt spectra D/weights.nc --p-threshold nan --seed 1 --out D/sp.nc", ["--p-threshold", "finite"]),
    ("rmt tails D/spectra.nc --xmin-quantile inf --seed 1 --out D/t.nc --table D/tt.nc", ["--xmin-quantile", "finite"]),
    ("rmt temperature D/weights.nc --lr-linear-max nan --out D/t.nc", ["--lr-linear-max", "finite"]),
    ("rmt report --results D/nowhere --out D/r.md", ["--results", "nowhere", "no such folder"]),
    ("rmt report --results D/adir --out D/r.md --compare D/missing.md", ["--compare", "missing.md", "no such file"]),
    ("phases cell --lr inf --sigma-w 1 --seed 1 --out D/c.nc", ["--lr", "finite"]),
    ("phases cell --lr 1 --sigma-w 1 --seed 1 --snapshot-steps 0,inf --out D/c.nc", ["--snapshot-steps", "finite"]),
    ("phases gather D/cell_a.nc --ferro-max-test-loss nan --out D/g.nc", ["--ferro-max-test-loss", "finite"]),
    # a move the theory has not got
    ("lattice mala u1 --L 4 --beta 1 --n-configs 4 --seed 1 --mala-fourier --out D/m.nc", ["--mala-fourier", "not u1"]),
    ("lattice mala u1 --L 4 --beta 1 --n-configs 4 --seed 1 --mala-global-moves 1 --out D/m.nc",
     ["--mala-global-moves", "not u1"]),
    # a lattice no diffusion model trains on
    (f"{HMC.replace('--L 4', '--L 7')} --out D/e.nc", ["--L", "even", "7"]),
    # an input given as an output: directly, through a symlink, a hard link, a file beside one
    ("lattice measure D/ens.nc --out D/ens.nc", ["--out", "ensemble", SAME, "destroy"]),
    ("lattice measure D/ens.nc --out D/link.nc", ["--out", "link.nc", SAME, "destroy"]),
    ("lattice measure D/ens.nc --out D/hard.nc", ["--out", "hard.nc", SAME, "destroy"]),
    ("lattice compare D/obs.nc --out D/obs.nc", ["--out", "observables", SAME, "destroy"]),
    ("lattice compare D/obs.nc --out D/t.nc --csv D/obs.nc", ["--csv", "observables", SAME, "destroy"]),
    ("lattice mala phi4 --kappa 0.2 --L 4 --n-configs 4 --scale-from D/ens.nc --seed 1 --out D/ens.nc",
     ["--out", "--scale-from", SAME, "destroy"]),
    ("lattice reweight D/u1.nc --beta 1.5 --out D/u1.nc", ["--out", "ensemble", SAME, "destroy"]),
    ("lattice smc D/u1.nc --beta 2 --seed 1 --out D/u1.nc", ["--out", "ensemble", SAME, "destroy"]),
    (f"{TRAIN} --out D/ens.nc --history D/h.nc", ["--out", "ensemble", SAME, "destroy"]),
    (f"{TRAIN} --out D/m.pt --history D/h.nc --checkpoint D/ens.nc", ["--checkpoint", "ensemble", SAME, "destroy"]),
    (f"{SAMPLE} --out D/model.pt", ["--out", "model", SAME, "destroy"]),
    ("rmt spectra D/weights.nc --seed 1 --out D/weights.nc", ["--out", "weights", SAME, "destroy"]),
    ("rmt tails D/spectra.nc --seed 1 --out D/t.nc --table D/spectra.nc", ["--table", "spectra", SAME, "destroy"]),
    ("rmt temperature D/weights.nc D/weights2.nc --out D/weights2.nc", ["--out", "inputs", SAME, "destroy"]),
    ("phases gather D/cell_a.nc D/cell_b.nc --out D/cell_b.nc", ["--out", "inputs", SAME, "destroy"]),
    ("phases boundaries --sigma-w-cut D/cell_a.nc --T-cut D/cell_b.nc --out D/cell_a.nc",
     ["--out", "--sigma-w-cut", SAME, "destroy"]),
    ("phases boundaries --sigma-w-cut D/cell_a.nc --T-cut D/cell_b.nc --out D/cell_b.nc",
     ["--out", "--T-cut", SAME, "destroy"]),
    (f"{TRAIN} --out D/m.pt --history D/ens.nc", ["--history", "ensemble", SAME, "destroy"]),
    ("figure phi4_hmc D/obs.nc --out D/obs.nc", ["--out", "inputs", SAME, "destroy"]),
    ("figure phi4_hmc D/fig.json --out D/fig", ["fig.json", "inputs", SAME, "destroy"]),
    # two outputs on one path
    (f"{TRAIN} --out D/m.pt --history D/m.pt", ["--history", "--out", SAME, "overwrite each other"]),
    (f"{SAMPLE} --out D/s.nc --mala-steps 1 --mala-out D/s.nc", ["--mala-out", "--out", SAME, "overwrite each other"]),
    ("rmt tails D/spectra.nc --seed 1 --out D/t.nc --table D/t.nc", ["--table", "--out", SAME, "overwrite each other"]),
    # outputs that cannot be written, checked before the work
    (f"{HMC} --out /proc/physml_hostile.nc", ["--out /proc/physml_hostile.nc", "cannot"]),
    (f"{HMC} --out D/ens.nc/e.nc", ["ens.nc", "is a file, not a folder"]),
    (f"{HMC} --out D/adir", ["--out", "adir", "is a directory"]),
    ("figure phi4_hmc D/obs.nc --out /proc/physml_fig", ["/proc", "cannot"]),
    # the wrong suffix for the kind of file
    (f"{HMC} --out D/e.txt", ["--out", "e.txt", ".nc"]),
    ("lattice exact u1 --L 4 --beta 1 --n-configs 4 --seed 1 --out D/e.csv", ["--out", ".nc"]),
    (f"{TRAIN} --out D/m.nc --history D/h.nc", ["--out", "m.nc", ".pt"]),
    ("lattice compare D/obs.nc --out D/t.nc --csv D/t.txt", ["--csv", ".csv"]),
    ("rmt linear --lr 0.1 --batch-size 4 --seed 1 --out D/w.txt", ["--out", ".nc"]),
    ("rmt corpus --out D/corpus.nc", ["--out", ".txt"]),
    ("rmt report --results D/adir --out D/r.txt", ["--out", "r.txt", ".md"]),
    ("figure phi4_hmc D/obs.nc --out D/fig.pdf", ["--out", "without extension"]),
    # artifacts that do not vouch for their contents
    ("lattice measure D/corrupt.nc --out D/o.nc", ["corrupt.nc", "checksum"]),
    ("lattice compare D/corrupt.nc --out D/t.nc", ["corrupt.nc", "checksum"]),
    ("rmt spectra D/corrupt.nc --seed 1 --out D/sp.nc", ["corrupt.nc", "checksum"]),
    ("phases gather D/corrupt.nc --out D/g.nc", ["corrupt.nc", "checksum"]),
    ("figure phi4_hmc D/corrupt.nc --out D/f", ["corrupt.nc", "checksum"]),
    (f"{SAMPLE.replace('model.pt', 'corrupt.pt')} --out D/s.nc", ["model", "corrupt.pt", "CRC-32"]),
    ("lattice measure D/nan.nc --out D/o.nc", ["nan.nc", "NaN", "phi (1 of 64 values)"]),
    ("provenance D/cyclic.nc", ["cyclic.nc", "cyclic lineage"]),
    # a verb without files
    ("doctor --out D/x.nc", ["unrecognized arguments"]),
]


def _state(folder) -> dict:
    """Every file below ``folder``: its sha256 (a symlink: its target)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[path] = os.readlink(path)
        elif path.is_file():
            found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[path] = "folder"
    return found


@pytest.mark.parametrize("command, words", CASES, ids=[c for c, _ in CASES])
def test_hostile_input_is_refused_in_one_line_before_any_work(files, capsys, command, words):
    before = _state(files)
    code = _run([word.replace("D/", f"{files}/") for word in command.split()])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert ".tmp" not in err[0] and ".physml-probe" not in err[0]
    assert _state(files) == before


def test_the_table_covers_every_verb():
    verbs = {v for v in VERBS for command, _ in CASES if command.startswith(v)}
    assert verbs == set(VERBS) and len(CASES) >= 40
