"""Hybrid Monte Carlo batched over independent Markov chains.

One call evolves ``n_chains`` chains at once as a single torch tensor of shape
``(n_chains, *site_shape)``.  The theory object supplies ``action(x)`` (shape
``(n_chains,)``), ``force(x) = -dS/dx`` and ``project(x)`` (e.g. wrapping link
angles into [-pi, pi)); if it has ``symmetry_flip(x, mask)``, an exact global
symmetry move (one that leaves S unchanged) is applied with probability 1/2 per
chain after every trajectory.

Conventions: unit-mass momenta p ~ N(0, 1), H = p^2 / 2 + S(x), leapfrog with
``n_steps`` steps of size ``step_size`` (trajectory length n_steps * step_size),
Metropolis accept with probability min(1, exp(-Delta H)) chain by chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from physml.progress import progress


@dataclass
class HMCResult:
    """Measured configurations and per-trajectory diagnostics.

    ``samples``: ``(n_meas, n_chains, *site_shape)``; ``action``: ``(n_meas, n_chains)``;
    ``trajectory``: index (from 1, thermalisation included) of each measurement;
    ``accepted`` and ``delta_h``: ``(n_traj, n_chains)`` for every trajectory run.
    """

    samples: torch.Tensor
    action: torch.Tensor
    trajectory: torch.Tensor
    accepted: torch.Tensor
    delta_h: torch.Tensor


def leapfrog(theory, x: torch.Tensor, p: torch.Tensor, step_size: float, n_steps: int):
    """Integrate Hamilton's equations with the kick-drift-kick leapfrog; returns (x, p)."""
    p = p + 0.5 * step_size * theory.force(x)
    x = x.clone()
    for i in range(n_steps):
        x = theory.project(x.add_(p, alpha=step_size))
        p.add_(theory.force(x), alpha=step_size if i < n_steps - 1 else 0.5 * step_size)
    return x, p


def hmc_step(theory, x: torch.Tensor, step_size: float, n_steps: int,
             generator: torch.Generator, action: torch.Tensor | None = None):
    """One HMC trajectory per chain; returns (new x, its action, accepted mask, Delta H).

    ``action`` is S(x) if already known (it is carried from one trajectory to the next).
    """
    # Momenta drawn in float32 (several times faster than float64 on CPU) and then
    # used exactly as drawn: H is evaluated on these values, so the chain stays exact.
    p = torch.randn(x.shape, generator=generator, dtype=torch.float32, device=x.device).to(x.dtype)
    reduce_dims = tuple(range(1, x.dim()))
    s0 = theory.action(x) if action is None else action
    x_new, p_new = leapfrog(theory, x, p, step_size, n_steps)
    s1 = theory.action(x_new)
    delta_h = 0.5 * ((p_new * p_new).sum(reduce_dims) - (p * p).sum(reduce_dims)) + s1 - s0
    u = torch.rand(delta_h.shape, generator=generator, dtype=x.dtype, device=x.device)
    accept = u < torch.exp(-delta_h)
    mask = accept.view(-1, *([1] * (x.dim() - 1)))
    return torch.where(mask, x_new, x), torch.where(accept, s1, s0), accept, delta_h


def sample_hmc(theory, x0: torch.Tensor, *, n_meas: int, step_size: float, n_steps: int,
               generator: torch.Generator, n_therm: int = 0, meas_interval: int = 1,
               therm_step_size: float | None = None, symmetry_moves: bool = True,
               show_progress: bool = True, desc: str = "hmc") -> HMCResult:
    """Run ``n_therm`` thermalisation trajectories (step ``therm_step_size``, default
    ``step_size``), then ``n_meas * meas_interval`` more, keeping every
    ``meas_interval``-th configuration."""
    for name, value in (("n_meas", n_meas), ("n_steps", n_steps), ("meas_interval", meas_interval)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if n_therm < 0 or step_size <= 0:
        raise ValueError(f"need n_therm >= 0 and step_size > 0, got {n_therm}, {step_size}")
    flip = symmetry_moves and hasattr(theory, "symmetry_flip")
    n_traj = n_therm + n_meas * meas_interval
    x = theory.project(x0.clone())
    action = theory.action(x)
    samples, actions, traj_index, accepted, delta_h = [], [], [], [], []
    for t in progress(range(1, n_traj + 1), desc=desc, enabled=show_progress):
        eps = therm_step_size if (t <= n_therm and therm_step_size) else step_size
        x, action, acc, dh = hmc_step(theory, x, eps, n_steps, generator, action)
        if flip:
            mask = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
            x = theory.symmetry_flip(x, mask)
        accepted.append(acc)
        delta_h.append(dh)
        if t > n_therm and (t - n_therm) % meas_interval == 0:
            samples.append(x.clone())
            actions.append(action.clone())
            traj_index.append(t)
    return HMCResult(torch.stack(samples), torch.stack(actions), torch.tensor(traj_index),
                     torch.stack(accepted), torch.stack(delta_h))
