"""The exact score of the free field: a score model with no network, the ground truth of
the samplers and of trained models.

At lambda = 0 the phi^4 action is Gaussian, phi ~ N(0, C) with C diagonal in momentum
space, C(p) = 1 / (2 (1 - 2 kappa sum_mu cos p_mu)) = <|phi~(p)|^2> / V
(:func:`physml.lattice.phi4.free_propagator`).  Noised with variance sigma^2 per site
(normalised units, x = phi / scale) it stays Gaussian, with covariance
C / scale^2 + sigma^2, so its score at every noise level is, mode by mode,

    s(x; sigma)~(p) = -x~(p) / (C(p) / scale^2 + sigma^2).

:class:`FreeFieldScore` has the interface the samplers use (``model(x, sigma, beta)``,
``wrap``, ``denormalise``, ``zero_mode_law``, ``sigma_min``/``sigma_max``, parameters for device and
dtype), on any L.
"""

from __future__ import annotations

import torch
from torch import nn

from physml.lattice.phi4 import free_propagator


class FreeFieldScore(nn.Module):
    """Exact score of the free field at hopping parameter ``kappa`` (module docstring)."""

    periodic = False

    def __init__(self, kappa: float, scale: float = 1.0, sigma_min: float = 2e-3,
                 sigma_max: float = 80.0):
        super().__init__()
        free_propagator(kappa, 2)        # validates kappa
        self.kappa, self.scale = float(kappa), float(scale)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self._dtype_probe = nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False)

    def covariance(self, L: int) -> torch.Tensor:
        """C(p) / scale^2 on an L x L lattice, shape ``(L, L)``."""
        return free_propagator(self.kappa, L) / self.scale ** 2

    def forward(self, x: torch.Tensor, sigma, beta: float | None = None) -> torch.Tensor:
        if beta is not None:
            raise ValueError("the free-field score takes no beta")
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1, 1, 1)
        var = self.covariance(x.shape[-1]).to(x.device) + sigma ** 2
        return torch.fft.ifft2(-torch.fft.fft2(x.double()) / var).real.to(x.dtype)

    def zero_mode_law(self, volume: int) -> tuple[float, float]:
        """No separate zero-mode prior: the plain N(0, sigma_max^2) (mu = 0, w^2 = 0)."""
        return 0.0, 0.0

    def wrap(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale
