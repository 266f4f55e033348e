"""Grid cells, gathering, classification and the CLI of the phase study."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from physml.cli.phases import main as phases_main
from physml.figures.phases import (plot_phase_diagram, plot_phase_observables, plot_phase_trajectories,
                                   representative_cells)
from physml.io.artifacts import artifact_config, read_artifact
from physml.phases.cells import CellSpec, gather, run_cell
from physml.phases.classify import FERRO, GLASS, PARA, analyse_grid, classify_runs

SMALL = dict(n_runs=8, n_steps=3000, n_batches=200, n_test=200, n_eval=100,
             snapshot_steps=(0, 300, 3000), seed=3)


@pytest.fixture(scope="module")
def three_cells():
    """One cell where the paper puts each phase: learning (small T, sigma_W = 1), no
    convergence (large T) and jamming (large sigma_W)."""
    specs = {"ferro": (0.125, 1.0), "para": (128.0, 1.0), "glass": (0.125, 64.0)}
    return {name: run_cell(CellSpec(lr=lr, sigma_w=sw, **SMALL)) for name, (lr, sw) in specs.items()}


def test_cell_observables(three_cells):
    ds = three_cells["ferro"]
    assert ds.sizes == {"time": 3, "run": 8, "sv": 16}
    assert list(ds["time"].values) == [0, 300, 3000]
    np.testing.assert_allclose(ds["overlap_q"].sel(time=0), 1, rtol=1e-6)
    # singular values are sorted, positive, and at t=0 of the size sigma_W sqrt(n1 / n1)
    sv = ds["singular_values"].sel(time=0).values
    assert (np.diff(sv, axis=1) <= 0).all() and (sv > 0).all()
    assert (sv ** 2).sum(axis=1).mean() == pytest.approx(16 * 1.0, rel=0.15)  # E|W0|_F^2 = n2 sigma_W^2
    assert float(ds["test_loss"].isel(time=-1).mean()) < 0.2 * float(ds["test_loss"].isel(time=0).mean())
    assert ds.attrs["T"] == pytest.approx(0.125 / 4)


def test_three_phases_where_the_paper_puts_them(three_cells):
    for name, code in (("ferro", FERRO), ("para", PARA), ("glass", GLASS)):
        ds = three_cells[name]
        grid_like = ds.isel(time=-1)
        phases = classify_runs(grid_like, 0.1, 0.5).values
        assert (phases == code).mean() >= 0.75, (name, phases)


def test_gather_and_analyse(three_cells):
    cells = [run_cell(CellSpec(lr=lr, sigma_w=sw, **{**SMALL, "n_steps": 300, "snapshot_steps": (0, 300)}))
             for lr in (0.125, 128.0) for sw in (1.0, 64.0)]
    grid = gather(cells[::-1])
    assert grid["lr"].dims == ("T",)
    assert tuple(grid["test_loss"].dims[:3]) == ("T", "sigma_w", "run")
    assert list(grid["T"].values) == [0.125 / 4, 32.0] and list(grid["sigma_w"].values) == [1.0, 64.0]
    xr.testing.assert_allclose(grid["test_loss"].sel(T=32.0, sigma_w=64.0).drop_vars(["T", "sigma_w"])
                               .transpose("time", "run"), cells[3]["test_loss"])
    out = analyse_grid(grid)
    assert out["cell_phase"].dims == ("T", "sigma_w", "time")
    assert out["T_ferro_para"].dims == ("sigma_w", "time")
    np.testing.assert_allclose(out["phase_fraction"].sum("phase"), 1)
    assert out.attrs["inv_sigma_w_tanh_line"] == pytest.approx(np.sqrt(2), rel=1e-3)
    for plot in (plot_phase_diagram, plot_phase_observables, plot_phase_trajectories):
        fig = plot([out])
        assert fig.axes
        plt.close(fig)
    assert set(representative_cells(out)) <= {"ferro", "para", "glass"}
    with pytest.raises(ValueError, match="rectangular"):
        gather(cells[:3])
    with pytest.raises(ValueError, match="duplicate"):
        gather([cells[0], cells[0]])


def test_cell_spec_rejects_bad_input():
    with pytest.raises(ValueError, match="lr must be > 0"):
        CellSpec(lr=0, sigma_w=1)
    with pytest.raises(ValueError, match="outside"):
        CellSpec(lr=1, sigma_w=1, n_steps=10, snapshot_steps=(20,))


def test_cli_cell_and_gather(tmp_path):
    paths = []
    for sw in ("0.5", "2"):
        out = tmp_path / f"sw{sw}.nc"
        rc = phases_main(["cell", "--lr", "0.5", "--sigma-w", sw, "--n-runs", "3", "--n-steps", "200",
                          "--n-batches", "20", "--n-test", "20", "--n-eval", "20", "--snapshots", "0,100",
                          "--seed", "5", "--no-progress", "--out", str(out)])
        assert rc == 0
        paths.append(str(out))
    cell = read_artifact(paths[0])
    assert artifact_config(cell)["sigma_w"] == 0.5 and cell.attrs["seed"] == 5
    grid_path = tmp_path / "grid.nc"
    assert phases_main(["gather", *paths, "--no-progress", "--out", str(grid_path)]) == 0
    grid = read_artifact(grid_path)
    assert dict(grid.sizes)["sigma_w"] == 2 and "cell_phase" in grid
    assert phases_main(["cell", "--lr", "-1", "--sigma-w", "1", "--seed", "1",
                        "--out", str(tmp_path / "bad.nc")]) == 2
