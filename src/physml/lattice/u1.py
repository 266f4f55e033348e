"""Compact U(1) gauge theory on a periodic 2D lattice, Wilson action.

Links U_{x,mu} = exp(i theta_{x,mu}) with theta in [-pi, pi).  Fields are torch
tensors shaped ``(batch, 2, L, L)``: axis 1 is the direction ``mu`` (0 along the
``x`` axis = tensor axis 2, 1 along the ``y`` axis = tensor axis 3); every
function is batched over the first axis.

Conventions:

- plaquette angle  theta_P(x) = theta_{x,0} + theta_{x+0,1} - theta_{x+1,0} - theta_{x,1}
  (``x+0`` is one step along mu = 0, ``x+1`` one step along mu = 1), not wrapped;
- Wilson action    S = -beta sum_P cos theta_P;
- gauge transformation theta_{x,mu} -> theta_{x,mu} + alpha_x - alpha_{x+mu};
- geometric charge Q = (1/2 pi) sum_P wrap(theta_P), wrap into (-pi, pi].

The force is -dS/dtheta: theta_{x,0} enters theta_P(x) with + and theta_P(x-1)
with -, theta_{x,1} enters theta_P(x-0) with + and theta_P(x) with -, so

    -dS/dtheta_{x,0} = -beta (sin theta_P(x) - sin theta_P(x - 1)),
    -dS/dtheta_{x,1} = -beta (sin theta_P(x - 0) - sin theta_P(x)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

TWO_PI = 2.0 * math.pi

# tensor axes of the two lattice directions in a (batch, mu, x, y) field
_AXIS = {0: -2, 1: -1}


def wrap_angle(theta: torch.Tensor) -> torch.Tensor:
    """Angles mapped into [-pi, pi) (the link convention)."""
    return torch.remainder(theta + math.pi, TWO_PI) - math.pi


def wrap_plaquette(theta_p: torch.Tensor) -> torch.Tensor:
    """Angles mapped into (-pi, pi] (the convention of the geometric charge)."""
    return math.pi - torch.remainder(math.pi - theta_p, TWO_PI)


def plaquette_angles(theta: torch.Tensor) -> torch.Tensor:
    """Unwrapped plaquette angles theta_P(x), shape ``(batch, L, L)``; their sum over x
    is exactly zero on the torus (every link enters twice with opposite signs)."""
    t0, t1 = theta[..., 0, :, :], theta[..., 1, :, :]
    return t0 + torch.roll(t1, -1, _AXIS[0]) - torch.roll(t0, -1, _AXIS[1]) - t1


def plaquette_transpose(g: torch.Tensor) -> torch.Tensor:
    """B^T g for one number g(x) per plaquette, B the link -> plaquette incidence map
    (theta_P = B theta): the gradient over the links of sum_x g(x) theta_P(x),
    (B^T g)_{x,0} = g(x) - g(x - 1), (B^T g)_{x,1} = g(x - 0) - g(x); shape
    ``(batch, 2, L, L)`` for ``g`` of shape ``(batch, L, L)``."""
    return torch.stack([g - torch.roll(g, 1, _AXIS[1]), torch.roll(g, 1, _AXIS[0]) - g], dim=-3)


def topological_charge_real(theta: torch.Tensor) -> torch.Tensor:
    """(1/2 pi) sum_P wrap(theta_P) before rounding, shape ``(batch,)``; an integer up
    to floating-point rounding on every configuration."""
    return wrap_plaquette(plaquette_angles(theta)).sum(dim=(-2, -1)) / TWO_PI


def topological_charge(theta: torch.Tensor) -> torch.Tensor:
    """Geometric topological charge Q, an integer tensor of shape ``(batch,)``."""
    return torch.round(topological_charge_real(theta)).to(torch.int64)


def wilson_loop_angles(theta: torch.Tensor, R: int, T: int | None = None) -> torch.Tensor:
    """Angle of the R x T Wilson loop (R links along mu = 0, T along mu = 1) at every
    base point, shape ``(batch, L, L)``: the ordered sum of link angles around the loop,
    which equals the sum of the unwrapped plaquette angles it encloses."""
    T = R if T is None else T
    t0, t1 = theta[..., 0, :, :], theta[..., 1, :, :]
    ax0, ax1 = _AXIS[0], _AXIS[1]
    bottom = sum(torch.roll(t0, -i, ax0) for i in range(R))   # x .. x + R along mu = 0
    left = sum(torch.roll(t1, -j, ax1) for j in range(T))     # x .. x + T along mu = 1
    return bottom + torch.roll(left, -R, ax0) - torch.roll(bottom, -T, ax1) - left


def gauge_transform(theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """theta_{x,mu} -> wrap(theta_{x,mu} + alpha_x - alpha_{x+mu}); ``alpha`` is
    ``(batch, L, L)`` (or ``(L, L)``, the same for every configuration)."""
    shifted = torch.stack([torch.roll(alpha, -1, _AXIS[0]), torch.roll(alpha, -1, _AXIS[1])], dim=-3)
    return wrap_angle(theta + alpha.unsqueeze(-3) - shifted)


def random_gauge_transform(theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply an independent uniformly random gauge transformation to every configuration."""
    alpha = (torch.rand((theta.shape[0], *theta.shape[-2:]), generator=generator,
                        dtype=theta.dtype, device=theta.device) * 2 - 1) * math.pi
    return gauge_transform(theta, alpha)


def gauge_augment(ds: xr.Dataset, seed: int, copies: int = 1) -> xr.Dataset:
    """An ensemble whose ``theta`` are random gauge transforms of ``ds``'s (data
    augmentation for the diffusion model): ``copies`` transformed copies of every
    configuration, concatenated along ``config`` (copy-major); per-configuration
    variables are repeated, everything gauge-invariant is unchanged.  Attribute
    ``gauge_augmented`` records the seed and the number of copies."""
    if "theta" not in ds or ds["theta"].dims != ("config", "mu", "x", "y"):
        raise ValueError("U(1) ensemble needs a variable 'theta' with dims (config, mu, x, y)")
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    gen = torch.Generator().manual_seed(seed)
    theta = torch.from_numpy(ds["theta"].values.astype(np.float64))
    per_config = [name for name, v in ds.data_vars.items() if v.dims[:1] == ("config",) and name != "theta"]
    parts = []
    for c in range(copies):
        part = ds[per_config].assign(theta=(("config", "mu", "x", "y"),
                                            random_gauge_transform(theta, gen).numpy()))
        parts.append(part.assign_coords(config=ds["config"].values + c * ds.sizes["config"]))
    out = xr.concat(parts, dim="config") if copies > 1 else parts[0]
    out = out.merge(ds.drop_vars([*per_config, "theta"]).drop_dims("config", errors="ignore"))
    out.attrs = {**ds.attrs, "gauge_augmented": f"seed={seed} copies={copies}"}
    return out


@dataclass(frozen=True)
class U1:
    """Wilson action of compact U(1) with inverse coupling ``beta``."""

    beta: float
    name: str = "u1"

    def __post_init__(self):
        if not self.beta > 0:   # also refuses NaN
            raise ValueError(f"need beta > 0, got beta={self.beta}")

    site_dims = ("mu", "x", "y")
    field_name = "theta"

    def action(self, theta: torch.Tensor) -> torch.Tensor:
        """S = -beta sum_P cos theta_P per configuration, shape ``(batch,)``."""
        return -self.beta * torch.cos(plaquette_angles(theta)).sum(dim=(-2, -1))

    def force(self, theta: torch.Tensor) -> torch.Tensor:
        """-dS/dtheta = -beta B^T sin theta_P, shape of ``theta`` (module docstring)."""
        return -self.beta * plaquette_transpose(torch.sin(plaquette_angles(theta)))

    def project(self, theta: torch.Tensor) -> torch.Tensor:
        """Wrap link angles into [-pi, pi) (applied after every position update)."""
        return wrap_angle(theta)

    def random_start(self, n: int, L: int, generator: torch.Generator, dtype=torch.float64,
                     device="cpu") -> torch.Tensor:
        """Hot start: iid uniform link angles in [-pi, pi)."""
        return (torch.rand((n, 2, L, L), generator=generator, dtype=dtype, device=device) * 2 - 1) * math.pi

    def cold_start(self, n: int, L: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """Cold start: all links 1 (theta = 0), Q = 0."""
        return torch.zeros((n, 2, L, L), dtype=dtype, device=device)

    def flux_shift(self, x: torch.Tensor) -> torch.Tensor:
        """The shift F of the global flux move for fields shaped like ``x`` (:func:`flux_field`)."""
        return flux_field(x.shape, dtype=x.dtype, device=x.device)


def flux_field(shape: tuple[int, ...], dtype=torch.float64, device="cpu") -> torch.Tensor:
    """The constant-field-strength shift F of the global flux move, shaped like a field
    ``(..., 2, L0, L1)`` (leading axes broadcast), V = L0 L1:

        F_{(x0, x1), 1} = 2 pi x0 / V                 on every link along mu = 1,
        F_{(L0-1, x1), 0} = -2 pi x1 / L1             on the links along mu = 0 at x0 = L0 - 1,

    zero elsewhere.  Then theta_P -> theta_P + 2 pi / V for every plaquette P, up to
    a multiple of 2 pi (the plaquette at (L0-1, L1-1) moves by 2 pi / V - 2 pi): the
    field strength is constant, so the unwrapped plaquettes still sum to zero while
    the wrapped ones, and with them the geometric charge Q, move by one unit unless
    a plaquette crosses +-pi on the way.  ``s F`` with s = +1 raises Q by one in that
    case, s = -1 lowers it."""
    L0, L1 = shape[-2], shape[-1]
    volume = L0 * L1
    field = torch.zeros((2, L0, L1), dtype=dtype, device=device)
    field[1] = (TWO_PI / volume) * torch.arange(L0, dtype=dtype, device=device)[:, None]
    field[0, L0 - 1] = -(TWO_PI / L1) * torch.arange(L1, dtype=dtype, device=device)
    return field
