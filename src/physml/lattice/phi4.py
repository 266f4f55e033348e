"""Scalar phi^4 theory on a periodic 2D lattice, hopping-parameter form.

    S[phi] = sum_x [ -2 kappa sum_{mu=1,2} phi_x phi_{x+mu}
                     + (1 - 2 lambda) phi_x^2 + lambda phi_x^4 ]

Fields are torch tensors shaped ``(batch, L, L)``: axis 1 is ``x``, axis 2 is
``y``; every function is batched over the first axis.  The force is the drift
of stochastic quantisation, ``-dS/dphi``.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch

from physml import native

LEAPFROG_KERNEL = "phi4_leapfrog"
_LEAPFROG_ARGTYPES = ((ctypes.c_void_p,) * 2 + (ctypes.c_long,) * 3 + (ctypes.c_double,) * 3
                      + (ctypes.c_long,) + (ctypes.c_void_p,) * 3)


def neighbour_sum(phi: torch.Tensor) -> torch.Tensor:
    """sum over +-mu of phi_{x+-mu} on the periodic lattice (last two axes)."""
    out = torch.roll(phi, 1, -2).add_(torch.roll(phi, -1, -2))
    return out.add_(torch.roll(phi, 1, -1)).add_(torch.roll(phi, -1, -1))


@dataclass(frozen=True)
class Phi4:
    """phi^4 action with hopping parameter ``kappa`` and quartic coupling ``lam``."""

    kappa: float
    lam: float
    name: str = "phi4"

    def __post_init__(self):
        if not (self.kappa >= 0 and self.lam >= 0):   # also refuses NaN
            raise ValueError(f"need kappa >= 0 and lam >= 0, got kappa={self.kappa}, lam={self.lam}")

    def action_density(self, phi: torch.Tensor) -> torch.Tensor:
        """Per-site action s_x (its sum over sites is S), shape of ``phi``."""
        phi2 = phi * phi
        density = phi2 * (self.lam * phi2 + (1.0 - 2.0 * self.lam))
        hop = torch.roll(phi, -1, -2).add_(torch.roll(phi, -1, -1)).mul_(phi)
        return density.add_(hop, alpha=-2.0 * self.kappa)

    def action(self, phi: torch.Tensor) -> torch.Tensor:
        """S[phi] per configuration, shape ``(batch,)``."""
        return self.action_density(phi).flatten(-2).sum(-1)

    def force(self, phi: torch.Tensor) -> torch.Tensor:
        """-dS/dphi_x = 2 kappa sum_{+-mu} phi_{x+-mu} + 2 phi_x (2 lambda (1 - phi_x^2) - 1)."""
        local = (phi * phi).mul_(-4.0 * self.lam).add_(4.0 * self.lam - 2.0).mul_(phi)
        return local.add_(neighbour_sum(phi), alpha=2.0 * self.kappa)

    def fused_trajectory(self, x: torch.Tensor, p: torch.Tensor, step_size: float, n_steps: int):
        """:func:`physml.mc.hmc.leapfrog` in one call of the C kernel ``kernels/phi4_leapfrog.c``
        (same arithmetic, one configuration at a time so that it stays in cache), float64
        CPU tensors only.  Returns new tensors (x at the end, its action S(x), the change
        of p^2/2); x is left unchanged, p is used as scratch (overwritten if contiguous)."""
        if x.dtype != torch.float64 or x.device.type != "cpu" or p.shape != x.shape or x.dim() != 3:
            raise ValueError(f"fused_trajectory needs float64 CPU fields (n, L, L), got {x.dtype} "
                             f"{tuple(x.shape)} on {x.device}")
        if p.dtype != torch.float64:
            raise ValueError(f"fused_trajectory needs float64 momenta, got {p.dtype}")
        x, p = x.contiguous().clone(), p.contiguous()
        n, lx, ly = x.shape
        d_kinetic, action = torch.empty(n, dtype=torch.float64), torch.empty(n, dtype=torch.float64)
        scratch = torch.empty(lx * ly, dtype=torch.float64)
        native.function(LEAPFROG_KERNEL, "phi4_leapfrog", _LEAPFROG_ARGTYPES)(x.data_ptr(), p.data_ptr(), n, lx, ly, self.kappa, self.lam,
                           step_size, n_steps, d_kinetic.data_ptr(), action.data_ptr(),
                           scratch.data_ptr())
        return x, action, d_kinetic

    kernel = LEAPFROG_KERNEL
    site_dims = ("x", "y")
    field_name = "phi"

    def random_start(self, n: int, L: int, generator: torch.Generator, dtype=torch.float64,
                     device="cpu") -> torch.Tensor:
        """Hot start: iid N(0, 1) fields."""
        return torch.randn((n, L, L), generator=generator, dtype=dtype, device=device)

    def mean_field_value(self) -> float:
        """Minimum phi >= 0 of the action of a constant field, sqrt(max(0, (4 kappa - 1 + 2 lambda) / (2 lambda)))
        in d = 2 (0 in the symmetric phase of mean-field theory)."""
        slope = 4.0 * self.kappa - 1.0 + 2.0 * self.lam
        return (max(0.0, slope) / (2.0 * self.lam)) ** 0.5 if self.lam > 0 else 0.0

    def cold_start(self, n: int, L: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """Cold start: the constant field at :meth:`mean_field_value` (a start at phi = 1
        in the broken phase releases so much energy that HMC freezes)."""
        return torch.full((n, L, L), self.mean_field_value(), dtype=dtype, device=device)

    def project(self, phi: torch.Tensor) -> torch.Tensor:
        """Fields live in R: nothing to project."""
        return phi

    def symmetry_flip(self, phi: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Exact global Z2 move phi -> -phi on the configurations where ``flip`` is True."""
        return torch.where(flip.view(-1, *([1] * (phi.dim() - 1))), -phi, phi)


def lattice_momenta_sq(shape, device=None) -> torch.Tensor:
    """p_hat^2 = sum_mu 4 sin^2(p_mu / 2) = sum_mu 2 (1 - cos p_mu) on the momenta
    p_mu = 2 pi n_mu / L_mu of ``torch.fft.fft2`` (n_mu = 0 .. L_mu - 1) for a lattice of
    ``shape`` (L1, L2), float64."""
    k = [2 * torch.pi * torch.arange(n, device=device, dtype=torch.float64) / n for n in shape]
    return (4 * torch.sin(k[0] / 2) ** 2)[:, None] + (4 * torch.sin(k[1] / 2) ** 2)[None, :]


def momentum_propagator(phi: torch.Tensor) -> torch.Tensor:
    """|phi~(p)|^2 / V per configuration, phi~(p) = sum_x e^{-ipx} phi_x; shape ``(n, L, L)``."""
    volume = phi.shape[-1] * phi.shape[-2]
    return torch.fft.fftn(phi, dim=(-2, -1)).abs().square() / volume


def free_propagator(kappa: float, L: int) -> torch.Tensor:
    """Exact <|phi~(p)|^2>/V at lambda = 0 on an L x L lattice, shape ``(L, L)``.

    phi~(p) = sum_x e^{-ipx} phi_x, p_mu = 2 pi n_mu / L; the result is
    1 / (2 (1 - 2 kappa sum_mu cos p_mu)) = 1 / (2 (1 - 4 kappa + kappa p_hat^2)), finite for
    kappa < 1/4.
    """
    if not 0 <= kappa < 0.25:
        raise ValueError(f"free field needs 0 <= kappa < 1/4, got kappa={kappa}")
    return 1.0 / (2.0 * (1.0 - 4.0 * kappa + kappa * lattice_momenta_sq((L, L))))
