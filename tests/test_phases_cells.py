"""Grid cells, gathering, classification and the CLI of the phase study."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from physml.cli.main import main
from physml.figures.phases import (plot_phase_diagram, plot_phase_observables, plot_phase_trajectories,
                                   representative_cells)
from physml import native
from physml.io.artifacts import artifact_config, read_artifact
from physml.phases.cells import CellSpec, gather, run_cell
from physml.phases.classify import (FERRO, GLASS, PARA, UNCONVERGED, analyse_grid, classify_runs,
                                    observed_glass_line, spin_glass_verdict)

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
    # auto ran a kernel clone this CPU runs (calibrated faster than the numpy twin) and says which
    assert ds.attrs["sgd_engine"] == "native"
    assert ds.attrs["sgd_clone"] in native.runnable_clones("sgd_teacher_student")


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
    assert set(representative_cells(out)) <= {"ferro", "para", "glass", "unconverged"}
    with pytest.raises(ValueError, match="rectangular"):
        gather(cells[:3])
    with pytest.raises(ValueError, match="duplicate"):
        gather([cells[0], cells[0]])


def _runs(time, **fields):
    """A (run, time) dataset of classification inputs; ``fields`` give (run, time) arrays."""
    base = dict(test_loss_rel=1.0, overlap_q=1.0, saturation=1.0)
    data = {k: (("run", "time"), np.broadcast_to(np.asarray(fields.get(k, v), float), (2, len(time))))
            for k, v in base.items()}
    data["diverged_step"] = ("run", np.asarray(fields.get("diverged_step", [-1, -1])))
    return xr.Dataset(data, coords={"time": time})


def test_divergence_counts_only_from_its_step_on():
    ds = _runs([0, 100, 200, 300], diverged_step=[200, -1])
    phases = classify_runs(ds).values
    np.testing.assert_array_equal(phases[0], [GLASS, GLASS, PARA, PARA])
    np.testing.assert_array_equal(phases[1], [GLASS] * 4)


def test_glass_needs_saturated_features():
    ds = _runs([0, 30], overlap_q=[[1, 0.9], [1, 0.2]], saturation=[[0.18, 0.18], [0.18, 0.18]])
    np.testing.assert_array_equal(classify_runs(ds).values, [[UNCONVERGED] * 2, [UNCONVERGED, PARA]])
    np.testing.assert_array_equal(classify_runs(ds, glass_min_saturation=0.1).values,
                                  [[GLASS] * 2, [GLASS, PARA]])
    learned = _runs([0, 30], test_loss_rel=[[1, 0.01], [1, 0.01]], saturation=[[0.2, 0.2], [0.9, 0.9]])
    np.testing.assert_array_equal(classify_runs(learned).values, [[UNCONVERGED, FERRO], [GLASS, FERRO]])
    with pytest.raises(ValueError, match="glass_min_saturation"):
        classify_runs(ds, glass_min_saturation=-1)


def _phase_grid(rows, activation="tanh"):
    """A grid with given cell phases (T rows over sigma_w = 0.5, 1, 2, 4, 8) at one time."""
    sw = [0.5, 1.0, 2.0, 4.0, 8.0]
    phase = xr.DataArray(np.asarray(rows, np.int8)[:, :, None], dims=("T", "sigma_w", "time"),
                         coords={"T": np.arange(1, len(rows) + 1) / 8, "sigma_w": sw, "time": [1000]})
    attrs = {"inv_sigma_w_tanh_line": np.sqrt(2), "inv_sigma_w_preactivation_line": 0.83}
    return xr.Dataset({"cell_phase": phase}, attrs=attrs if activation == "tanh" else {})


def test_observed_glass_line_and_verdict():
    G, F, P = GLASS, FERRO, PARA
    grid = _phase_grid([[F, F, G, G, G], [F, F, F, G, G], [P, P, P, P, P], [G, G, G, G, G], [F, G, F, F, G]])
    line = observed_glass_line(grid["cell_phase"].sel(time=1000)).values
    np.testing.assert_allclose(line[:2], [1 / np.sqrt(2), 1 / np.sqrt(8)])
    assert np.isnan(line[2:4]).all()                     # no glass / all glass: no boundary
    assert line[4] == pytest.approx(1 / np.sqrt(32))     # only the top cell is glass
    # median boundary 1/sqrt(8) = 0.35: more than one sigma_W step (factor 2) from both lines
    assert "neither line is followed" in spin_glass_verdict(grid, 1000)
    on_tanh = spin_glass_verdict(_phase_grid([[F, G, G, G, G]] * 2), 1000)  # boundary at sqrt(2)
    assert "line sigma_W^2 = 1/2 at 1.4: the data follow it" in on_tanh
    on_pre = spin_glass_verdict(_phase_grid([[F, F, G, G, G]]), 1000)        # at 1/sqrt(2) = 0.71
    assert "line sigma_W^2 <a^2> = 1/2 at 0.83: the data follow it" in on_pre
    assert "neither line is tested" in spin_glass_verdict(_phase_grid([[F] * 5]), 1000)
    assert spin_glass_verdict(_phase_grid([[F, G, G, G, G]], "relu"), 1000) == ""


def test_spin_glass_lines_only_for_tanh(three_cells):
    cells = [three_cells["ferro"].isel(time=[0, -1])]
    tanh = analyse_grid(gather(cells))
    assert tanh.attrs["inv_sigma_w_tanh_line"] == pytest.approx(np.sqrt(2), rel=1e-3)
    relu = gather([c.assign_attrs(arch_activation="relu") for c in cells])
    out = analyse_grid(relu)
    assert "inv_sigma_w_tanh_line" not in out.attrs and "inv_sigma_w_preactivation_line" not in out.attrs
    fig = plot_phase_diagram([out])
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert labels and not any("sigma_W^2" in t for t in labels)
    plt.close(fig)


def test_cell_spec_rejects_bad_input():
    with pytest.raises(ValueError, match="lr must be > 0"):
        CellSpec(lr=0, sigma_w=1)
    with pytest.raises(ValueError, match="outside"):
        CellSpec(lr=1, sigma_w=1, n_steps=10, snapshot_steps=(20,))
    with pytest.raises(ValueError, match="engine must be one of"):
        CellSpec(lr=1, sigma_w=1, engine="fast")


def test_cli_cell_and_gather(tmp_path):
    paths = []
    for sw in ("0.5", "2"):
        out = tmp_path / f"sw{sw}.nc"
        rc = main(["phases", "cell", "--lr", "0.5", "--sigma-w", sw, "--n-runs", "3", "--n-steps", "200",
                   "--n-batches", "20", "--n-test", "20", "--n-eval", "20", "--snapshot-steps", "0", "100",
                   "--seed", "5", "--no-progress", "--out", str(out)])
        assert rc == 0
        paths.append(str(out))
    cell = read_artifact(paths[0])
    assert artifact_config(cell)["sigma_w"] == 0.5 and cell.attrs["seed"] == 5
    assert cell.attrs["sgd_clone"] in native.runnable_clones("sgd_teacher_student")  # kept in the file
    grid_path = tmp_path / "grid.nc"
    assert main(["phases", "gather", *paths, "--no-progress", "--out", str(grid_path)]) == 0
    grid = read_artifact(grid_path)
    assert dict(grid.sizes)["sigma_w"] == 2 and "cell_phase" in grid
    assert main(["phases", "cell", "--lr", "-1", "--sigma-w", "1", "--seed", "1",
                 "--out", str(tmp_path / "bad.nc")]) == 2
