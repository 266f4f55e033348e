"""Diffusion building blocks: SDE, U-Net symmetries, augmentation, samplers on an exact score."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from physml.diffusion.model import ScoreModel, build_score_model
from physml.diffusion.samplers import SAMPLERS, em_step, langevin_step, make_sampler
from physml.diffusion.sde import VESDE, make_sde
from physml.diffusion.training import augment, augment_links, dsm_loss
from physml.lattice.u1 import U1, topological_charge

TINY = {"channels": [4, 8], "embed_dim": 8, "groups": 2}


def test_ve_sde_marginal_std_is_integral_of_g_squared():
    sde = VESDE(25.0)
    t = torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=torch.float64)
    # sigma(t)^2 = int_0^t g(s)^2 ds, by quadrature
    s = torch.linspace(0, 1, 200001, dtype=torch.float64)
    g2 = sde.diffusion(s) ** 2
    cum = torch.cat([torch.zeros(1, dtype=torch.float64),
                     torch.cumsum((g2[1:] + g2[:-1]) / 2 * (s[1] - s[0]), 0)])
    expected = torch.sqrt(cum[(t * 200000).round().long()])
    assert torch.allclose(sde.marginal_std(t), expected, rtol=1e-6, atol=1e-9)
    assert sde.prior_std() == pytest.approx(math.sqrt(624 / (2 * math.log(25))))
    x = sde.prior_sampling((20000,), torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.std().item() == pytest.approx(sde.prior_std(), rel=0.03)
    assert make_sde(**sde.config()).sigma == 25.0
    with pytest.raises(ValueError, match="sigma > 1"):
        VESDE(0.5)
    with pytest.raises(ValueError, match="unknown SDE"):
        make_sde("vp")


def _model(odd=True, **net):
    torch.manual_seed(0)
    return build_score_model({"name": "ve", "sigma": 25.0}, {**TINY, **net}, odd=odd).double()


@pytest.mark.parametrize("global_pool", [False, True])
def test_unet_is_periodic_and_runs_on_any_multiple_of_its_downsampling(global_pool):
    model = _model(channels=[4, 8, 8], global_pool=global_pool)
    assert model.downsampling == 4
    t = torch.full((3,), 0.3, dtype=torch.float64)
    for L in (8, 12, 16):
        x = torch.randn(3, L, L, dtype=torch.float64)
        out = model(x, t)
        assert out.shape == x.shape
        # translation by the downsampling factor commutes with the network (circular padding)
        shifted = model(torch.roll(x, (4, -8), (-2, -1)), t)
        assert torch.allclose(shifted, torch.roll(out, (4, -8), (-2, -1)), atol=1e-10)
    with pytest.raises(ValueError, match="downsampling"):
        model(torch.randn(2, 10, 10, dtype=torch.float64), t[:2])


def test_score_is_odd_by_construction_and_divided_by_marginal_std():
    odd, plain = _model(odd=True), _model(odd=False)
    x = torch.randn(4, 8, 8, dtype=torch.float64)
    t = torch.rand(4, dtype=torch.float64)
    assert torch.allclose(odd(-x, t), -odd(x, t), atol=1e-12)
    assert not torch.allclose(plain(-x, t), -plain(x, t), atol=1e-3)
    # output = net / sigma(t): rescaling by sigma(t) gives the raw network output
    raw = plain.net(x[:, None], t)[:, 0] * plain.sde.marginal_std(t)[:, None, None]
    assert torch.allclose(raw * 1, plain(x, t) * plain.sde.marginal_std(t)[:, None, None])


def test_augmentation_is_a_lattice_symmetry_per_configuration():
    gen = torch.Generator().manual_seed(3)
    L = 6
    x = torch.arange(5 * L * L, dtype=torch.float64).reshape(5, L, L)
    y = augment(x, gen)
    seen = set()
    for a, b in zip(x, y):
        matches = []
        for k in range(4):
            for flip in (False, True):
                r = torch.rot90(a, k, (0, 1))
                r = torch.flip(r, (0,)) if flip else r
                for dx in range(L):
                    for dy in range(L):
                        if torch.equal(torch.roll(r, (dx, dy), (0, 1)), b):
                            matches.append((k, flip, dx, dy))
        assert matches, "augmented configuration is not a symmetry image of the input"
        seen.add(matches[0])
    # two-channel fields keep channels aligned
    x2 = torch.stack([x, -x], dim=1)
    y2 = augment(x2, torch.Generator().manual_seed(3))
    assert torch.equal(y2[:, 0], y) and torch.equal(y2[:, 1], -y)
    # the group elements are spread out (not the identity every time)
    ys = augment(x.repeat(64, 1, 1), gen)
    assert len({tuple(v.flatten()[:3].tolist()) for v in ys}) > 20


class GaussianScore(nn.Module):
    """Exact score of N(0, s^2) data diffused by the VE SDE: -x / (s^2 + sigma(t)^2)."""

    def __init__(self, s: float, sde=VESDE(25.0)):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.sde, self.s, self.scale = sde, s, 1.0

    def forward(self, x, t):
        var = self.s ** 2 + self.sde.marginal_std(t) ** 2
        return -x / var.reshape(-1, *([1] * (x.dim() - 1)))

    def denormalise(self, x):
        return x

    def wrap(self, x):
        return x


@pytest.mark.parametrize("name,params,tol", [
    ("em", {"n_steps": 400}, 0.03),
    ("pc", {"n_steps": 200, "snr": 0.1, "n_corrector": 1}, 0.03),
    ("ode", {"n_steps": 100}, 0.03),
    ("ald", {"n_steps": 100, "snr": 0.16, "steps_per_level": 3}, 0.03),
])
def test_samplers_reproduce_a_gaussian_from_its_exact_score(name, params, tol):
    s = 0.7
    sampler = make_sampler(name, **params)
    res = sampler.sample(GaussianScore(s), 4096, (4, 4), generator=torch.Generator().manual_seed(1),
                         batch_size=1024, snapshot_taus=[0, 0.5, 1], n_snapshots=2, show_progress=False)
    x = res.x
    assert x.shape == (4096, 4, 4)
    # std of the sample: s up to sampling error (~1%) and time discretisation
    assert x.std().item() == pytest.approx(s, rel=tol)
    assert abs(x.mean().item()) < 0.02
    assert res.snapshots.shape == (3, 2, 4, 4)
    assert res.snapshot_t[0] == 1.0 and res.snapshot_t[-1] == 0.0
    assert torch.equal(res.snapshots[-1], x[:2])
    assert res.snapshots[0].std() > 3  # prior noise, std 9.8
    assert make_sampler(**sampler.config()).config() == sampler.config()


def test_em_step_count_bias_and_the_log_sigma_grid():
    """The discretisation bias the issue warns about is real for fluctuations much smaller
    than the data scale (here std 0.1 against the prior's 9.8): 50 steps uniform in t miss
    the variance by more than 10%; the same 50 steps geometric in sigma(t) do far better."""
    def ratio(grid):
        res = make_sampler("em", n_steps=50, grid=grid).sample(
            GaussianScore(0.1), 4096, (4, 4), generator=torch.Generator().manual_seed(1),
            batch_size=4096, show_progress=False)
        return res.x.std().item() / 0.1

    linear, geometric = ratio("linear"), ratio("log_sigma")
    assert abs(linear - 1) > 0.1
    assert abs(geometric - 1) < 0.05


def test_sampling_is_deterministic_and_z2_symmetric_with_an_odd_model():
    model = _model().float()
    sampler = make_sampler("em", n_steps=10)
    a = sampler.sample(model, 64, (8, 8), generator=torch.Generator().manual_seed(5), batch_size=32,
                       show_progress=False).x
    b = sampler.sample(model, 64, (8, 8), generator=torch.Generator().manual_seed(5), batch_size=32,
                       show_progress=False).x
    assert torch.equal(a, b)
    # every update is odd in x for a given noise draw, and prior and noise are symmetric:
    # so the sampled law is exactly Z2 symmetric
    x = torch.randn(4, 8, 8)
    t = torch.tensor(0.2)
    gen = torch.Generator()
    assert torch.allclose(em_step(model, -x, t, 0.01, gen, noise=False),
                          -em_step(model, x, t, 0.01, gen, noise=False), atol=1e-5)
    y1 = langevin_step(model, x, t, 0.16, torch.Generator().manual_seed(2))
    y2 = langevin_step(model, -x, t, 0.16, torch.Generator().manual_seed(2))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    # y = x + eps s(x) + sqrt(2 eps) z with the same eps for -x: the drift part is odd,
    # so (y1 + y2) / 2 is the noise term alone, a per-configuration multiple of z
    ratio = ((y1 + y2) / 2 / z).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-3)


def test_unknown_sampler_and_parameters_are_rejected():
    assert set(SAMPLERS) == {"em", "pc", "ode", "ald"}
    with pytest.raises(ValueError, match="geometric grid"):
        make_sampler("ald", grid="linear")
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("mala")
    with pytest.raises(ValueError, match="snr"):
        make_sampler("em", snr=0.1)
    with pytest.raises(ValueError, match="n_steps"):
        make_sampler("em", n_steps=1)


def test_annealing_stage_keeps_the_target_and_counts_its_score_evaluations():
    """Langevin steps at t_min with the exact score leave N(0, s^2 + sigma(t_min)^2) invariant
    (up to the step's O(eps) bias)."""
    s = 0.7
    sampler = make_sampler("em", n_steps=200)
    res = sampler.sample(GaussianScore(s), 4096, (4, 4), generator=torch.Generator().manual_seed(3),
                         batch_size=4096, anneal_steps=50, show_progress=False)
    assert res.nfe == 250
    assert res.x.std().item() == pytest.approx(s, rel=0.03)
    with pytest.raises(ValueError, match="anneal"):
        sampler.sample(GaussianScore(s), 4, (4, 4), generator=torch.Generator(), anneal_steps=-1)


def _links_model():
    torch.manual_seed(0)
    return build_score_model({"name": "ve", "sigma": 25.0}, {**TINY, "in_channels": 2},
                             periodic=True).double()


def test_link_augmentation_is_a_symmetry_of_the_wilson_action():
    gen = torch.Generator().manual_seed(0)
    theory = U1(2.0)
    theta = theory.random_start(16, 8, gen)
    out = augment_links(theta, gen)
    assert torch.all(out >= -math.pi) and torch.all(out < math.pi)
    assert not torch.allclose(out, theta)
    torch.testing.assert_close(theory.action(out), theory.action(theta))
    assert torch.equal(topological_charge(out), topological_charge(theta))


def test_periodic_model_wraps_every_update_and_scales_its_score_with_beta():
    model = _links_model()
    x = 3 * torch.randn(4, 2, 8, 8, dtype=torch.float64)
    assert torch.all(model.wrap(x) < math.pi) and torch.all(model.wrap(x) >= -math.pi)
    t = torch.full((4,), 0.3, dtype=torch.float64)
    base = model(x, t)
    model.score_factor = 3.0
    torch.testing.assert_close(model(x, t), 3.0 * base)
    model.score_factor = 1.0
    res = make_sampler("em", n_steps=5).sample(model, 8, (2, 8, 8), generator=torch.Generator().manual_seed(1),
                                               anneal_steps=2, show_progress=False)
    assert torch.all(res.x >= -math.pi) and torch.all(res.x < math.pi)
    loss = dsm_loss(model, model.wrap(x), torch.Generator().manual_seed(0), 1e-5)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="periodic"):
        build_score_model({"name": "ve", "sigma": 25.0}, TINY, scale=2.0, periodic=True)


def test_gauge_covariant_network_is_gauge_invariant_and_maps_like_the_wilson_force():
    """p_t of gauge-invariant data is invariant under the link shifts of a gauge
    transformation, so its score is too: the network's output must not change (to float
    precision), while the plain link network's does.  (Its last map B^T is the one of the
    Wilson force, which tests/test_u1.py checks against autograd.)"""
    from physml.diffusion.unet import UNet
    from physml.lattice.u1 import gauge_transform

    torch.manual_seed(0)
    sde = VESDE(25.0)
    gauge = UNet(sde, in_channels=2, gauge=True, **TINY).double()
    plain = UNet(sde, in_channels=2, **TINY).double()
    theory = U1(2.0)
    gen = torch.Generator().manual_seed(1)
    theta = theory.random_start(3, 8, gen)
    alpha = 2 * math.pi * torch.rand((3, 8, 8), generator=gen, dtype=torch.float64)
    moved = gauge_transform(theta, alpha)
    t = torch.full((3,), 0.05, dtype=torch.float64)
    torch.testing.assert_close(gauge(moved, t), gauge(theta, t), rtol=0, atol=1e-12)
    assert (plain(moved, t) - plain(theta, t)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="2 channels"):
        UNet(sde, in_channels=1, gauge=True, **TINY)
