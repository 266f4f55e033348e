"""Forward SDEs of score-based diffusion models (PHYSICS.md section 3).

An SDE here is a small object in the style of score_sde (Song et al.,
arXiv:2011.13456): ``sde(x, t)`` gives the forward drift f(x, t) and diffusion
g(t) of dx = f dt + g dW on t in [0, T]; ``marginal_prob(x0, t)`` gives the
mean and standard deviation of the Gaussian perturbation kernel p_t(x | x0);
``prior_sampling`` draws from the distribution at t = T; ``reverse_drift``
turns a score into the drift of the backward SDE and ``ode_drift`` into that of
the probability-flow ODE.  Samplers only use these methods, so another SDE
(e.g. variance preserving) fits beside :class:`VESDE` by subclassing
:class:`SDE` and registering it in :data:`SDES`.

Conventions: time ``t`` is a tensor of shape ``(batch,)`` (or a float),
fields are ``(batch, ...)``; all quantities are in the model's normalised
units (see :mod:`physml.diffusion.training`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-configuration tensor ``(batch,)`` to broadcast against ``x``."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def _as_tensor(t, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t
    kw = {} if like is None else {"dtype": like.dtype, "device": like.device}
    return torch.as_tensor(t, **kw)


class SDE(ABC):
    """Forward SDE dx = f(x, t) dt + g(t) dW on [0, T]."""

    name: str = "sde"
    T: float = 1.0

    @abstractmethod
    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(drift f(x, t) shaped like ``x``, diffusion g(t) shaped ``(batch,)``)."""

    @abstractmethod
    def marginal_prob(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean shaped like ``x0``, std shaped ``(batch,)``) of p_t(x | x0)."""

    @abstractmethod
    def prior_sampling(self, shape, generator: torch.Generator, dtype=torch.float32,
                       device="cpu") -> torch.Tensor:
        """Samples of the prior p_T, shape ``shape``."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Plain-JSON parameters; ``make_sde(**sde.config())`` rebuilds the SDE."""

    @abstractmethod
    def time_for_std(self, std) -> torch.Tensor:
        """Inverse of :meth:`marginal_std`: the time t at which sigma(t) = ``std``."""

    def marginal_std(self, t) -> torch.Tensor:
        """Standard deviation sigma(t) of the perturbation kernel."""
        t = _as_tensor(t)
        return self.marginal_prob(torch.zeros_like(t), t)[1]

    def perturb(self, x0: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x_t = mean(x0, t) + sigma(t) z."""
        mean, std = self.marginal_prob(x0, t)
        return mean + _bcast(std, x0) * z

    def reverse_drift(self, x: torch.Tensor, t: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """Drift of the backward SDE in forward time: f - g^2 score (integrated with dt < 0)."""
        f, g = self.sde(x, t)
        return f - _bcast(g * g, x) * score

    def ode_drift(self, x: torch.Tensor, t: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """Drift of the probability-flow ODE: f - g^2 score / 2."""
        f, g = self.sde(x, t)
        return f - 0.5 * _bcast(g * g, x) * score


class VESDE(SDE):
    """Variance-exploding SDE dx = sigma^t dW (f = 0, g(t) = sigma^t).

    The perturbation kernel is N(x0, sigma(t)^2) with
    sigma(t)^2 = int_0^t sigma^(2s) ds = (sigma^(2t) - 1) / (2 ln sigma),
    and the prior is N(0, sigma(1)^2) (for sigma = 25, sigma(1) = 9.84).
    """

    name = "ve"

    def __init__(self, sigma: float = 25.0):
        if sigma <= 1.0:
            raise ValueError(f"VE SDE needs sigma > 1, got {sigma}")
        self.sigma = float(sigma)
        self._log_sigma = math.log(self.sigma)

    def diffusion(self, t) -> torch.Tensor:
        """g(t) = sigma^t."""
        return self.sigma ** _as_tensor(t)

    def sde(self, x, t):
        t = _as_tensor(t, x)
        return torch.zeros_like(x), self.diffusion(t)

    def marginal_prob(self, x0, t):
        t = _as_tensor(t, x0)
        std = torch.sqrt((self.sigma ** (2.0 * t) - 1.0) / (2.0 * self._log_sigma))
        return x0, std

    def time_for_std(self, std):
        std = _as_tensor(std)
        return torch.log1p(2.0 * self._log_sigma * std * std) / (2.0 * self._log_sigma)

    def prior_std(self) -> float:
        return math.sqrt((self.sigma ** (2.0 * self.T) - 1.0) / (2.0 * self._log_sigma))

    def prior_sampling(self, shape, generator, dtype=torch.float32, device="cpu"):
        return self.prior_std() * torch.randn(shape, generator=generator, dtype=dtype, device=device)

    def config(self):
        return {"name": self.name, "sigma": self.sigma}

    def __repr__(self) -> str:
        return f"VESDE(sigma={self.sigma:g})"


SDES: dict[str, type[SDE]] = {"ve": VESDE}


def make_sde(name: str = "ve", **params) -> SDE:
    """Build a registered SDE by name (``make_sde(**sde.config())`` round-trips)."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; known: {sorted(SDES)}")
    return SDES[name](**params)
