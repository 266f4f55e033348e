"""The variance-exploding SDE of the papers' recipe (score_sde, Song et al. arXiv:2011.13456).

dx = g(t) dW with g(t) = s^t on t in [0, 1]: the perturbation kernel is N(x0, sigma(t)^2)
with sigma(t)^2 = int_0^t s^(2u) du = (s^(2t) - 1) / (2 ln s) (for s = 25, sigma(1) = 9.84).
The samplers work in the noise level sigma directly (:mod:`physml.diffusion.samplers`);
a song-recipe model uses the SDE only to turn sigma into its time label t
(:class:`physml.diffusion.precond.Scalings`) and for the papers' time grids.
Time ``t`` is a tensor (or a float); all quantities are in the model's normalised units.
"""

from __future__ import annotations

import math

import torch


def _as_tensor(t) -> torch.Tensor:
    return t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float64)


SDES: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make an SDE available by its ``name``."""
    SDES[cls.name] = cls
    return cls


@register
class VESDE:
    """Variance-exploding SDE dx = sigma^t dW (module docstring)."""

    name = "ve"

    def __init__(self, sigma: float = 25.0):
        if sigma <= 1.0:
            raise ValueError(f"VE SDE needs sigma > 1, got {sigma}")
        self.sigma = float(sigma)
        self._log_sigma = math.log(self.sigma)

    def diffusion(self, t) -> torch.Tensor:
        """g(t) = sigma^t."""
        return self.sigma ** _as_tensor(t)

    def marginal_std(self, t) -> torch.Tensor:
        """sigma(t), the standard deviation of the perturbation kernel."""
        t = _as_tensor(t)
        return torch.sqrt((self.sigma ** (2.0 * t) - 1.0) / (2.0 * self._log_sigma))

    def time_for_std(self, std) -> torch.Tensor:
        """Inverse of :meth:`marginal_std`: the time t at which sigma(t) = ``std``."""
        std = _as_tensor(std)
        return torch.log1p(2.0 * self._log_sigma * std * std) / (2.0 * self._log_sigma)

    def prior_std(self) -> float:
        """sigma(1)."""
        return float(self.marginal_std(1.0))

    def config(self):
        return {"name": self.name, "sigma": self.sigma}

    def __repr__(self) -> str:
        return f"VESDE(sigma={self.sigma:g})"


def make_sde(name: str = "ve", **params) -> VESDE:
    """Build a registered SDE by name (``make_sde(**sde.config())`` round-trips)."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; known: {sorted(SDES)}")
    return SDES[name](**params)
