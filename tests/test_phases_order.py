"""The order parameters of the paper, the authors' ferro/para criterion and the
classification built on them (rule ``order``), on cells pinned on both sides of the
predicted spin-glass line sigma_W^2 = 1/2."""

import numpy as np
import pytest
import xarray as xr

from physml.phases import boundaries, cells, classify
from physml.phases import teacher_student as ts
from physml.phases.classify import FERRO, GLASS, PARA, UNCONVERGED


def test_authors_criterion_is_the_notebooks():
    """K_t and V_t against the authors' notebook computation, written out here with their
    einsums, per-point gradients, elementwise variance and loop (one run at a time)."""
    runs = ts.draw_runs(3, 2.0, seed=4)
    data = ts.draw_data(runs, 4, 10, 64)
    W = runs.W0 + 0.3 * np.random.default_rng(1).standard_normal(runs.W0.shape).astype(np.float32)
    drift, noise = cells.authors_criterion(runs, data.x_test, data.y_test, W)
    K = runs.arch.n2
    for r in range(runs.n_runs):
        M, Wl, Wt, Z = (np.asarray(v[r], float) for v in (runs.M, W, runs.W_teacher, runs.Z[:, None, :]))
        s0 = np.tanh(np.einsum("Ki,ni->nK", M, np.asarray(data.x_test[r], float)))
        s_ = np.einsum("LK,nK->nL", Wl, s0)
        yt = np.einsum("oL,nL->no", Z, np.tanh(np.einsum("LK,nK->nL", Wt, s0)))
        phi = np.einsum("no,oL,nL->nL", yt - np.einsum("oL,nL->no", Z, np.tanh(s_)), Z, 1 - np.tanh(s_) ** 2)
        dX_l = np.einsum("aK,nbK->nab", Wl, np.einsum("nL,nK->nLK", phi, s0))
        dX = dX_l + dX_l.transpose(0, 2, 1)
        U = np.linalg.svd(Wl @ Wl.T)[0]
        K_til = np.einsum("ba,bc,cd->ad", U, dX.mean(0), U)
        V_til = np.einsum("ba,bc,cd->ad", U, dX.var(0), U)
        H = sum((V_til[0, k] + V_til[-1, K - k]) / k for k in range(1, K - 1))
        assert drift[r] == pytest.approx(abs(K_til[0, 0]) - abs(K_til[-1, -1]), rel=1e-5)
        assert noise[r] == pytest.approx(2 * V_til[0, -1] / (K - 1) + H, rel=1e-5)


def test_recorded_order_parameters():
    spec = cells.CellSpec(lr=0.5, sigma_w=2.0, n_runs=3, n_steps=200, n_batches=20, n_test=50, n_eval=20,
                          snapshot_steps=(0, 200), seed=2, engine="reference")
    ds = cells.run_cell(spec)
    runs = ts.draw_runs(3, 2.0, seed=2)
    data = ts.draw_data(runs, 4, 20, 50)
    W = ts.train_sgd(runs, data, 0.5, 200, engine="reference").W
    _, _, s0 = ts.hidden(runs, data.x_test, runs.W0)
    _, _, s = ts.hidden(runs, data.x_test, W)
    end = ds.isel(time=-1)
    np.testing.assert_allclose(end["overlap_q_authors"], (s0 * s).sum(axis=(1, 2)) / (50 * 16), rtol=1e-5)
    h = data.y_test[:, :, None] * runs.Z[:, None, :]
    cos = [np.mean([np.dot(h[r, :, i], s[r, :, i]) / np.linalg.norm(h[r, :, i]) / np.linalg.norm(s[r, :, i])
                    for i in range(16)]) for r in range(3)]
    np.testing.assert_allclose(end["field_alignment_units"], cos, rtol=1e-5)
    top = [np.linalg.svd(w, compute_uv=False)[:, 0] for w in (runs.W0, W)]
    np.testing.assert_allclose(end["sv_top_ratio"], top[1] / top[0], rtol=1e-5)
    np.testing.assert_allclose(ds["teacher_singular_values"].isel(sv=0),
                               np.linalg.svd(runs.W_teacher, compute_uv=False)[:, 0], rtol=1e-5)
    np.testing.assert_allclose(ds["sv_top_ratio"].sel(time=0), 1)


def _grid(test_loss, top, top0, teacher, q_A, diverged_step=(-1, -1), floor_top=1.0):
    """Phases at time 10 of the two runs of a sigma_W = 4 cell with the given test loss, top
    singular value (top0 at time 0), teacher's top singular value and q_A; the floor cell
    (sigma_W = 0.125) has test loss 1 and top singular value ``floor_top`` at time 10 (1 at 0)."""
    shape = (2, 2, 2)                                                # sigma_w, time, run
    loss, q, sv1 = np.full(shape, 5.0), np.full(shape, 1.0), np.full(shape, 1.0)
    loss[0, 1], loss[1, 1] = 1.0, test_loss
    sv1[0, 1] = floor_top
    sv1[1, 0], sv1[1, 1] = top0, top
    q[1, 1] = q_A
    grid = xr.Dataset({"test_loss": (("sigma_w", "time", "run"), loss),
                       "singular_values": (("sigma_w", "time", "run", "sv"), np.stack([sv1, sv1 / 2], axis=-1)),
                       "teacher_singular_values": (("run", "sv"), [[teacher, 0.1]] * 2),
                       "overlap_q_authors": (("sigma_w", "time", "run"), q),
                       "diverged_step": (("sigma_w", "run"), [[-1, -1], list(diverged_step)])},
                      coords={"sigma_w": [0.125, 4.0], "time": [0, 10]})
    return classify.classify_runs(grid, rule="order").sel(sigma_w=4.0, time=10).values


def test_order_rule_reads_its_order_parameters_in_order():
    assert list(_grid(2.9, 1.0, 1.0, 1.0, 0.9)) == [FERRO] * 2                  # within 3 of the floor
    assert list(_grid(3.1, 1.0, 1.0, 1.0, 0.9)) == [GLASS] * 2                  # frozen, q_A high
    assert list(_grid(3.1, 1.0, 1.0, 1.0, 0.4)) == [UNCONVERGED] * 2            # q_A low
    assert list(_grid(3.1, 0.8, 1.0, 1.0, 0.9)) == [UNCONVERGED] * 2            # spectrum moved 20%
    assert list(_grid(1.0, 10.0, 1.0, 0.5, 0.9)) == [PARA] * 2                  # grown 10x: before ferro
    assert list(_grid(1.0, 10.0, 1.0, 2.0, 0.9)) == [FERRO] * 2                 # only 5x the teacher's
    assert list(_grid(1.0, 1.0, 1.0, 1.0, 0.9, diverged_step=(5, 20))) == [PARA, FERRO]
    # a paramagnetic floor (the noise plateau at high T) makes nothing ferromagnetic
    assert list(_grid(1.0, 1.0, 1.0, 1.0, 0.9, floor_top=10.0)) == [GLASS] * 2
    with pytest.raises(ValueError, match="sigma_w axis"):
        classify.classify_runs(xr.Dataset({"test_loss": ("run", [1.0]), "diverged_step": ("run", [-1])},
                                          coords={"time": 10}), rule="order")


def test_floor_is_the_same_run_at_the_smallest_sigma_w():
    grid = xr.Dataset({"test_loss": (("T", "sigma_w", "run"), [[[1.0, 2.0], [3.0, 3.0]], [[4.0, 1.0], [4.0, 4.0]]]),
                       "diverged_step": (("T", "sigma_w", "run"), [[[-1, -1], [-1, -1]], [[-1, -1], [-1, 7]]])},
                      coords={"T": [0.1, 1.0], "sigma_w": [2.0, 0.5], "time": 10})
    ratio = classify.floor_ratio(grid).sel(sigma_w=2.0)          # the floor is sigma_w = 0.5, per run and T
    np.testing.assert_allclose(ratio.sel(T=0.1), [1 / 3, 2 / 3])
    assert ratio.sel(T=1.0, run=0) == 1 and np.isnan(ratio.sel(T=1.0, run=1))   # floor run 1 diverged at 7


SHORT = dict(n_runs=8, n_steps=30000, n_batches=1000, n_test=200, n_eval=50, snapshot_steps=(0, 30000), seed=3)


def _cut(lr, sigma_ws):
    """Cells at one lr (T = lr / 4) after 3 x 10^4 steps, analysed as a grid (the first
    sigma_W, 0.125, is the floor)."""
    return classify.analyse_grid(cells.gather([cells.run_cell(cells.CellSpec(lr=lr, sigma_w=sw, **SHORT))
                                               for sw in sigma_ws]))


@pytest.fixture(scope="module")
def low_T():
    """T = 0.125: sigma_W = 0.25 below the predicted line sigma_W = 0.71, 1 and 8 above it."""
    return _cut(0.5, (0.125, 0.25, 1.0, 8.0))


def _share(grid, sigma_w, phase, rule="order"):
    return float((classify.classify_runs(grid, rule=rule).sel(sigma_w=sigma_w).isel(time=-1) == phase).mean())


def test_cells_on_both_sides_of_the_predicted_line(low_T):
    assert 1 / low_T.attrs["inv_sigma_w_tanh_line"] == pytest.approx(np.sqrt(0.5), rel=1e-3)
    assert _share(low_T, 0.25, FERRO) >= 0.75          # below the line: learns like the floor
    assert _share(low_T, 8.0, GLASS) >= 0.75           # above: frozen spectrum, q_A high, loss far above the floor
    # ... where the loss threshold of the old rule calls it learned (test loss under 0.1 of the zero output)
    assert _share(low_T, 8.0, FERRO, rule="physml") >= 0.75
    end = low_T.sel(sigma_w=8.0).isel(time=-1)
    assert float(end["test_loss_floor_ratio"].median()) > 10 and float(end["test_loss_rel"].median()) < 0.1


def test_noise_grown_spectrum_is_paramagnetic_where_the_loss_threshold_says_learned(low_T):
    """sigma_W = 1: ferromagnetic at T = 0.125 under both rules; at T = 2 the noise has grown
    the top singular value tens of times past the teacher's while the test loss is below 0.1
    of the zero output's: paramagnetic under rule order, learned under the old rule."""
    hot = _cut(8.0, (0.125, 1.0))
    assert _share(low_T, 1.0, FERRO) >= 0.75 and _share(low_T, 1.0, FERRO, rule="physml") >= 0.75
    assert _share(hot, 1.0, PARA) >= 0.75 and _share(hot, 1.0, FERRO, rule="physml") >= 0.75
    # the authors' criterion holds for more runs at the low T than at the high one
    frac = [float(boundaries.criterion_fraction(g, "authors").sel(sigma_w=1.0).isel(T=0, time=-1)) for g in (low_T, hot)]
    assert frac[0] > frac[1]
