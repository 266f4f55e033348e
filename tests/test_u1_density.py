"""The model's density on the torus: log q of what a deterministic sampler generates from
U(1) link angles, with every step wrapped into [-pi, pi).

Ground truths: a brute-force reverse-mode Jacobian of the whole wrapped map of a small
gauge-covariant network; and an exactly known periodic law, independent wrapped normals
with a centre per link, whose exact score (every noise level) makes the sampler's law
converge to it as the steps grow: ESS/N -> 1, and log Z -> 0 (the law is normalised)."""

import math

import pytest
import torch
from torch import nn

from physml.diffusion.density import prior_log_density
from physml.diffusion.model import build_score_model
from physml.diffusion.samplers import Noise, Walk, make_sampler, prior
from physml.lattice.u1 import wrap_angle
from physml.mc.importance import ess_fraction, log_partition, log_weights

L = 4
IMAGES = 8   # windings of the wrapped normal: enough for widths up to 6 rad (terms < 1e-20)


def wrapped_normal_terms(theta: torch.Tensor, var: torch.Tensor):
    """Per-image log N(theta + 2 pi k; 0, var) over k = -IMAGES .. IMAGES, stacked last."""
    k = torch.arange(-IMAGES, IMAGES + 1, dtype=theta.dtype, device=theta.device)
    shifted = theta[..., None] + 2 * math.pi * k
    return shifted, -0.5 * shifted ** 2 / var[..., None] - 0.5 * torch.log(2 * math.pi * var[..., None])


class WrappedNormalScore(nn.Module):
    """Exact score of independent wrapped normals of width ``width`` centred at ``centre``
    (one angle per link): noised by sigma they stay wrapped normals of variance
    width^2 + sigma^2.  The sampler interface of :class:`physml.diffusion.model.ScoreModel`."""

    periodic = True
    scale = 1.0

    def __init__(self, centre: torch.Tensor, width: float, sigma_min: float = 3e-3, sigma_max: float = 6.0):
        super().__init__()
        self.centre, self.width = centre.double(), float(width)
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._probe = nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False)

    def forward(self, x, sigma, beta=None):
        var = torch.as_tensor(self.width ** 2 + float(sigma) ** 2, dtype=torch.float64).expand(x.shape)
        shifted, log_terms = wrapped_normal_terms(wrap_angle(x.double() - self.centre), var)
        post = torch.softmax(log_terms, dim=-1)
        return (-(post * shifted).sum(-1) / var).to(x.dtype)

    def log_density(self, theta: torch.Tensor) -> torch.Tensor:
        var = torch.full(theta.shape, self.width ** 2, dtype=torch.float64)
        _, log_terms = wrapped_normal_terms(wrap_angle(theta.double() - self.centre), var)
        return torch.logsumexp(log_terms, dim=-1).flatten(1).sum(1)

    def zero_mode_law(self, volume):
        return 0.0, 0.0

    def wrap(self, x):
        return wrap_angle(x)

    def denormalise(self, x):
        return x


SITES = (2, 2, 2)   # the wrapped-normal law is per link: a 2 x 2 torus keeps the Jacobian small


def _exact(width=0.4):
    centre = wrap_angle(torch.linspace(-3.0, 3.1, math.prod(SITES), dtype=torch.float64).reshape(SITES) * 7)
    return WrappedNormalScore(centre, width)


@pytest.mark.parametrize("name,steps", [("ode", (4, 8, 32)), ("ode2m", (8, 16, 64))])
def test_torus_map_converges_to_an_exact_periodic_law(name, steps):
    """With the exact score of a wrapped-normal law whose centres sit everywhere on the
    circle (so many links cross +-pi on their way), ESS/N grows to > 0.98 with the steps,
    and log Z, which is 0 for a normalised target, comes out within 3 errors of 0."""
    exact = _exact()
    ess, last = [], None
    for n_steps in steps:
        res = make_sampler(name, n_steps=n_steps).sample(exact, 128, SITES, seed=4, show_progress=False,
                                                         density="jacobian")
        log_w = log_weights(-exact.log_density(res.x).numpy(), res.log_q.numpy())
        ess.append(ess_fraction(log_w))
        last = log_w
    assert ess[0] < ess[1] < ess[2] and ess[0] < 0.9 and ess[2] > 0.98, ess
    log_z, err = log_partition(last)
    assert abs(log_z) < 3 * err + 1e-6, (log_z, err)


def test_wrapping_every_multistep_state_would_break_the_law():
    """The lifted ode2m (module samplers, MultistepODE) against the same walk with the state
    wrapped after every step: the latter leaves the exact law (ESS/N far below 1)."""
    exact = _exact()
    sampler = make_sampler("ode2m", n_steps=96)
    sigmas = sampler.noise_grid(exact)
    z = prior(exact, sigmas[0], Noise(4, 0, 128, "cpu"), (128, *SITES), torch.float64, "cpu")
    x, d_prev, h_prev = z, None, None
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):   # the walk with a wrap after each step
        d = x + s0 * s0 * exact(x, s0)
        h = math.log(s0 / s1)
        d_eff = d if d_prev is None else (1 + h / (2 * h_prev)) * d - h / (2 * h_prev) * d_prev
        x, d_prev, h_prev = wrap_angle((s1 / s0) * x + (1 - s1 / s0) * d_eff), d, h
    x = wrap_angle(x + sigmas[-1] ** 2 * exact(x, sigmas[-1]))
    lifted = sampler.sample(exact, 128, SITES, seed=4, show_progress=False)
    moved = (wrap_angle(x - lifted.x).abs() > 1e-3).flatten(1).any(1).double().mean()
    assert moved > 0.5, moved   # most configurations differ
    log_p = exact.log_density(x) - exact.log_density(lifted.x)
    assert float(log_p.mean()) < -5 * float(log_p.std()) / math.sqrt(len(log_p))   # in lower density


@pytest.mark.parametrize("name,law", [("ode", False), ("ode2m", False), ("ode2m", True)])
def test_log_det_on_the_torus_agrees_with_a_brute_force_jacobian(name, law):
    """A small random gauge-covariant network (the U(1) model's architecture, with and
    without the plaquette law) on the 4 x 4 torus: log q of the sampler, whose walk wraps
    and whose Jacobian is taken along the L^2 - 1 directions it moves, against the prior's
    wrapped-normal density and the slogdet of the whole 32 x 32 Jacobian of the map by
    reverse mode, to 1e-9; the sampled field against the map itself to 1e-12."""
    torch.manual_seed(0)
    precond = {"recipe": "song", "sde": {"name": "ve", "sigma": 25.0}}
    if law:
        precond["plaquette_law"] = {"beta": 1.0}
    model = build_score_model({"in_channels": 2, "channels": [4, 8], "embed_dim": 8, "groups": 2, "gauge": True},
                              precond, 3e-3, 9.8, periodic=True, beta0=1.0).double()
    assert model.moved_subspace((2, L, L)).shape == (2 * L * L, L * L - 1)
    sampler = make_sampler(name, n_steps=5)
    res = sampler.sample(model, 3, (2, L, L), seed=1, beta=2.0, show_progress=False, density="jacobian")
    sigmas = sampler.noise_grid(model)

    def phi(z):
        walk = Walk(None, beta=2.0)
        return sampler.final_step(model, sampler._diffuse(model, z[None], sigmas, walk), sigmas[-1], walk)[0]

    z = prior(model, sigmas[0], Noise(1, 0, 3, "cpu"), (3, 2, L, L), torch.float64, "cpu")
    assert float(z.abs().max()) > 3.0   # the prior fills the circle
    dim = 2 * L * L
    for i in range(3):
        jac = torch.autograd.functional.jacobian(phi, z[i]).reshape(dim, dim)
        log_q = prior_log_density(model, z[i:i + 1], sigmas[0]) - torch.linalg.slogdet(jac)[1]
        assert float(res.log_q[i]) == pytest.approx(float(log_q), abs=1e-9)
        torch.testing.assert_close(res.x[i], phi(z[i]), rtol=0, atol=1e-12)
    # the prior is uniform on the torus to within exp(-sigma_max^2 / 2) per link
    assert float(prior_log_density(model, z, sigmas[0]).sub(-dim * math.log(2 * math.pi)).abs().max()) < 1e-12


def test_plaquette_law_is_the_wilson_force_at_small_noise_and_a_noised_von_mises():
    """The law's score at sigma -> 0 is the Wilson force at beta_0; at sigma = 0.5 its
    plaquette factor is the von Mises density convolved with the noise of a plaquette
    (four links: variance 4 sigma^2), by quadrature."""
    from physml.diffusion.precond import make_precond
    from physml.lattice.u1 import U1

    beta = 2.0
    law = make_precond("song", sde={"name": "ve", "sigma": 25.0}, plaquette_law={"beta": beta})
    theta = wrap_angle(torch.randn(3, 2, L, L, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2)
    small = law.law_score(theta, torch.full((3,), 1e-5, dtype=torch.float64))
    torch.testing.assert_close(small, U1(beta).force(theta), rtol=0, atol=1e-8)
    sigma, t = 0.5, torch.linspace(-math.pi, math.pi, 9, dtype=torch.float64)
    phi = torch.linspace(-math.pi, math.pi, 20001, dtype=torch.float64)[:-1]
    var = torch.full((len(t), len(phi)), 4 * sigma ** 2, dtype=torch.float64)
    _, noise = wrapped_normal_terms(wrap_angle(t[:, None] - phi[None, :]), var)
    conv = (torch.exp(beta * torch.cos(phi)) * torch.logsumexp(noise, -1).exp()).mean(1)   # up to a constant
    n = torch.arange(1, len(law.ratios) + 1, dtype=torch.float64)
    f = 1 + 2 * (law.ratios * torch.exp(-2 * n * n * sigma ** 2) * torch.cos(t[:, None] * n)).sum(1)
    ratio = conv / f
    torch.testing.assert_close(ratio / ratio[0], torch.ones_like(ratio), rtol=1e-8, atol=0)


def test_fig_u1_exact_dm_renders_and_circles_a_folding_map(tmp_path):
    """The figure from dm_q / dm_imh ensembles (exact draws at beta = 1 standing in for the
    model's proposals, log q = sum_P cos theta_P up to a constant); a point whose map folds
    is circled."""
    from physml.figures.render import save_figure
    from physml.figures.u1_diffusion import plot_u1_exact_dm
    from physml.lattice.u1 import U1
    from physml.lattice.u1_exact import sample_exact
    from physml.mc.ensembles import independent_ensemble
    from physml.mc.importance import density_summary, imh_ensemble

    theta, _ = sample_exact(1.0, 4, 32, seed=1)
    datasets = []
    for beta, sign in ((1.0, 0.0), (2.0, 0.0), (3.0, 0.5)):
        log_w = log_weights(U1(beta).action(theta).numpy(), (-U1(1.0).action(theta)).numpy())
        attrs = dict(density="jacobian", train_beta=1.0, jacobian_sign_negative=sign)
        datasets += [independent_ensemble(U1(beta), theta, "dm_q", **attrs, **density_summary(log_w)),
                     imh_ensemble(U1(beta), theta, log_w, torch.Generator().manual_seed(2), **attrs)]
    fig = plot_u1_exact_dm(datasets)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "ESS/N, L=4" in labels and any("folds" in label for label in labels)
    assert save_figure(fig, tmp_path / "fig", name="fig_u1_exact_dm", rule="test", inputs=[])
