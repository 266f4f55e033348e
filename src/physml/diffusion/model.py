"""The score model: one callable ``score(x, sigma, beta)`` around a raw network.

Units.  The network works on normalised fields x = phi / scale, where ``scale`` is
fixed from the training ensemble with **no shift** (the RMS of all sites, or the
maximum |phi|), so that phi -> -phi stays a symmetry of the normalised data.  Since
p(phi) = p_n(phi / scale) / scale^V, the score in physical units is
d log p / d phi = s_n(phi / scale) / scale; at small sigma it approaches the drift
-dS/dphi of stochastic quantisation (:meth:`ScoreModel.physical_score`).

Noise.  Every model is a variance-exploding one: x_sigma = x_0 + sigma z, z ~ N(0, 1)
per component, with sigma in normalised units.  ``sigma_min`` and ``sigma_max`` are
the range the model was trained on; samplers start from the prior at sigma_max
(:meth:`ScoreModel.zero_mode_law`) and must not go below sigma_min.

Denoiser.  D(x; sigma) = combine(x, F(net_input(x, sigma), noise_label(sigma)), sigma),
with F the backbone (:class:`physml.diffusion.unet.UNet`) and the preconditioner one of
:mod:`physml.diffusion.precond` (the recipe's scalings, per momentum or not, with or
without the zero-mode split); the score is (D - x) / sigma^2.  ``odd=True`` symmetrises
the backbone, F(h) -> (F(h) - F(-h)) / 2, so the score is odd in x; since the prior and
the Gaussian noise are symmetric too, every sampler then draws phi and -phi with exactly
equal probability.  :meth:`ScoreModel.without_network` silences F: what is left is the
preconditioner's own law (``law only``), the part of the model that is fitted, not learned.

Prior.  N(0, sigma_max^2) per component plus a uniform shift of variance mu^2 + w^2, the
zero-mode law at the sampled volume (none without a zero-mode split): the noised data
at sigma_max have exactly that extra spread along the zero mode, which in the broken phase
is as large as sigma_max^2 / V itself, and a deterministic sampler would carry the
mismatch of a plain Gaussian prior to the end.

Periodic fields (U(1) link angles, ``periodic=True``) use no normalisation (scale 1,
radians): :meth:`ScoreModel.wrap` maps them into [-pi, pi) and every sampler applies
it after each update (see :mod:`physml.diffusion.training` for how the Gaussian
kernel handles the periodic target).

Physics conditioning.  The Boltzmann weight exp(-beta S_0) makes the score of the
data linear in beta, so a model trained at ``beta0`` serves any beta with the score
multiplied by beta / beta0 (``score(x, sigma, beta)``).  This is exact as sigma -> 0
only: the noised marginal is the data smeared by noise that does not scale with beta.

Fields are ``(batch, L, L)`` for one channel or ``(batch, C, L, L)``.

A model file (``.pt``) holds the EMA weights and plain-JSON metadata only (network,
preconditioner, normalisation, noise range, the training config, the sha256 of the
training ensemble and its provenance attributes); it is read with
``torch.load(weights_only=True)``, so a model file cannot run code, and
:func:`load_score_model` rebuilds everything from it alone.
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physml.diffusion.precond import make_precond
from physml.diffusion.sde import make_sde
from physml.diffusion.unet import UNet
from physml.io.artifacts import atomic_path
from physml.lattice.u1 import plaquette_transpose, wrap_angle

MODEL_FORMAT = "physml-score-model-3"


def odd_part(net: nn.Module, h: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
    """(F(h) - F(-h)) / 2 in one batched call of ``net``."""
    n = h.shape[0]
    f = net(torch.cat([h, -h]), torch.cat([c_noise, c_noise]))
    return 0.5 * (f[:n] - f[n:])


class ScoreModel(nn.Module):
    """score(x, sigma, beta) in normalised units (module docstring).  ``precond`` is a
    preconditioner of :mod:`physml.diffusion.precond`."""

    def __init__(self, net: UNet, precond, sigma_min: float, sigma_max: float,
                 scale: float = 1.0, odd: bool = True, periodic: bool = False,
                 beta0: float | None = None):
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
        self.silent = False

    @property
    def downsampling(self) -> int:
        return self.net.downsampling

    def without_network(self) -> "ScoreModel":
        """The same model with the backbone's output set to zero: the preconditioner's own
        law alone (``law only``); shares the weights (read only)."""
        law = copy.copy(self)
        law.silent = True
        return law

    def _sigma(self, sigma, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(sigma, torch.Tensor) or sigma.dim() == 0:
            return torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)
        return sigma.to(x.dtype)

    def backbone(self, h: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """F(h; c_noise): the network, odd-symmetrised with ``odd``, zero when ``silent``."""
        if self.silent:
            return torch.zeros_like(h)
        return odd_part(self.net, h, c_noise) if self.odd else self.net(h, c_noise)

    def denoise(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """D(x; sigma) (module docstring)."""
        sigma = self._sigma(sigma, x)
        h = x[:, None] if x.dim() == 3 else x
        p = self.precond
        d = p.combine(h, self.backbone(p.net_input(h, sigma), p.noise_label(sigma)), sigma)
        return d[:, 0] if x.dim() == 3 else d

    def zero_mode_law(self, volume: int) -> tuple[float, float]:
        """(mu, w^2) of the site average's law on a lattice of ``volume`` sites ((0, 0)
        without a zero-mode split): the prior's extra uniform variance is mu^2 + w^2."""
        return self.precond.zero_mode_law(volume)

    def forward(self, x: torch.Tensor, sigma, beta: float | None = None) -> torch.Tensor:
        """Score (D(x; sigma) - x) / sigma^2 of normalised fields ``x`` at noise ``sigma``
        (float or ``(batch,)``), times beta / beta0 when ``beta`` is given (physics
        conditioning; only for models trained at a coupling ``beta0``)."""
        sigma = self._sigma(sigma, x)
        score = (self.denoise(x, sigma) - x) / (sigma * sigma).reshape(-1, *([1] * (x.dim() - 1)))
        return score * self.score_factor(beta)

    def score_factor(self, beta: float | None) -> float:
        """beta / beta0 (1 without ``beta``)."""
        if beta is None:
            return 1.0
        if self.beta0 is None:
            raise ValueError("this model was not trained at a coupling beta0: no physics conditioning")
        return float(beta) / self.beta0

    def moved_subspace(self, site_shape) -> torch.Tensor | None:
        """An orthonormal basis ``(dim, k)`` of the only directions a deterministic sampler
        moves a field of ``site_shape`` in, when the sampler is the identity on the rest
        (:mod:`physml.diffusion.density`); None: every direction.  The gauge-covariant U(1)
        network with the song recipe's c_skip = 1: every update is B^T g(theta_P), so the
        span of B^T (rank L^2 - 1; gauge directions and the two holonomies are its
        complement)."""
        if not (self.periodic and getattr(self.net, "gauge", False) and self.precond.recipe == "song"):
            return None
        unit = torch.eye(site_shape[-2] * site_shape[-1], dtype=torch.float64).reshape(-1, *site_shape[-2:])
        bt = plaquette_transpose(unit).flatten(1).T                  # B^T: (2V, V)
        u, s, _ = torch.linalg.svd(bt, full_matrices=False)
        return u[:, s > 1e-9 * s.max()]

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
                "odd": self.odd, "periodic": self.periodic, "beta0": self.beta0}


def build_score_model(net: dict[str, Any], precond: dict[str, Any], sigma_min: float,
                      sigma_max: float, scale: float = 1.0, odd: bool = True,
                      periodic: bool = False, beta0: float | None = None) -> ScoreModel:
    """A fresh model from plain-JSON parameters (weights from torch's global RNG);
    ``precond`` as :func:`physml.diffusion.precond.make_precond` takes it."""
    return ScoreModel(UNet(**net), make_precond(**precond), sigma_min, sigma_max, scale=scale,
                      odd=odd, periodic=periodic, beta0=beta0)


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
