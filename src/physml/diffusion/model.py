"""The trained score model: network + SDE + data normalisation + Z2 symmetry.

Units.  The network works on normalised fields x = phi / scale, where
``scale`` is fixed from the training ensemble with **no shift** (the RMS of
all sites, or the maximum |phi| for a symmetric min-max scale), so that
phi -> -phi stays a symmetry of the normalised data.  Since p(phi) =
p_n(phi / scale) / scale^V, the score in physical units is
d log p / d phi = s_n(phi / scale) / scale; at small t it approximates the
drift -dS/dphi of stochastic quantisation (:meth:`ScoreModel.physical_score`).

Z2.  With ``odd=True`` the score is s(x, t) = (f(x, t) - f(-x, t)) / 2, odd in
x by construction; since the prior and the Gaussian noise are symmetric too,
every sampler then draws phi and -phi with exactly equal probability.

Periodic fields (U(1) link angles, ``periodic=True``) use no normalisation
(scale 1, radians): :meth:`ScoreModel.wrap` maps them into [-pi, pi) and every
sampler applies it after each update (see :mod:`physml.diffusion.training` for
how the Gaussian perturbation kernel handles the periodic target).

Physics conditioning (PHYSICS.md section 3).  The Boltzmann weight exp(-beta S_0)
makes the score of the data linear in beta, so a model trained at beta_0 serves any
beta with ``score_factor = beta / beta_0`` multiplying every score evaluation.  This
is exact at t -> 0 only: p_t is the data smeared by noise that does not scale with
beta.  (An interpolation from beta / beta_0 at t = 0 to 1 at large t, exact for
Gaussian fluctuations, was tried for U(1) and gave worse plaquettes and no better
topology at beta = 5.)

Fields are ``(batch, L, L)`` for one channel or ``(batch, C, L, L)``.

A model file (``.pt``) holds the EMA weights, the network and SDE
hyperparameters, the normalisation, the training config, the sha256 of the
training ensemble and its provenance attributes: :func:`load_score_model`
rebuilds everything from it alone.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physml.diffusion.sde import SDE, make_sde
from physml.diffusion.unet import UNet
from physml.io.artifacts import atomic_path
from physml.lattice.u1 import wrap_angle

MODEL_FORMAT = "physml-score-model-1"


class ScoreModel(nn.Module):
    """s_theta(x, t) in normalised units, with optional odd symmetrisation."""

    def __init__(self, net: UNet, scale: float = 1.0, odd: bool = True, periodic: bool = False):
        super().__init__()
        if periodic and scale != 1.0:
            raise ValueError(f"periodic fields are not normalised (scale 1), got scale {scale}")
        self.net = net
        self.sde: SDE = net.sde
        self.scale = float(scale)
        self.odd = bool(odd)
        self.periodic = bool(periodic)
        self.score_factor = 1.0     # beta / beta_0 (physics conditioning); not stored in files

    @property
    def downsampling(self) -> int:
        return self.net.downsampling

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Score of normalised fields ``x`` at times ``t`` (shape ``(batch,)`` or scalar)."""
        squeeze = x.dim() == 3
        h = x[:, None] if squeeze else x
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            t = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        if self.odd:
            out = self.net(torch.cat([h, -h]), torch.cat([t, t]))
            out = 0.5 * (out[: x.shape[0]] - out[x.shape[0]:])
        else:
            out = self.net(h, t)
        if self.score_factor != 1.0:
            out = out * self.score_factor
        return out[:, 0] if squeeze else out

    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        """Periodic fields into [-pi, pi) (identity for fields in R)."""
        return wrap_angle(x) if self.periodic else x

    def normalise(self, phi: torch.Tensor) -> torch.Tensor:
        return phi / self.scale

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    @torch.no_grad()
    def physical_score(self, phi: torch.Tensor, t) -> torch.Tensor:
        """d log p_t / d phi in the field's own units: s_n(phi / scale, t) / scale."""
        return self(self.normalise(phi), t) / self.scale


def build_score_model(sde: dict[str, Any], net: dict[str, Any], scale: float = 1.0,
                      odd: bool = True, periodic: bool = False) -> ScoreModel:
    """A fresh model from plain-JSON SDE and network hyperparameters (weights from torch's RNG)."""
    return ScoreModel(UNet(make_sde(**sde), **net), scale=scale, odd=odd, periodic=periodic)


def model_record(model: ScoreModel, **meta: Any) -> dict[str, Any]:
    """The dict stored in a model file: weights (CPU) and everything needed to rebuild."""
    return {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "sde": model.sde.config(),
        "net": model.net.config(),
        "scale": model.scale,
        "odd": model.odd,
        "periodic": model.periodic,
        **meta,
    }


def save_score_model(path: str | os.PathLike, model: ScoreModel, **meta: Any) -> Path:
    """Write a model file atomically; ``meta`` (config, ensemble sha256, provenance) is stored too."""
    with atomic_path(path) as tmp:
        torch.save(model_record(model, **meta), tmp)
    return Path(path)


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    record = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a physml score model file")
    return record


def load_score_model(path: str | os.PathLike, device: torch.device | str = "cpu"
                     ) -> tuple[ScoreModel, dict[str, Any]]:
    """(model in eval mode on ``device``, the file's record without the weights)."""
    record = read_model_file(path)
    model = build_score_model(record["sde"], record["net"], record["scale"], record["odd"],
                              record.get("periodic", False))
    model.load_state_dict(record.pop("state_dict"))
    return model.to(device).eval(), record


def state_bytes(model: nn.Module) -> bytes:
    """Serialised weights (used by tests to compare two models bit for bit)."""
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()
