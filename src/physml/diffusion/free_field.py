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

import copy
import math

import torch
from torch import nn

from physml.lattice.phi4 import free_propagator, momentum_propagator


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


def score_errors(model, phi: torch.Tensor, kappa: float, n_levels: int = 9, seed: int = 1
                 ) -> list[tuple[float, float, float]]:
    """A trained model against the exact free-field score on held-out configurations
    ``phi`` (physical units) noised at ``n_levels`` noise levels geometric from the model's
    sigma_min to sigma_max: (sigma, RMS error of sigma s over components, error of sigma s
    along the unit zero mode, i.e. the restoring force on phibar), in noise units: the
    error of the denoised estimate in units of the noise, which is what decides a step."""
    model = copy.deepcopy(model).double()   # the caller's model keeps its dtype
    exact = FreeFieldScore(kappa, scale=model.scale, sigma_min=model.sigma_min, sigma_max=model.sigma_max)
    x0 = phi.double() / model.scale
    root_volume = (x0.shape[-1] * x0.shape[-2]) ** 0.5
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for sigma in torch.logspace(torch.log10(torch.tensor(model.sigma_min)),
                                    torch.log10(torch.tensor(model.sigma_max)), n_levels).tolist():
            x = x0 + sigma * torch.randn(x0.shape, generator=gen, dtype=torch.float64)
            ds = sigma * (model(x, sigma) - exact(x, sigma))
            out.append((sigma, float(ds.square().mean().sqrt()),
                        float(ds.mean((-2, -1)).square().mean().sqrt() * root_volume)))
    return out


def propagator_pulls(sample: torch.Tensor, kappa: float) -> torch.Tensor:
    """(<|phi~(p)|^2>/V of ``sample`` - exact) / error at every momentum, shape ``(L, L)``
    (p = 0 is chi_2); the sample's statistical error (configurations taken as independent)."""
    prop = momentum_propagator(sample.double())
    return (prop.mean(0) - free_propagator(kappa, sample.shape[-1])) / (prop.std(0) / len(prop) ** 0.5)


def family_threshold(L: int, p_value: float = 0.0027) -> float:
    """|pull| that all independent momenta of an L x L power spectrum stay below together
    with probability 1 - ``p_value`` (0.0027: the two-sided 3 sigma of one Gaussian), for
    pulls of independent N(0, 1): |phi~(p)|^2 = |phi~(-p)|^2, so V / 2 + 2 of the V momenta
    are independent (Sidak's correction)."""
    from scipy.stats import norm

    n = L * L // 2 + 2
    return float(norm.isf(-math.expm1(math.log1p(-p_value) / n) / 2))


def lowest_momenta(pull: torch.Tensor) -> torch.Tensor:
    """The pulls at the momenta with every |n_mu| <= 1 (p = 0, the lowest non-zero ones and
    their diagonals), the longest modes, where a model's errors near criticality show."""
    return pull[[[0], [1], [-1]], [0, 1, -1]].flatten()
