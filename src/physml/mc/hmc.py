"""Hybrid Monte Carlo batched over independent Markov chains.

One call evolves ``n_chains`` chains at once as a single torch tensor of shape
``(n_chains, *site_shape)``.  The theory is a :class:`physml.lattice.theory.Theory`;
if it has a symmetry move (:class:`~physml.lattice.theory.HasSymmetryFlip`), the move is
applied with probability 1/2 per chain after every trajectory.

Conventions: unit-mass momenta p ~ N(0, 1), H = p^2 / 2 + S(x), leapfrog with
``n_steps`` steps of size ``step_size`` (trajectory length n_steps * step_size),
Metropolis accept with probability min(1, exp(-Delta H)) chain by chain.

Random numbers: one ``torch.Generator`` serves all chains (momenta of every chain, then one
uniform per chain for the accept test, the symmetry and flux moves' draws), so an ensemble is
reproducible given the seed, ``n_chains`` and the device, and chain i's trajectory depends on
the number of chains beside it.  ``n_chains`` is a setting of the ensemble (it also sets the
chains' lengths), not a batch size; per-chain generators would cost one draw per chain and
step for no gain there.

A theory with a C-kernel trajectory (:class:`~physml.lattice.theory.HasFusedTrajectory`,
phi^4) can run the whole trajectory in the kernel (:mod:`physml.native`): ``engine``
``auto`` does so for float64 CPU fields where the kernel compiles, ``native`` demands it,
``reference`` keeps the torch code.

``flux_moves`` = N > 0 (U(1) only: :class:`~physml.lattice.theory.HasFluxShift`) applies N global
flux moves (:mod:`physml.mc.flux`) after every trajectory, each an exact Metropolis
step of its own; with N = 0 (the default) nothing changes, not even the random stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from physml import native
from physml.lattice.theory import HasFluxShift, HasFusedTrajectory, HasSymmetryFlip, Theory
from physml.mc.flux import flux_move
from physml.progress import progress


@dataclass
class HMCResult:
    """Measured configurations and per-trajectory diagnostics.

    ``samples``: ``(n_meas, n_chains, *site_shape)``; ``action``: ``(n_meas, n_chains)``;
    ``trajectory``: index (from 1, thermalisation included) of each measurement;
    ``accepted`` and ``delta_h``: ``(n_traj, n_chains)`` for every trajectory run;
    ``flux_accepted``: accepted flux moves after each trajectory, ``(n_traj, n_chains)``
    (None without flux moves).
    """

    samples: torch.Tensor
    action: torch.Tensor
    trajectory: torch.Tensor
    accepted: torch.Tensor
    delta_h: torch.Tensor
    engine: str = "reference"  # "native": leapfrog in the C kernel; "reference": torch
    flux_accepted: torch.Tensor | None = None


def leapfrog(theory: Theory, x: torch.Tensor, p: torch.Tensor, step_size: float, n_steps: int):
    """Integrate Hamilton's equations with the kick-drift-kick leapfrog; returns (x, p)."""
    p = p + 0.5 * step_size * theory.force(x)
    x = x.clone()
    for i in range(n_steps):
        x = theory.project(x.add_(p, alpha=step_size))
        p.add_(theory.force(x), alpha=step_size if i < n_steps - 1 else 0.5 * step_size)
    return x, p


def select_trajectory(theory: Theory, x: torch.Tensor, engine: str):
    """The theory's C-kernel trajectory if ``engine`` selects it for fields like ``x``, else None."""
    native.check_engine(engine)
    if not (isinstance(theory, HasFusedTrajectory) and x.device.type == "cpu" and x.dtype == torch.float64):
        if engine == "native":
            raise ValueError(f"engine 'native' needs a theory with a C leapfrog (phi^4) and float64 "
                             f"CPU fields; got {type(theory).__name__}, {x.dtype} on {x.device}")
        return None
    return theory.fused_trajectory if native.use_native(theory.kernel, engine) else None


def hmc_step(theory: Theory, x: torch.Tensor, step_size: float, n_steps: int,
             generator: torch.Generator, action: torch.Tensor | None = None, trajectory=None):
    """One HMC trajectory per chain; returns (new x, its action, accepted mask, Delta H).

    ``action`` is S(x) if already known (it is carried from one trajectory to the next).
    ``trajectory(x, p, step_size, n_steps)``, if given, replaces :func:`leapfrog` and the
    energy bookkeeping: it returns (x at the end, S there, change of p^2/2).
    """
    # Momenta drawn in float32 (several times faster than float64 on CPU) and then
    # used exactly as drawn: H is evaluated on these values, so the chain stays exact.
    p = torch.randn(x.shape, generator=generator, dtype=torch.float32, device=x.device).to(x.dtype)
    s0 = theory.action(x) if action is None else action
    if trajectory is None:
        reduce_dims = tuple(range(1, x.dim()))
        x_new, p_new = leapfrog(theory, x, p, step_size, n_steps)
        s1 = theory.action(x_new)
        d_kinetic = 0.5 * ((p_new * p_new).sum(reduce_dims) - (p * p).sum(reduce_dims))
    else:
        x_new, s1, d_kinetic = trajectory(x, p, step_size, n_steps)
    delta_h = d_kinetic + s1 - s0
    u = torch.rand(delta_h.shape, generator=generator, dtype=x.dtype, device=x.device)
    accept = u < torch.exp(-delta_h)
    reject = ~accept
    x_new[reject] = x[reject]  # x_new is a fresh tensor: restore only the rejected chains
    return x_new, torch.where(accept, s1, s0), accept, delta_h


def sample_hmc(theory: Theory, x0: torch.Tensor, *, n_meas: int, step_size: float, n_steps: int,
               generator: torch.Generator, n_therm: int = 0, meas_interval: int = 1,
               therm_step_size: float | None = None, symmetry_moves: bool = True,
               show_progress: bool = True, desc: str = "hmc", engine: str = "auto",
               flux_moves: int = 0) -> HMCResult:
    """Run ``n_therm`` thermalisation trajectories (step ``therm_step_size``, default
    ``step_size``), then ``n_meas * meas_interval`` more, keeping every
    ``meas_interval``-th configuration.  ``engine`` and ``flux_moves``: see the module
    docstring."""
    for name, value in (("n_meas", n_meas), ("n_steps", n_steps), ("meas_interval", meas_interval)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if n_therm < 0 or step_size <= 0:
        raise ValueError(f"need n_therm >= 0 and step_size > 0, got {n_therm}, {step_size}")
    flip = symmetry_moves and isinstance(theory, HasSymmetryFlip)
    trajectory = select_trajectory(theory, x0, engine)
    if flux_moves < 0 or (flux_moves and not isinstance(theory, HasFluxShift)):
        raise ValueError(f"flux_moves must be >= 0 and needs a U(1) theory; got {flux_moves} "
                         f"for {type(theory).__name__}")
    n_traj = n_therm + n_meas * meas_interval
    x = theory.project(x0.clone())
    action = theory.action(x)
    # preallocated: stacking hundreds of stored fields at the end cost more than the sampling
    samples = torch.empty((n_meas, *x.shape), dtype=x.dtype, device=x.device)
    actions = torch.empty((n_meas, x.shape[0]), dtype=action.dtype, device=x.device)
    accepted = torch.empty((n_traj, x.shape[0]), dtype=torch.bool, device=x.device)
    delta_h = torch.empty((n_traj, x.shape[0]), dtype=x.dtype, device=x.device)
    flux = theory.flux_shift(x) if flux_moves else None
    flux_accepted = torch.zeros((n_traj, x.shape[0]), dtype=torch.int64, device=x.device) if flux_moves else None
    for t in progress(range(1, n_traj + 1), desc=desc, enabled=show_progress):
        eps = therm_step_size if (t <= n_therm and therm_step_size) else step_size
        x, action, accepted[t - 1], delta_h[t - 1] = hmc_step(theory, x, eps, n_steps, generator,
                                                              action, trajectory)
        if flip:
            mask = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
            x = theory.symmetry_flip(x, mask)
        for _ in range(flux_moves):
            x, action, acc = flux_move(theory, x, action, flux, generator)
            flux_accepted[t - 1] += acc
        if t > n_therm and (t - n_therm) % meas_interval == 0:
            m = (t - n_therm) // meas_interval - 1
            samples[m] = x
            actions[m] = action
    traj_index = n_therm + meas_interval * torch.arange(1, n_meas + 1)
    return HMCResult(samples, actions, traj_index, accepted, delta_h,
                     "reference" if trajectory is None else "native", flux_accepted)
