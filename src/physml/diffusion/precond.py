"""Preconditioners of the denoiser, each a wrapper with one job (Karras et al. 2022).

A preconditioner turns a backbone F (:class:`physml.diffusion.unet.UNet`, which knows
nothing of the noise level) into a denoiser:

    D(h; sigma) = combine(h, F(net_input(h, sigma), noise_label(sigma)), sigma),

and says how the denoising error is weighted in the loss (:meth:`loss`).  Fields ``h``
are ``(batch, C, L1, L2)`` in the model's normalised units; ``sigma`` is ``(batch,)``.
With F = 0 every preconditioner is the exact denoiser of a Gaussian (or two-peak) law of
its own: the part of the model that is fitted, not learned (``law only``).

- :class:`Scalings` (recipes ``edm`` and ``song``): D = c_skip h + c_out F(c_in h; c_noise).
  edm: c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2),
  c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = ln(sigma) / 4, sd the data's RMS; song (the
  VE SDE recipe of score_sde): c_skip = 1, c_out = sigma, c_in = 1, c_noise = t(sigma).
- :class:`SpectralScalings` (edm): the same per lattice momentum, with a propagator law
  C(p) = 1 / (a + b p_hat^2) in place of sd^2: c_skip(p) = C / (C + sigma^2), c_out(p) =
  sigma sqrt(C / (C + sigma^2)).  With F = 0 it is the exact denoiser of a Gaussian field
  with propagator C, on any L.
- :class:`ZeroModeSplit`: the site average m of the field gets the exact posterior of a
  :class:`ZeroModeLaw` (its skip and output scale); the fluctuations h - m go to the
  preconditioner it wraps (scalar or spectral).
- :class:`PlaquetteLaw` (U(1) links, song recipe): adds sigma^2 times the score of the
  law of independent plaquettes at the training coupling, noised (the law of the torus
  that is known, not learned; the network learns what it misses).

The loss of every preconditioner is |err|^2 / c_out^2 per mode, averaged over the modes
it owns, so that the network's target has unit variance at every noise level (EDM's
weighting; song's 1 / sigma^2 is the same rule); :class:`ZeroModeSplit` adds the zero
mode's error weighted by its own output scale, ``zero_mode_weight`` times as much as all
other modes together.  Any positive weighting has the same minimiser, the exact score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from scipy.special import ive

from physml.diffusion.sde import make_sde
from physml.lattice.phi4 import lattice_momenta_sq, momentum_propagator
from physml.lattice.u1 import plaquette_angles, plaquette_transpose

RECIPES = ("edm", "song")
BIMODAL_SIGMAS = 4.0   # two peaks when U exceeds this many of its errors (docs/diffusion_phi4.md)


def _bcast(v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """A per-configuration tensor ``(batch,)`` shaped to broadcast against ``h``."""
    return v.reshape(-1, *([1] * (h.dim() - 1)))


def _site_mean(h: torch.Tensor) -> torch.Tensor:
    return h.mean(dim=(-2, -1), keepdim=True)


class Scalings:
    """Scalar scalings of recipe ``edm`` (``sigma_data``) or ``song`` (``sde``, the VE SDE's
    plain-JSON parameters); module docstring."""

    def __init__(self, recipe: str, sigma_data: float = 1.0, sde: dict | None = None):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known: {list(RECIPES)}")
        if recipe == "song" and not sde:
            raise ValueError("the song recipe needs its VE SDE (sde={'name': 've', 'sigma': ...})")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.recipe = recipe
        self.sigma_data = float(sigma_data)
        self.sde = make_sde(**sde) if recipe == "song" else None

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recipe": self.recipe, "sigma_data": self.sigma_data}
        if self.sde is not None:
            out["sde"] = self.sde.config()
        return out

    def coefficients(self, sigma: torch.Tensor):
        """(c_skip, c_out, c_in, c_noise), each shaped like ``sigma`` ``(batch,)``."""
        if self.recipe == "song":
            one = torch.ones_like(sigma)
            return one, sigma, one, self.sde.time_for_std(sigma)
        sd2 = self.sigma_data ** 2
        norm = torch.sqrt(sigma * sigma + sd2)
        return sd2 / norm ** 2, sigma * self.sigma_data / norm, 1.0 / norm, torch.log(sigma) / 4

    def noise_label(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.coefficients(sigma)[3]

    def net_input(self, h: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return _bcast(self.coefficients(sigma)[2], h) * h

    def combine(self, h: torch.Tensor, f: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        c_skip, c_out = self.coefficients(sigma)[:2]
        return _bcast(c_skip, h) * h + _bcast(c_out, h) * f

    def loss(self, err: torch.Tensor, h: torch.Tensor, sigma: torch.Tensor,
             zero_mode_weight: float = 0.0) -> torch.Tensor:
        """Per-configuration mean over components of (err / c_out)^2."""
        return err.flatten(1).square().mean(1) / self.coefficients(sigma)[1].square()

    def zero_mode_law(self, volume: int) -> tuple[float, float]:
        """No law of its own for the site average: (mu, w^2) = (0, 0)."""
        return 0.0, 0.0


class SpectralScalings(Scalings):
    """edm scalings per momentum from the propagator law ``propagator`` = {a, b} of
    C(p) = 1 / (a + b p_hat^2), p_hat^2 = sum_mu 4 sin^2(p_mu / 2) (module docstring).
    c_in stays the scalar edm one."""

    def __init__(self, sigma_data: float, propagator: dict[str, float]):
        super().__init__("edm", sigma_data)
        if set(propagator) != {"a", "b"} or not propagator["a"] > 0 or propagator["b"] < 0:
            raise ValueError(f"a propagator law needs a > 0, b >= 0; got {propagator}")
        self.propagator = {k: float(v) for k, v in propagator.items()}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "propagator": self.propagator}

    def spectral(self, sigma: torch.Tensor, shape, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip(p), c_out(p)) ``(batch, 1, L1, L2)`` on the FFT momenta."""
        law = self.propagator
        C = 1.0 / (law["a"] + law["b"] * lattice_momenta_sq(shape, device=sigma.device))
        s2 = (sigma.double() ** 2).reshape(-1, 1, 1, 1)
        skip = C / (C + s2)
        return skip.to(dtype), torch.sqrt(s2 * skip).to(dtype)

    def combine(self, h, f, sigma):
        skip, out = self.spectral(sigma, h.shape[-2:], h.dtype)
        return torch.fft.ifft2(skip * torch.fft.fft2(h) + out * torch.fft.fft2(f)).real

    def loss(self, err, h, sigma, zero_mode_weight=0.0):
        """Mean over momenta of |err~(p) / c_out(p)|^2 (orthonormal FFT)."""
        out = self.spectral(sigma, err.shape[-2:], err.dtype)[1]
        return (torch.fft.fft2(err, norm="ortho").abs() / out).square().flatten(1).mean(1)


@dataclass(frozen=True)
class ZeroModeLaw:
    """The law of the site average m0 of the training data (normalised units): +-mu +
    N(0, w^2) with equal weights, w = ``width`` on a lattice of ``volume`` sites.  On
    another volume V the peaks stay at +-mu and w^2 scales as 1/V (:meth:`at`): exact in
    a symmetric phase (chi_2 finite, w^2 = chi_2 / V) and in a broken one (the peaks at
    the magnetisation), an assumption near a critical point.  ``binder`` and
    ``binder_err`` record the test that chose the law (:meth:`fit`)."""

    mu: float
    width: float
    volume: int
    binder: float = float("nan")
    binder_err: float = float("nan")

    def __post_init__(self):
        if not (self.mu >= 0 and self.width > 0 and self.volume > 0):
            raise ValueError(f"a zero-mode law needs mu >= 0, width > 0, volume > 0; got {self}")

    @classmethod
    def fit(cls, m0: torch.Tensor, volume: int, n_blocks: int = 32) -> "ZeroModeLaw":
        """The law of the site averages ``m0`` ``(n,)``, in their stored order.  The Binder
        cumulant U = 1 - <m0^4> / (3 <m0^2>^2) is 0 for a Gaussian and 2/3 for two sharp
        peaks; its error is the jackknife over ``n_blocks`` contiguous blocks (whole
        chains of an ensemble stored chain by chain, so autocorrelation is accounted for).
        Two peaks only if U > :data:`BIMODAL_SIGMAS` errors: then mu^2 = <m0^2> sqrt(3 U / 2)
        and w^2 = <m0^2> - mu^2 (at least 1e-6 <m0^2>), which reproduce <m0^2> and <m0^4>;
        otherwise a single Gaussian, mu = 0, w^2 = <m0^2>."""
        m0 = m0.double().flatten()
        n_blocks = min(n_blocks, len(m0))
        if n_blocks < 2:
            raise ValueError(f"the zero-mode law needs at least 2 site averages, got {len(m0)}")
        blocks = torch.tensor_split(m0, n_blocks)
        sums = torch.stack([torch.stack([b.square().sum(), b.pow(4).sum()]) for b in blocks])
        counts = torch.tensor([len(b) for b in blocks], dtype=torch.float64)

        def binder(s, n):
            m2, m4 = s[..., 0] / n, s[..., 1] / n
            return 1.0 - m4 / (3.0 * m2 * m2)

        u = float(binder(sums.sum(0), counts.sum()))
        loo = binder(sums.sum(0) - sums, counts.sum() - counts)
        u_err = float(math.sqrt((n_blocks - 1) / n_blocks * float((loo - loo.mean()).square().sum())))
        m2 = float(sums[:, 0].sum() / counts.sum())
        mu2 = m2 * math.sqrt(1.5 * min(u, 2.0 / 3.0)) if u > BIMODAL_SIGMAS * u_err else 0.0
        return cls(math.sqrt(mu2), math.sqrt(max(m2 - mu2, 1e-6 * m2)), int(volume), u, u_err)

    def at(self, volume: int) -> tuple[float, float]:
        """(mu, w^2) on a lattice of ``volume`` sites."""
        return self.mu, self.width ** 2 * self.volume / volume

    def posterior(self, m: torch.Tensor, b: torch.Tensor, volume: int):
        """(E[m0 | m], Var[m0 | m]) for m = m0 + N(0, b), elementwise, float64."""
        mu, w2 = self.at(volume)
        var = w2 + b
        shrink = w2 / var
        peaks = (mu, -mu)
        prob = torch.softmax(torch.stack([-(m - p).square() / (2 * var) for p in peaks]), dim=0)
        means = torch.stack([p + shrink * (m - p) for p in peaks])
        mean = (prob * means).sum(0)
        return mean, shrink * b + (prob * means.square()).sum(0) - mean.square()


class ZeroModeSplit:
    """The site average by its :class:`ZeroModeLaw`, the fluctuations by ``inner`` (module
    docstring).  With m = m0 + N(0, b), b = sigma^2 / V: the skip is E[m0 | m], the output
    scale c_out0 = sqrt(Var[m0 | m] + b / 4) (the b / 4 lets the network move m where the
    posterior is narrow), and the network reads c_in (h - m) + m / sqrt(mu^2 + w^2 + b)."""

    def __init__(self, inner: Scalings, law: ZeroModeLaw):
        if inner.recipe != "edm":
            raise ValueError("the zero-mode split needs the edm recipe")
        self.inner = inner
        self.law = law

    recipe = property(lambda self: self.inner.recipe)
    sde = property(lambda self: self.inner.sde)
    sigma_data = property(lambda self: self.inner.sigma_data)

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "zero_mode": asdict(self.law)}

    def zero_mode_law(self, volume: int) -> tuple[float, float]:
        return self.law.at(volume)

    def zero_mode(self, h: torch.Tensor, sigma: torch.Tensor):
        """(site average m ``(batch, C, 1, 1)``, E[m0 | m] like m, c_out0 ``(batch,)``,
        c_in0 ``(batch,)``)."""
        volume = h.shape[-1] * h.shape[-2]
        mu, w2 = self.law.at(volume)
        m = _site_mean(h)
        b = (sigma * sigma / volume).double()
        mean, var = self.law.posterior(m.double()[..., 0, 0], b[:, None], volume)
        c_out0 = torch.sqrt(var.clamp(min=0)[:, 0] + b / 4)
        c_in0 = 1.0 / torch.sqrt(mu * mu + w2 + b)
        return m, mean[..., None, None].to(h.dtype), c_out0.to(h.dtype), c_in0.to(h.dtype)

    def noise_label(self, sigma):
        return self.inner.noise_label(sigma)

    def net_input(self, h, sigma):
        m, _, _, c_in0 = self.zero_mode(h, sigma)
        return self.inner.net_input(h - m, sigma) + _bcast(c_in0, h) * m

    def combine(self, h, f, sigma):
        m, skip0, c_out0, _ = self.zero_mode(h, sigma)
        f_mean = _site_mean(f)
        return self.inner.combine(h - m, f - f_mean, sigma) + skip0 + _bcast(c_out0, h) * f_mean

    def loss(self, err, h, sigma, zero_mode_weight=0.0):
        """The fluctuations' loss, plus ``zero_mode_weight`` (err's site average / c_out0)^2."""
        e_mean = _site_mean(err)
        fluct = self.inner.loss(err - e_mean, h, sigma)
        if not zero_mode_weight:
            return fluct
        c_out0 = self.zero_mode(h, sigma)[2]
        return fluct + zero_mode_weight * e_mean.flatten(1).mean(1).square() / c_out0.square()


class PlaquetteLaw:
    """U(1) links ``h`` ``(batch, 2, L1, L2)`` (radians): the denoiser of ``inner`` (song)
    plus sigma^2 s_law, the score of the law in which every plaquette angle is an
    independent von Mises(``beta``) variable and, noised, its own marginal: link noise of
    variance sigma^2 gives each plaquette (four links) noise of variance 4 sigma^2, so

        f_sigma(t) = 1 + 2 sum_{n >= 1} I_n(beta) / I_0(beta) exp(-2 n^2 sigma^2) cos(n t),
        s_law(h; sigma) = B^T (f_sigma' / f_sigma)(theta_P(h)),

    the link-space score of the product of the f_sigma over plaquettes (B the link ->
    plaquette map).  Exact at sigma -> 0 (s_law -> -beta B^T sin theta_P, the Wilson
    force) and uniform at large sigma; in between it ignores the correlations that shared
    links put between neighbouring plaquettes' noise and the plaquettes' global constraint.
    Gauge covariant and periodic.  The series runs to the first n with I_n / I_0 < 1e-17."""

    def __init__(self, inner: Scalings, beta: float):
        if inner.recipe != "song":
            raise ValueError("the plaquette law needs the song recipe")
        if not beta > 0:
            raise ValueError(f"the plaquette law needs beta > 0, got {beta}")
        self.inner = inner
        self.beta = float(beta)
        ratios, n = [], 1
        while not ratios or ratios[-1] > 1e-17:
            ratios.append(float(ive(n, self.beta) / ive(0, self.beta)))
            n += 1
        self.ratios = torch.tensor(ratios, dtype=torch.float64)

    recipe = property(lambda self: self.inner.recipe)
    sde = property(lambda self: self.inner.sde)
    sigma_data = property(lambda self: self.inner.sigma_data)

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "plaquette_law": {"beta": self.beta}}

    def zero_mode_law(self, volume: int) -> tuple[float, float]:
        return 0.0, 0.0

    def law_score(self, h: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """s_law(h; sigma) (class docstring), shape and dtype of ``h``."""
        n = torch.arange(1, len(self.ratios) + 1, dtype=h.dtype, device=h.device)
        coeff = self.ratios.to(h) * torch.exp(-2.0 * n * n * sigma.to(h.dtype)[:, None] ** 2)   # (batch, n)
        nt = plaquette_angles(h)[..., None] * n
        c = coeff[:, None, None, :]
        f = 1 + 2 * (c * torch.cos(nt)).sum(-1)
        df = -2 * (c * n * torch.sin(nt)).sum(-1)
        return plaquette_transpose(df / f)

    def noise_label(self, sigma):
        return self.inner.noise_label(sigma)

    def net_input(self, h, sigma):
        return self.inner.net_input(h, sigma)

    def combine(self, h, f, sigma):
        return self.inner.combine(h, f, sigma) + _bcast(sigma * sigma, h) * self.law_score(h, sigma)

    def loss(self, err, h, sigma, zero_mode_weight=0.0):
        return self.inner.loss(err, h, sigma)


def fit_propagator(y: torch.Tensor) -> dict[str, float]:
    """The law C(p) = 1 / (a + b p_hat^2) fitted by least squares in 1 / C to the mean
    power |y~(p)|^2 / V (:func:`physml.lattice.phi4.momentum_propagator`) of the
    site-average-free fields ``y`` ``(n, L1, L2)`` over the non-zero momenta; a > 0 and
    b >= 0 enforced."""
    power = momentum_propagator(y.double()).mean(0)
    p2 = lattice_momenta_sq(y.shape[-2:]).flatten()[1:]
    inv = 1.0 / power.flatten()[1:].clamp(min=1e-12)
    design = torch.stack([torch.ones_like(p2), p2], dim=1)
    a, b = torch.linalg.lstsq(design, inv[:, None]).solution[:, 0].tolist()
    b = max(b, 0.0)
    a = max(a, 1e-3 * float(inv.mean())) if b == 0.0 else max(a, 1e-6)
    return {"a": a, "b": b}


def make_precond(recipe: str, sigma_data: float = 1.0, sde: dict | None = None,
                 propagator: dict | None = None, zero_mode: dict | None = None,
                 plaquette_law: dict | None = None):
    """The preconditioner a plain-JSON config describes (``make_precond(**p.config())``
    round-trips): the recipe's :class:`Scalings`, per momentum with a ``propagator`` law,
    inside a :class:`ZeroModeSplit` with a ``zero_mode`` law, or inside a
    :class:`PlaquetteLaw` with a ``plaquette_law`` ({'beta': ...})."""
    if plaquette_law is not None:
        return PlaquetteLaw(Scalings(recipe, sigma_data, sde), **plaquette_law)
    if propagator is not None and recipe != "edm":
        raise ValueError(f"a propagator law needs the edm recipe; got recipe {recipe!r}")
    if zero_mode is not None and recipe != "edm":
        raise ValueError(f"a zero-mode law needs the edm recipe; got recipe {recipe!r}")
    inner = (SpectralScalings(sigma_data, propagator) if propagator is not None
             else Scalings(recipe, sigma_data, sde))
    return inner if zero_mode is None else ZeroModeSplit(inner, ZeroModeLaw(**zero_mode))
