"""fig_u1_volume and fig_u1_coupling render from small measured artifacts, with and
without sources, points and the comparison table."""

import pytest
import torch

from physml.cli.figures import figure_function
from physml.figures.render import save_figure
from physml.figures.u1_diffusion import plot_u1_coupling, plot_u1_volume
from physml.lattice.u1 import U1
from physml.lattice.u1_exact import exact_ensemble
from physml.mc.ensembles import independent_ensemble
from physml.mc.mala import run_mala
from physml.observables.compare import comparison_table
from physml.observables.u1 import measure_u1
from physml.stats.reweighting import reweighting_weights

N = 48


def _exact(beta, L, seed, source="exact"):
    ds = exact_ensemble(beta=beta, L=L, n_configs=N, seed=seed)
    ds.attrs["source"] = source
    return ds


def _mala_only(beta, L, seed):
    theory = U1(beta)
    gen = torch.Generator().manual_seed(seed)
    res = run_mala(theory, theory.random_start(N, L, gen), n_steps=20, h=0.05, generator=gen)
    return independent_ensemble(theory, res.x, "mala_only", wall_time_s=0.5)


def _reweighted(beta0, beta, L, seed):
    ds = _exact(beta0, L, seed)
    weights = reweighting_weights(ds["action"].values / beta0, beta - beta0)
    ds = ds.assign(weight=("config", weights), chain=("config", ds["config"].values))
    ds.attrs.update(source="dm_reweighted", beta=beta)
    return ds


@pytest.fixture(scope="module")
def observables():
    ensembles = []
    for k, (beta, L) in enumerate([(1.0, 4), (1.0, 6), (2.0, 4)]):
        seed = 10 * k
        ensembles += [_exact(beta, L, seed + 1), _exact(beta, L, seed + 2, "hmc"),
                      _exact(beta, L, seed + 3, "dm"), _exact(beta, L, seed + 4, "dm_mala")]
        if beta == 1.0:
            ensembles.append(_mala_only(beta, L, seed + 5))
    ensembles.append(_reweighted(1.0, 2.0, 4, 99))
    return [measure_u1(e) for e in ensembles]


def test_figures_are_registered():
    assert figure_function("u1_volume") is plot_u1_volume and figure_function("u1_coupling") is plot_u1_coupling


@pytest.mark.parametrize("plot", [plot_u1_volume, plot_u1_coupling])
def test_u1_diffusion_figures_render(plot, observables, tmp_path):
    table = comparison_table(observables, reference="exact")
    assert {"dm_reweighted", "mala_only"} <= set(table["source"].values)
    for name, datasets in (("full", observables + [table]),
                           ("sparse", [d for d in observables if d.attrs["source"] == "dm"
                                       and int(d.attrs["L"]) == 4 and d.attrs["beta"] == 1.0])):
        written = save_figure(plot(datasets), tmp_path / f"{plot.__name__}_{name}", name=plot.__name__,
                              rule="test", inputs=[])
        assert all(p.is_file() and p.stat().st_size > 0 for p in written)
        assert {p.suffix for p in written} == {".pdf", ".png", ".json"}


def test_no_observables_is_an_error(observables):
    with pytest.raises(ValueError, match="observable artifacts"):
        plot_u1_volume([comparison_table(observables, reference="exact")])
