"""The density of what a sampler generates: log q of every configuration.

**Jacobian route** (deterministic samplers).  The sampler maps a prior draw z to the
generated field x = Phi(z) through its levels and the final denoising step, so

    log q(x) = log p_prior(z) - log |det dPhi/dz|,

the density of the discrete map actually run, whatever the step size (no discretisation
error, no stochastic trace).  :func:`jacobian_walk` runs the sampler's own walk under
forward-mode autodiff (``torch.func.jacfwd``: V tangents per configuration, V the number
of field components), so the whole V x V Jacobian of Phi comes with the sample, also
for multistep solvers whose steps depend on earlier states; its log-determinant is taken
by ``slogdet`` in float64.  Cost: about V network passes per score evaluation.  The
Jacobian is that of the arithmetic in the model's dtype; the sample returned is the
primal output of the same computation.  A map that moves only the span of an
orthonormal basis U (dim x k) and is the identity on its complement (the gauge-covariant
U(1) model: every update is B^T of something, and the score reads only the plaquettes,
so gauge directions and holonomies pass through untouched) has the block form
J = [[U^T J U, 0], [0, 1]], so log |det J| = log |det U^T J U| from k tangents instead
of V (:meth:`physml.diffusion.model.ScoreModel.moved_subspace`: k = L^2 - 1 of the
2 L^2 link angles).

**Path route** (samplers with Gaussian reverse transitions, ``em``).  No Jacobian: the
sampler's reverse chain x_N ~ prior, x_k ~ R_k(. | x_{k+1}), and the final draw
x_0 ~ N(D(x_1), sigma_min^2), weighed against the forward noising kernels
F_k(x_{k+1} | x_k) = N(x_k, sigma_{k+1}^2 - sigma_k^2) (:meth:`Walk.add_path_term`),
gives the extended-space weight of annealed importance sampling,

    log w = -S(x_0) + sum_k log F_k - log p_prior(x_N) - sum_k log R_k,

whose x_0-marginal estimates are exact.  The role of log q is then played by
log p_prior(x_N) + sum_k (log R_k - log F_k): an unbiased weight, not a density.
O(1) network passes per step, but var(log w) grows with the number of steps and with V.

**Prior.**  Scalar fields: N(0, sigma_max^2 I + v 1 1^T) in normalised units, v = mu^2 + w^2
the zero-mode law's variance (:func:`physml.diffusion.samplers.prior`).  Periodic fields:
the wrapped normal of width sigma_max on each link angle, summed over images.

Units: log q is returned in physical units (phi = scale x: log q(phi) = log q(x) - V ln
scale), so that log w = -S(phi) - log q(phi) with the measure prod_x dphi_x.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch.func import jacfwd, jvp, vmap

TANGENTS_PER_CALL = 256   # configurations x tangents per vmapped Jacobian call


def jacobian_batch(site_shape: Sequence[int]) -> int:
    """Configurations per Jacobian call: about :data:`TANGENTS_PER_CALL` tangents in all."""
    return max(1, TANGENTS_PER_CALL // math.prod(site_shape))


def jacobian_walk(walk: Callable[[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]],
                  z: torch.Tensor, basis: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Run ``walk`` (a batch of prior draws -> (generated fields, list of snapshot fields))
    on every configuration of ``z`` ``(m, *site)`` under forward-mode autodiff.  Returns the
    fields, the snapshots, log |det dPhi/dz| per configuration (float64; NaN where the
    determinant is zero or not finite) and the determinant's sign.  |det| is the density's
    factor for a map that is one to one; a sign that differs between samples shows a map
    that folds, where no change of variables holds (the caller flags it).  ``basis``
    ``(dim, k)``: the orthonormal basis of the only directions the map moves (module
    docstring); the Jacobian is then taken along its k columns."""
    def one(z1):
        x1, kept = walk(z1[None])
        return x1[0], (x1[0], [k[0] for k in kept])

    dim = math.prod(z.shape[1:])
    if basis is None:
        jac, (x, kept) = vmap(jacfwd(one, has_aux=True))(z)
        jac = jac.reshape(z.shape[0], dim, dim).double()
    else:
        u = basis.to(z)
        tangents = u.T.reshape(u.shape[1], *z.shape[1:])

        def along(z1):
            _, ju, (x1, kept1) = vmap(lambda v: jvp(one, (z1,), (v,), has_aux=True))(tangents)
            return ju, (x1[0], [k[0] for k in kept1])

        ju, (x, kept) = vmap(along)(z)                               # (m, k, *site)
        jac = u.T.double() @ ju.reshape(z.shape[0], -1, dim).double().transpose(1, 2)   # U^T J U
    sign, log_det = torch.linalg.slogdet(jac)
    log_det = torch.where((sign != 0) & torch.isfinite(log_det), log_det, torch.full_like(log_det, math.nan))
    return x, kept, log_det, sign


def wrapped_normal_log_density(theta: torch.Tensor, sigma: float) -> torch.Tensor:
    """log of the wrapped normal density of width ``sigma`` on (-pi, pi], elementwise,
    float64: -ln(2 pi) + ln(1 + 2 sum_{n >= 1} exp(-n^2 sigma^2 / 2) cos(n theta)), the
    sum taken until its terms are below 1e-17 (one term for sigma > 9)."""
    theta = theta.double()
    series = torch.ones_like(theta)
    n = 1
    while n == 1 or math.exp(-n * n * sigma * sigma / 2) > 1e-17:
        series = series + 2 * math.exp(-n * n * sigma * sigma / 2) * torch.cos(n * theta)
        n += 1
    return torch.log(series) - math.log(2 * math.pi)


def prior_log_density(model, z: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """log p_prior(z) per configuration in normalised units (module docstring), float64."""
    z = z.double()
    if model.periodic:
        return wrapped_normal_log_density(z, sigma_max).flatten(1).sum(1)
    dim = math.prod(z.shape[1:])
    mu, w2 = model.zero_mode_law(z.shape[-1] * z.shape[-2])
    v, s2 = mu * mu + w2, sigma_max * sigma_max
    total = z.flatten(1).sum(1)
    quad = z.flatten(1).square().sum(1) / s2 - v * total.square() / (s2 * (s2 + dim * v))
    log_det = dim * math.log(2 * math.pi * s2) + math.log1p(dim * v / s2)
    return -0.5 * (quad + log_det)
