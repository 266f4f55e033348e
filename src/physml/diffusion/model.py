"""The score model: one callable ``score(x, sigma, beta)`` around a raw network.

Units.  The network works on normalised fields x = phi / scale, where ``scale`` is
fixed from the training ensemble with **no shift** (the RMS of all sites, or the
maximum |phi|), so that phi -> -phi stays a symmetry of the normalised data.  Since
p(phi) = p_n(phi / scale) / scale^V, the score in physical units is
d log p / d phi = s_n(phi / scale) / scale; at small sigma it approaches the drift
-dS/dphi of stochastic quantisation (:meth:`ScoreModel.physical_score`).

Noise.  Every model is a variance-exploding one: x_sigma = x_0 + sigma z, z ~ N(0, 1)
per component, with sigma in normalised units.  ``sigma_min`` and ``sigma_max`` are
the range the model was trained on; samplers start from N(0, sigma_max^2) and must not
go below sigma_min.

Preconditioning (:class:`Precond`, one place for all of it; Karras et al. 2022).  The
denoiser is D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) with F the backbone
(:class:`physml.diffusion.unet.UNet`), and the score is (D - x) / sigma^2.  Two recipes:

- ``edm``: sigma_data the RMS of the normalised data (of its fluctuations about the site
  average when the zero mode is split off, below),
  c_skip = sigma_data^2 / (sigma^2 + sigma_data^2), c_out = sigma sigma_data /
  sqrt(sigma^2 + sigma_data^2), c_in = 1 / sqrt(sigma^2 + sigma_data^2),
  c_noise = ln(sigma) / 4;
- ``song`` (the score_sde recipe of the papers this pipeline reproduces): the VE SDE
  dx = s^t dW with sigma(t)^2 = (s^(2t) - 1) / (2 ln s), c_skip = 1, c_out = sigma,
  c_in = 1, c_noise = t(sigma), i.e. score = F(x, t) / sigma(t).

Zero mode (edm recipe, scalar fields with a ``zero_mode`` law).  The data's spread along
the uniform field differs from that of every other mode by orders of magnitude (in the
broken phase of phi^4 the site average m = phibar / scale is +-1 within +-0.006, while
the fluctuations about it are about 0.08), so one set of scalings cannot serve both,
and a network asked to resolve m to a fraction of its noise at small sigma would need
outputs as steep as sqrt(V) / sigma in m.  The field is therefore split into m and the
fluctuations x - m.  The fluctuations get the scalings above, with sigma_data their RMS
(recorded at training).  The site average gets the exact denoiser of a two-peak law
fitted to the training site averages by their moments (:func:`fit_zero_mode`):
m0 = +-mu + N(0, w^2), mu^2 = <m0^2> sqrt(3 U / 2) with U the Binder cumulant (clipped
to [0, 2/3]; mu = 0 in the symmetric phase, a single Gaussian), w^2 = <m0^2> - mu^2.
With m = m0 + N(0, b), b = sigma^2 / V, the posterior mean and variance of m0 are the
skip and the output scale: D0 = E[m0 | m] + sqrt(Var[m0 | m] + b / 4) F0, F0 the
network output's site average (the b / 4 lets the network move m where the posterior
is narrow).  The network reads c_in (x - m) + m / sqrt(mu^2 + w^2 + b).  Finite-size
scaling: the peaks +-mu are taken as volume independent and the width as w^2 ~ 1/V
(w^2 V_train / V at volume V), exact in both the symmetric and the broken phase; near
the critical point the law of phibar changes shape with L and the network must correct
it there.

Spectral scalings (edm, zero mode split off, ``propagator`` law).  One c_skip for all
fluctuations assumes every mode has the variance sigma_data^2, while in a lattice field
the short-wavelength modes are several times narrower than the long ones: the network
must then cancel most of the skip connection for them, and an error there leaves the
configurations too rough.  With a law C(p) = 1 / (a + b p_hat^2), p_hat^2 = sum_mu 4
sin^2(p_mu / 2), fitted to the training data's power spectrum (:func:`fit_propagator`),
the fluctuations are denoised per momentum, D~(p) = c_skip(p) x~(p) + c_out(p) F~(p) with
c_skip = C / (C + sigma^2) and c_out = sigma sqrt(C / (C + sigma^2)): the exact
denoiser of a Gaussian field with that propagator when F = 0 (the free field's exact
score with the free law, on any L), the network adding only the interaction's
correction.  C = sigma_data^2 at every p gives back the scalar scalings above.

Z2.  With ``odd=True`` F is symmetrised, F(x) -> (F(x) - F(-x)) / 2, so the score is
odd in x; since the prior and the Gaussian noise are symmetric too, every sampler
then draws phi and -phi with exactly equal probability.

Periodic fields (U(1) link angles, ``periodic=True``) use no normalisation (scale 1,
radians): :meth:`ScoreModel.wrap` maps them into [-pi, pi) and every sampler applies
it after each update (see :mod:`physml.diffusion.training` for how the Gaussian
kernel handles the periodic target).

Physics conditioning.  The Boltzmann weight exp(-beta S_0) makes the score of the
data linear in beta, so a model trained at ``beta0`` serves any beta with the score
multiplied by beta / beta0 (``score(x, sigma, beta)``).  This is exact as sigma -> 0
only: the noised marginal is the data smeared by noise that does not scale with beta.

Prior.  Samplers start from N(0, sigma_max^2) per component plus a uniform shift of
variance mu^2 + w^2 of the zero-mode law at the sampled volume (edm recipe, scalar
fields): the noised data at sigma_max have exactly
that extra spread along the zero mode, which in the broken phase is as large as
sigma_max^2 / V itself, and a deterministic sampler would carry the mismatch of a
plain Gaussian prior to the end.  The spread of the site average is taken as
volume independent, exact in the broken phase and an overestimate elsewhere, where
it is small against sigma_max^2 / V.

Fields are ``(batch, L, L)`` for one channel or ``(batch, C, L, L)``.

A model file (``.pt``) holds the EMA weights and plain-JSON metadata only (network,
preconditioning, normalisation, noise range, the training config, the sha256 of the
training ensemble and its provenance attributes); it is read with
``torch.load(weights_only=True)``, so a model file cannot run code, and
:func:`load_score_model` rebuilds everything from it alone.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physml.diffusion.sde import make_sde
from physml.diffusion.unet import UNet
from physml.io.artifacts import atomic_path
from physml.lattice.phi4 import lattice_momenta_sq, momentum_propagator
from physml.lattice.u1 import wrap_angle

MODEL_FORMAT = "physml-score-model-2"
RECIPES = ("edm", "song")


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-configuration tensor ``(batch,)`` shaped to broadcast against ``x``."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def fit_propagator(y: torch.Tensor) -> dict[str, float]:
    """The law C(p) = 1 / (a + b p_hat^2) fitted by least squares in 1 / C to the mean
    power |y~(p)|^2 / V (:func:`momentum_propagator`) of the site-average-free fields ``y``
    ``(n, L1, L2)`` over the non-zero momenta; a > 0 and b >= 0 enforced."""
    power = momentum_propagator(y.double()).mean(0)
    p2 = lattice_momenta_sq(y.shape[-2:]).flatten()[1:]
    inv = 1.0 / power.flatten()[1:].clamp(min=1e-12)
    design = torch.stack([torch.ones_like(p2), p2], dim=1)
    a, b = torch.linalg.lstsq(design, inv[:, None]).solution[:, 0].tolist()
    b = max(b, 0.0)
    a = max(a, 1e-3 * float(inv.mean())) if b == 0.0 else max(a, 1e-6)
    return {"a": a, "b": b}


class Precond:
    """Scalings (c_skip, c_out, c_in, c_noise) of the denoiser for ``recipe`` (module
    docstring); ``sde`` (song) is the VE SDE's plain-JSON parameters, ``sigma_data``
    (edm) the data's RMS in normalised units, ``propagator`` (edm, optional) the law
    {a, b} of C(p) = 1 / (a + b p_hat^2) that sets per-momentum scalings of the
    fluctuations about the site average (:meth:`spectral`)."""

    def __init__(self, recipe: str, sigma_data: float = 1.0, sde: dict | None = None,
                 propagator: dict[str, float] | None = None):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known: {list(RECIPES)}")
        if recipe == "song" and not sde:
            raise ValueError("the song recipe needs its VE SDE (sde={'name': 've', 'sigma': ...})")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        if propagator is not None and (recipe != "edm" or set(propagator) != {"a", "b"}
                                       or not propagator["a"] > 0 or propagator["b"] < 0):
            raise ValueError(f"a propagator law needs the edm recipe and a > 0, b >= 0; got {propagator}")
        self.recipe = recipe
        self.sigma_data = float(sigma_data)
        self.sde = make_sde(**sde) if recipe == "song" else None
        self.propagator = None if propagator is None else {k: float(v) for k, v in propagator.items()}

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recipe": self.recipe, "sigma_data": self.sigma_data}
        if self.sde is not None:
            out["sde"] = self.sde.config()
        if self.propagator is not None:
            out["propagator"] = self.propagator
        return out

    def spectral(self, sigma: torch.Tensor, shape, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(c_skip(p), c_out(p)) ``(batch, 1, L1, L2)`` on the FFT momenta: the exact
        denoiser of a Gaussian field with the propagator law C(p), c_skip = C / (C +
        sigma^2) and c_out = sigma sqrt(C / (C + sigma^2)) its posterior standard
        deviation; C = sigma_data^2 at every p reproduces the scalar edm scalings."""
        law = self.propagator
        C = 1.0 / (law["a"] + law["b"] * lattice_momenta_sq(shape, device=sigma.device))
        s2 = (sigma.double() ** 2).reshape(-1, 1, 1, 1)
        skip = C / (C + s2)
        return skip.to(dtype), torch.sqrt(s2 * skip).to(dtype)

    def scalings(self, sigma: torch.Tensor):
        """(c_skip, c_out, c_in, c_noise), each shaped like ``sigma`` ``(batch,)``."""
        if self.recipe == "song":
            one = torch.ones_like(sigma)
            return one, sigma, one, self.sde.time_for_std(sigma)
        sd2 = self.sigma_data ** 2
        norm = torch.sqrt(sigma * sigma + sd2)
        return sd2 / norm ** 2, sigma * self.sigma_data / norm, 1.0 / norm, torch.log(sigma) / 4


class ScoreModel(nn.Module):
    """score(x, sigma, beta) in normalised units (module docstring)."""

    def __init__(self, net: UNet, precond: Precond, sigma_min: float, sigma_max: float,
                 scale: float = 1.0, odd: bool = True, periodic: bool = False,
                 beta0: float | None = None, zero_mode: dict[str, float] | None = None):
        super().__init__()
        if periodic and scale != 1.0:
            raise ValueError(f"periodic fields are not normalised (scale 1), got scale {scale}")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.net = net
        self.precond = precond
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.scale = float(scale)
        self.odd = bool(odd)
        self.periodic = bool(periodic)
        self.beta0 = None if beta0 is None else float(beta0)
        if zero_mode is not None and (periodic or set(zero_mode) != {"mu", "width", "volume"}
                                      or zero_mode["width"] <= 0 or zero_mode["mu"] < 0):
            raise ValueError(f"zero_mode needs a scalar field and mu >= 0, width > 0, volume; "
                             f"got {zero_mode}")
        self.zero_mode = None if zero_mode is None else {k: float(v) for k, v in zero_mode.items()}

    @property
    def downsampling(self) -> int:
        return self.net.downsampling

    def _sigma(self, sigma, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(sigma, torch.Tensor) or sigma.dim() == 0:
            return torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)
        return sigma.to(x.dtype)

    def denoise(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) (F odd-symmetrised with ``odd``),
        the zero mode with its own scalings (module docstring)."""
        sigma = self._sigma(sigma, x)
        c_skip, c_out, c_in, c_noise = self.precond.scalings(sigma)
        squeeze = x.dim() == 3
        h = x[:, None] if squeeze else x
        split = self.splits_zero_mode
        if split:
            mean = h.mean(dim=(-2, -1), keepdim=True)
            skip0, c_out0, c_in0 = self.zero_mode_scalings(sigma, h)
            h_in = _bcast(c_in, h) * (h - mean) + _bcast(c_in0, h) * mean
        else:
            h_in = _bcast(c_in, h) * h
        if self.odd:
            n = x.shape[0]
            f = self.net(torch.cat([h_in, -h_in]), torch.cat([c_noise, c_noise]))
            f = 0.5 * (f[:n] - f[n:])
        else:
            f = self.net(h_in, c_noise)
        if split:
            f_mean = f.mean(dim=(-2, -1), keepdim=True)
            if self.precond.propagator is not None:
                skip_p, out_p = self.precond.spectral(sigma, h.shape[-2:], h.dtype)
                fluct = torch.fft.ifft2(skip_p * torch.fft.fft2(h - mean)
                                        + out_p * torch.fft.fft2(f - f_mean)).real
            else:
                fluct = _bcast(c_skip, h) * (h - mean) + _bcast(c_out, h) * (f - f_mean)
            d = fluct + skip0 + _bcast(c_out0, h) * f_mean
        else:
            d = _bcast(c_skip, h) * h + _bcast(c_out, h) * f
        return d[:, 0] if squeeze else d

    @property
    def splits_zero_mode(self) -> bool:
        """Whether the zero mode has its own denoiser (edm recipe with a ``zero_mode`` law)."""
        return self.zero_mode is not None and self.precond.recipe == "edm"

    def zero_mode_law(self, volume: int) -> tuple[float, float]:
        """(mu, w^2) of the site average's law on a lattice of ``volume`` sites (module
        docstring; (0, 0) without a zero-mode law)."""
        if self.zero_mode is None:
            return 0.0, 0.0
        zm = self.zero_mode
        return zm["mu"], zm["width"] ** 2 * zm["volume"] / volume

    def zero_mode_scalings(self, sigma: torch.Tensor, h: torch.Tensor):
        """(E[m0 | m] shaped like the site average of ``h`` ``(batch, C, 1, 1)``,
        c_out0 = sqrt(Var[m0 | m] + b / 4), c_in0 = 1 / sqrt(mu^2 + w^2 + b)) for the site
        average m of ``h`` at noise ``sigma`` (module docstring)."""
        volume = h.shape[-1] * h.shape[-2]
        mu, w2 = self.zero_mode_law(volume)
        b = (sigma * sigma / volume).double()[:, None]                   # (batch, 1)
        m = h.mean(dim=(-2, -1)).double()                                 # (batch, C)
        var = w2 + b
        shrink = w2 / var
        peaks = (mu, -mu)
        logw = torch.stack([-(m - p).square() / (2 * var) for p in peaks])
        prob = torch.softmax(logw, dim=0)
        means = torch.stack([p + shrink * (m - p) for p in peaks])
        post_mean = (prob * means).sum(0)
        post_var = shrink * b + (prob * means.square()).sum(0) - post_mean.square()
        c_out0 = torch.sqrt(post_var.clamp(min=0)[:, 0] + b[:, 0] / 4)
        c_in0 = 1.0 / torch.sqrt(mu * mu + w2 + b[:, 0])
        return post_mean[..., None, None].to(h.dtype), c_out0.to(h.dtype), c_in0.to(h.dtype)

    def forward(self, x: torch.Tensor, sigma, beta: float | None = None) -> torch.Tensor:
        """Score (D(x; sigma) - x) / sigma^2 of normalised fields ``x`` at noise ``sigma``
        (float or ``(batch,)``), times beta / beta0 when ``beta`` is given (physics
        conditioning; only for models trained at a coupling ``beta0``)."""
        sigma = self._sigma(sigma, x)
        score = (self.denoise(x, sigma) - x) / _bcast(sigma * sigma, x)
        return score * self.score_factor(beta)

    def score_factor(self, beta: float | None) -> float:
        """beta / beta0 (1 without ``beta``)."""
        if beta is None:
            return 1.0
        if self.beta0 is None:
            raise ValueError("this model was not trained at a coupling beta0: no physics conditioning")
        return float(beta) / self.beta0

    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        """Periodic fields into [-pi, pi) (identity for fields in R)."""
        return wrap_angle(x) if self.periodic else x

    def normalise(self, phi: torch.Tensor) -> torch.Tensor:
        return phi / self.scale

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    @torch.no_grad()
    def physical_score(self, phi: torch.Tensor, sigma) -> torch.Tensor:
        """d log p_sigma / d phi in the field's own units, ``sigma`` in normalised units:
        s_n(phi / scale, sigma) / scale."""
        return self(self.normalise(phi), sigma) / self.scale

    def config(self) -> dict[str, Any]:
        """Plain-JSON description; ``build_score_model(**model.config())`` rebuilds it."""
        return {"net": self.net.config(), "precond": self.precond.config(),
                "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "scale": self.scale,
                "odd": self.odd, "periodic": self.periodic, "beta0": self.beta0,
                "zero_mode": self.zero_mode}


def build_score_model(net: dict[str, Any], precond: dict[str, Any], sigma_min: float,
                      sigma_max: float, scale: float = 1.0, odd: bool = True,
                      periodic: bool = False, beta0: float | None = None,
                      zero_mode: dict[str, float] | None = None) -> ScoreModel:
    """A fresh model from plain-JSON parameters (weights from torch's global RNG)."""
    return ScoreModel(UNet(**net), Precond(**precond), sigma_min, sigma_max, scale=scale, odd=odd,
                      periodic=periodic, beta0=beta0, zero_mode=zero_mode)


def model_record(model: ScoreModel, **meta: Any) -> dict[str, Any]:
    """The dict stored in a model file: weights (CPU) and plain metadata."""
    return {"format": MODEL_FORMAT,
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "model": model.config(), **meta}


def save_score_model(path: str | os.PathLike, model: ScoreModel, **meta: Any) -> Path:
    """Write a model file atomically; ``meta`` (config, ensemble sha256, provenance) is stored too."""
    with atomic_path(path) as tmp:
        torch.save(model_record(model, **meta), tmp)
    return Path(path)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """The record of a model file, loaded without unpickling code (``weights_only``)."""
    path = Path(path)
    expected = "expected a model file of `physml diffusion train`"
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; {expected}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # not a torch file, or one that would need arbitrary code
        raise ValueError(f"{path}: not a physml score model file ({type(exc).__name__}); "
                         f"{expected}") from None
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a physml score model file (format "
                         f"{record.get('format') if isinstance(record, dict) else None!r}); "
                         f"{expected}, format {MODEL_FORMAT!r}")
    return record


def load_score_model(path: str | os.PathLike, device: torch.device | str = "cpu"
                     ) -> tuple[ScoreModel, dict[str, Any]]:
    """(model in eval mode on ``device``, the file's record without the weights)."""
    record = read_model_file(path)
    model = build_score_model(**record["model"])
    model.load_state_dict(record.pop("state_dict"))
    return model.to(device).eval(), record


def state_bytes(model: nn.Module) -> bytes:
    """Serialised weights (used by tests to compare two models bit for bit)."""
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def song_sigma_range(sde: dict[str, Any], t_min: float) -> tuple[float, float]:
    """(sigma(t_min), sigma(1)) of a VE SDE: the noise range of a song-recipe model."""
    s = make_sde(**sde)
    return (float(s.marginal_std(torch.tensor(t_min, dtype=torch.float64))),
            float(s.marginal_std(torch.tensor(1.0, dtype=torch.float64))))


def fit_zero_mode(m0: torch.Tensor) -> dict[str, float]:
    """The symmetric two-peak law +-mu + N(0, w^2) of the site averages ``m0`` (normalised
    units) by their second and fourth moments: mu^2 = <m0^2> sqrt(3 U / 2), U = 1 -
    <m0^4> / (3 <m0^2>^2) clipped to [0, 2/3], w^2 = <m0^2> - mu^2 (at least 1e-6 of
    <m0^2>); ``volume`` = the number of sites is added by the caller."""
    m2 = float(m0.double().square().mean())
    m4 = float(m0.double().pow(4).mean())
    binder = min(max(1.0 - m4 / (3.0 * m2 * m2), 0.0), 2.0 / 3.0)
    mu2 = m2 * math.sqrt(1.5 * binder)
    w2 = max(m2 - mu2, 1e-6 * m2)
    return {"mu": math.sqrt(mu2), "width": math.sqrt(w2)}
