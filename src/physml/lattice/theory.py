"""What the samplers require of a lattice theory, as :class:`typing.Protocol` classes.

Fields are torch tensors shaped ``(batch, *site_shape)``, every method batched over the
first axis (:class:`physml.lattice.phi4.Phi4`, :class:`physml.lattice.u1.U1`).

- :class:`Theory`: what HMC (:mod:`physml.mc.hmc`), MALA (:mod:`physml.mc.mala`), the
  flux move and SMC use: ``action(x)`` (S per configuration, shape ``(batch,)``),
  ``force(x) = -dS/dx`` (shape of ``x``), ``project(x)`` (maps a field, or a
  displacement, back to its fundamental domain: identity for phi^4, wrap into
  [-pi, pi) for U(1) link angles) and ``name`` (``phi4``, ``u1``).
- :class:`LatticeTheory`: a :class:`Theory` that also makes starts and names its
  artifact's field (:func:`physml.mc.ensembles.hmc_ensemble`).
- Optional capabilities, each found with ``isinstance``: :class:`HasSymmetryFlip` (an
  exact global symmetry move), :class:`HasFusedTrajectory` (a C-kernel leapfrog),
  :class:`HasFluxShift` (the U(1) flux move).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Theory(Protocol):
    """An action on batched fields (module docstring)."""

    name: str

    def action(self, x: torch.Tensor) -> torch.Tensor:
        """S per configuration, shape ``(batch,)``."""

    def force(self, x: torch.Tensor) -> torch.Tensor:
        """-dS/dx, shape of ``x``."""

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` mapped back to the fundamental domain of the field."""


@runtime_checkable
class LatticeTheory(Theory, Protocol):
    """A :class:`Theory` whose ensembles are written as artifacts: the field's variable
    name, its site dimensions, and hot and cold starts of ``n`` fields on an L x L lattice."""

    field_name: str
    site_dims: tuple[str, ...]

    def random_start(self, n: int, L: int, generator: torch.Generator, dtype=torch.float64,
                     device="cpu") -> torch.Tensor: ...

    def cold_start(self, n: int, L: int, dtype=torch.float64, device="cpu") -> torch.Tensor: ...


@runtime_checkable
class HasSymmetryFlip(Protocol):
    """An exact global symmetry (S unchanged), applied where ``flip`` is True (phi -> -phi)."""

    def symmetry_flip(self, x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class HasFusedTrajectory(Protocol):
    """A whole leapfrog trajectory in the C kernel ``kernel`` (:mod:`physml.native`):
    returns (x at the end, its action, the change of p^2/2)."""

    kernel: str

    def fused_trajectory(self, x: torch.Tensor, p: torch.Tensor, step_size: float,
                         n_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class HasFluxShift(Protocol):
    """The shift F of the global flux move for fields shaped like ``x`` (U(1))."""

    def flux_shift(self, x: torch.Tensor) -> torch.Tensor: ...
