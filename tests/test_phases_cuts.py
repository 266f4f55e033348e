"""Boundaries along cuts of the phase diagram: the boundary finder, its binomial errors and
the two classification rules."""

import numpy as np
import pytest
from scipy import stats

from physml.phases import cells, classify, cuts
from physml.phases import teacher_student as ts
from physml.phases.classify import FERRO, GLASS, PARA, UNCONVERGED

X = 2.0 ** np.arange(-3, 9)  # the authors' axis: 0.125 .. 256


def sharp_counts(x, boundary, n=20, below=FERRO, above=GLASS):
    """Cell labels that change from ``below`` to ``above`` at ``boundary``, every run agreeing."""
    counts = np.zeros((len(x), len(classify.PHASES)), int)
    counts[x < boundary, below] = n
    counts[x > boundary, above] = n
    return counts


def test_boundary_of_unanimous_cells_is_bracketed_without_binomial_error():
    b = cuts.find_boundary(X, sharp_counts(X, 11.0), GLASS, "high")
    assert b.status == cuts.INSIDE and b.other == FERRO
    assert b.bracket == (8.0, 16.0)
    assert b.position == pytest.approx(np.sqrt(8 * 16))  # g = 0 and 1: the log midpoint
    assert b.lower == b.upper == b.position              # unanimous cells: no binomial error
    # the ferro block at the low end of a T cut, para above it
    b = cuts.find_boundary(X, sharp_counts(X, 3.0, below=FERRO, above=PARA), FERRO, "low")
    assert (b.status, b.bracket, b.other) == (cuts.INSIDE, (2.0, 4.0), PARA)


def test_boundary_off_the_cut_is_flagged():
    assert cuts.find_boundary(X, sharp_counts(X, 1000.0), GLASS, "high").status == cuts.NOT_REACHED
    assert cuts.find_boundary(X, sharp_counts(X, 0.01), GLASS, "high").status == cuts.WHOLE_CUT
    assert np.isnan(cuts.find_boundary(X, sharp_counts(X, 0.01), GLASS, "high").position)
    with pytest.raises(ValueError):
        cuts.find_boundary(X[::-1], sharp_counts(X, 3.0), GLASS, "high")


def test_boundary_finder_recovers_a_known_boundary_from_sampled_labels():
    """Runs are glass with a probability logistic in log sigma_W, 1/2 at a known boundary,
    and ferro otherwise; from 200 sampled runs per cell the finder lands on the boundary
    within two of its binomial errors (plus the bias of interpolating the logistic linearly
    between cells, < 0.05 in log sigma_W here) in at least 90% of 40 draws."""
    rng = np.random.default_rng(5)
    hits = 0
    for trial in range(40):
        true = float(np.exp(rng.uniform(np.log(1.0), np.log(64.0))))
        n = 200
        p_glass = 1 / (1 + np.exp(-(np.log(X) - np.log(true)) / 0.6))
        counts = np.zeros((len(X), 4), int)
        counts[:, GLASS] = rng.binomial(n, p_glass)
        counts[:, FERRO] = n - counts[:, GLASS]
        b = cuts.find_boundary(X, counts, GLASS, "high")
        assert b.status == cuts.INSIDE and b.other == FERRO
        assert b.bracket[0] / 2 <= true <= b.bracket[1] * 2   # within a grid step of its bracket
        sigma = np.log(b.upper / b.position)
        assert sigma == pytest.approx(np.log(b.position / b.lower))
        hits += abs(np.log(b.position / true)) <= 2 * sigma + 0.05
    assert hits >= 36


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (17, 40), (50, 100), (99, 100)])
def test_binomial_error_is_the_exact_standard_deviation_of_the_fraction(k, n):
    p = k / n
    j = np.arange(n + 1)
    exact = np.sqrt(np.sum(stats.binom.pmf(j, n, p) * (j / n - p) ** 2))
    assert cuts.binomial_error(k, n) == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("p_out,p_in,m", [(0.3, 0.8, 400), (0.1, 0.6, 400), (0.4, 0.9, 1000)])
def test_crossing_error_matches_the_exact_spread_of_the_estimate(p_out, p_in, m):
    """The propagated error of the boundary against its exact standard deviation: every pair
    of outcomes (k_out, k_in) of the two bracketing cells weighted by its binomial probability
    (the pairs where the estimate is defined, g_in > 1/2 >= g_out, hold > 99.99% of it)."""
    u_out, u_in = np.log(8.0), np.log(16.0)
    k = np.arange(m + 1)
    w_out, w_in = stats.binom.pmf(k, m, p_out), stats.binom.pmf(k, m, p_in)
    g_out, g_in = np.meshgrid(k / m, k / m, indexing="ij")
    w = np.outer(w_out, w_in)
    ok = (g_in > 0.5) & (g_out <= 0.5)
    assert w[ok].sum() > 0.9999
    u = u_out + (0.5 - g_out[ok]) / (g_in[ok] - g_out[ok]) * (u_in - u_out)
    mean = np.sum(w[ok] * u) / w[ok].sum()
    exact = np.sqrt(np.sum(w[ok] * (u - mean) ** 2) / w[ok].sum())
    propagated = cuts.crossing_error(u_out, u_in, p_out, p_in, cuts.binomial_error(p_out * m, m),
                                     cuts.binomial_error(p_in * m, m))
    assert propagated == pytest.approx(exact, rel=0.05)
    assert mean == pytest.approx(cuts.crossing(u_out, u_in, p_out, p_in), abs=0.2 * exact)


def test_authors_overlap_is_the_unnormalised_feature_overlap():
    runs = ts.draw_runs(3, 4.0, seed=2)
    data = ts.draw_data(runs, 4, 20, 50)
    W = runs.W0 + 0.5 * np.random.default_rng(0).standard_normal(runs.W0.shape).astype(np.float32)
    grid = cells.xr.Dataset(
        {name: (("time", "run"), np.stack([cells.measure(runs, data, w, runs.W0, 0.1, 10)[name]
                                           for w in (runs.W0, W)]))
         for name in ("overlap_q", "saturation")}, coords={"time": [0, 10]})
    _, _, s0 = ts.hidden(runs, data.x_test, runs.W0)
    _, _, s = ts.hidden(runs, data.x_test, W)
    direct = (s0 * s).sum(axis=(1, 2)) / (s.shape[1] * s.shape[2])
    np.testing.assert_allclose(classify.authors_overlap(grid).sel(time=10), direct, rtol=1e-5)


def test_rules_differ_only_in_the_glass_test():
    """A frozen but unsaturated run is unconverged under physml and paramagnetic under the
    authors' rule unless q_A passes; a learning run is ferro under both."""
    grid = cells.xr.Dataset({"test_loss_rel": (("time", "run"), [[1.0, 1.0, 1.0], [1.0, 0.01, 1.0]]),
                             "overlap_q": (("time", "run"), [[1.0, 1.0, 1.0], [0.9, 0.2, 0.95]]),
                             "saturation": (("time", "run"), [[0.2, 0.9, 0.9], [0.2, 0.9, 0.9]]),
                             "diverged_step": ("run", [-1, -1, -1])}, coords={"time": [0, 5]})
    mine = classify.classify_runs(grid).sel(time=5).values
    theirs = classify.classify_runs(grid, rule="authors").sel(time=5).values
    assert list(mine) == [UNCONVERGED, FERRO, GLASS]
    assert list(theirs) == [PARA, FERRO, GLASS]   # q_A = 0.9 * 0.2 = 0.18; 0.95 * 0.9 = 0.855
    with pytest.raises(ValueError):
        classify.classify_runs(grid, rule="other")


def test_boundary_study_of_two_small_cuts():
    spec = dict(n_runs=3, n_steps=200, n_batches=10, n_test=20, n_eval=10, snapshot_steps=(0, 50, 200),
                engine="reference")
    sw_cut = cells.gather([cells.run_cell(cells.CellSpec(lr=0.5, sigma_w=s, **spec)) for s in (1.0, 64.0)])
    T_cut = cells.gather([cells.run_cell(cells.CellSpec(lr=lr, sigma_w=s, **spec))
                          for lr in (0.5, 128.0) for s in (0.125, 1.0)])          # with its floor cells
    study = cuts.boundary_study(sw_cut, T_cut, floor_factors=[2, 10])
    assert list(study["rule"].values) == list(classify.RULES)
    assert study["glass"].dims == ("rule", "time") and study.sizes["time"] == 3
    assert study["glass_counts"].sum("phase").isel(time=-1).values.tolist() == [[3, 3]] * len(classify.RULES)
    assert list(study["ferro_T"].values) == [0.125, 32.0]                        # the cut, not the floor
    assert study["boundary_by_floor_factor"].dims == ("boundary", "floor_factor", "time")
    # the scan at the default factor repeats rule order
    k3 = cuts.boundary_study(sw_cut, T_cut, floor_factors=[3.0])["boundary_by_floor_factor_status"]
    assert (k3.sel(boundary="ferro", floor_factor=3.0) == study["ferro_status"].sel(rule="order")).all()
    assert study.attrs["sigma_w_preactivation_line"] == pytest.approx(
        np.sqrt(0.5 / study.attrs["feature_m2"]), rel=1e-4)  # critical variance 1/2 to 1e-5
    assert study.attrs["glass_fixed_T"] == 0.125 and study.attrs["ferro_fixed_sigma_w"] == 1.0
    assert study["drift_criterion_fraction"].dims == ("ferro_T", "time")
    with pytest.raises(ValueError):
        cuts.boundary_study(T_cut, sw_cut)
    with pytest.raises(ValueError, match="floor cells"):
        cuts.boundary_study(sw_cut, T_cut.sel(sigma_w=[1.0]))
