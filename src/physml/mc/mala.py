"""Metropolis-adjusted Langevin (MALA): the exact correction of stochastic quantisation.

Generic over theories (:class:`physml.lattice.theory.Theory`: ``action``, ``force``
and ``project``, batched over the first axis).

Step, target exp(-S), step size h:

    y = project(x + h F(x) + sqrt(2 h) z),   z ~ N(0, 1),   F = -dS/dx,
    log A = -(S(y) - S(x)) - (|d(x, y + h F(y))|^2 - |d(y, x + h F(x))|^2) / (4 h),

accepted with probability min(1, A); ``d(a, b) = project(a - b)`` is the
displacement (the minimal image for angles).  The second term is the proposal
asymmetry log q(x | y) - log q(y | x) of the Gaussian Langevin proposal.  For
periodic fields the proposal density is a wrapped Gaussian; keeping only its
nearest image is exact up to terms of order exp(-pi^2 / (4 h)) (< 1e-20 for
h < 0.1 rad^2), far below any statistical error here.

Random numbers: every step draws the Gaussian z of all chains, then one uniform per chain,
from one ``torch.Generator`` for the whole batch of chains.  A run is therefore reproducible
given the seed, the number of chains and the device, but chain i's numbers depend on how
many chains run beside it.  No sampling batch size enters: ``physml diffusion sample`` and
``physml lattice mala`` run every configuration of the ensemble as one batch of chains (the generated starts
themselves do not depend on the sampler's batch size, :class:`physml.diffusion.samplers.Noise`),
so only a change of the number of configurations (or of device: CUDA's streams differ from
the CPU's) changes every chain.

All arithmetic is in the field's dtype; use float64 (S of a 32 x 32 lattice is
O(10^3) and the accept test needs its differences to O(10^-3)).

Global moves (phi^4, ``shift_moves`` > 0): after every MALA step, that many uniform
shifts phi -> phi + c of the whole field, c ~ N(0, width^2) (a symmetric proposal)
accepted with min(1, exp(-Delta S)) on the exact action, each followed by the Z2 flip
phi -> -phi with probability 1/2 (exact: S is even).  Local Langevin steps move the site
average only by diffusion; a shift moves it directly, at a cost of O(V).

Fourier acceleration (phi^4, ``fourier``): the steps and moves run in u = K^(-1/2) phi
with K diagonal in momentum space (:class:`FourierAccelerated`), which is MALA with the
preconditioner K in phi: drift h K F, noise sqrt(2 h) K^(1/2) z.  Near criticality the
longest modes relax up to 2 (L / pi)^2 times more slowly than the shortest under plain
Langevin steps (critical slowing down); with K ~ 1 / (mu^2 + p_hat^2) all move alike.

Step-size tuning (:func:`tune_step_size`) adapts log h by Robbins-Monro towards
a target acceptance on a **pilot** set of chains that the caller must not
measure afterwards.  The measured chains never adapt (that would break detailed
balance): they replay the pilot's sequence of step sizes, a schedule fixed in
advance, and then keep the tuned h.  Every step is an exact Metropolis kernel of
the target, and chains that start far from equilibrium (a constant field, where
the equilibrium step size is rejected every time) get the small early steps that
the pilot needed from the same kind of start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import xarray as xr

from physml.lattice.theory import Theory
from physml.progress import progress

TARGET_ACCEPTANCE = 0.6   # the optimal MALA acceptance in high dimension is 0.574
SHIFT_TARGET = 0.4        # acceptance the width of the global shift is tuned for


@dataclass
class MALAResult:
    """Final fields, acceptance rate (mean over chains) of every step, accepted steps per
    chain, and the acceptance of the global shifts after every step (empty without)."""

    x: torch.Tensor
    acceptance: torch.Tensor                  # (n_steps,)
    accepted_per_chain: torch.Tensor          # (batch,)
    step_size: float = 0.0                    # the tuned h, used after the schedule
    step_sizes: torch.Tensor = field(default_factory=lambda: torch.zeros(0))   # (n_steps,)
    shift_acceptance: torch.Tensor = field(default_factory=lambda: torch.zeros(0))   # (n_steps,)


@dataclass
class Tuning:
    """What :func:`tune_step_size` found on the pilot chains: the step size h and the
    shift width, the schedules the measured chains replay, the pilot's acceptances."""

    h: float
    acceptance: torch.Tensor
    schedule: list[float]
    width: float = 0.0
    width_schedule: list[float] = field(default_factory=list)
    shift_acceptance: torch.Tensor = field(default_factory=lambda: torch.zeros(0))


class FourierAccelerated:
    """A phi^4 theory in the variables u = K^(-1/2) phi, so that plain MALA (and the global
    moves) in u is Fourier-accelerated MALA in phi (module docstring).

    K is diagonal in momentum space, k(p) = (8 + mu^2) / (mu^2 + p_hat^2) with
    p_hat^2 = 4 sum_mu sin^2(p_mu / 2) and mu^2 = 4 sin^2(pi / L), the lowest non-zero
    momentum's: the shortest modes keep their step, the longest move (8 + mu^2) / mu^2
    times as fast (about 200 at L = 32).  The map is linear with a constant Jacobian, so
    exp(-S(K^(1/2) u)) is the exact target in u; K depends on L alone, not on any data, so
    a generated start and a trivial one get the same moves.  A uniform shift and the Z2 flip
    in u are a uniform shift and the flip in phi."""

    def __init__(self, theory: Theory, L: int):
        _check_fourier(theory, True)
        p = 2 * math.pi * torch.arange(L, dtype=torch.float64) / L
        s2 = 4 * torch.sin(p / 2) ** 2
        p_hat2 = s2[:, None] + s2[None, :]
        mu2 = 4 * math.sin(math.pi / L) ** 2
        self.theory, self.name = theory, theory.name
        self.sqrt_k = ((8 + mu2) / (mu2 + p_hat2)).sqrt()

    def _scale(self, a: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(a) * factor.to(a.device)).real.to(a.dtype)

    def to_u(self, phi: torch.Tensor) -> torch.Tensor:
        return self._scale(phi, 1 / self.sqrt_k)

    def to_field(self, u: torch.Tensor) -> torch.Tensor:
        return self._scale(u, self.sqrt_k)

    def action(self, u: torch.Tensor) -> torch.Tensor:
        return self.theory.action(self.to_field(u))

    def force(self, u: torch.Tensor) -> torch.Tensor:
        """-dS/du = K^(1/2) F(phi) (K is symmetric)."""
        return self._scale(self.theory.force(self.to_field(u)), self.sqrt_k)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        return u

    def symmetry_flip(self, u: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        return self.theory.symmetry_flip(u, flip)


def _sq_norm(d: torch.Tensor) -> torch.Tensor:
    return d.flatten(1).square().sum(1)


def mala_log_acceptance(x: torch.Tensor, y: torch.Tensor, h: float, drift_x: torch.Tensor,
                        drift_y: torch.Tensor, action_x: torch.Tensor, action_y: torch.Tensor,
                        project) -> torch.Tensor:
    """log A of the proposal x -> y with Langevin drifts ``drift_x``, ``drift_y`` (the force,
    or any other drift such as a learned score) against the actions (module docstring)."""
    forward = _sq_norm(project(y - x - h * drift_x))
    backward = _sq_norm(project(x - y - h * drift_y))
    return -(action_y - action_x) - (backward - forward) / (4.0 * h)


def mala_step(theory: Theory, x: torch.Tensor, h: float, generator: torch.Generator,
              action: torch.Tensor | None = None, force: torch.Tensor | None = None):
    """One MALA step of every chain; returns (x, action, force, accepted) with the
    action and force of the returned fields (pass them back in to save recomputation)."""
    if h <= 0:
        raise ValueError(f"MALA step size must be > 0, got {h}")
    if action is None:
        action = theory.action(x)
    if force is None:
        force = theory.force(x)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    y = theory.project(x + h * force + math.sqrt(2.0 * h) * z)
    action_y, force_y = theory.action(y), theory.force(y)
    log_a = mala_log_acceptance(x, y, h, force, force_y, action, action_y, theory.project)
    u = torch.rand(log_a.shape, generator=generator, dtype=x.dtype, device=x.device)
    accept = torch.log(u) < log_a
    keep = accept.view(-1, *([1] * (x.dim() - 1)))
    return (torch.where(keep, y, x), torch.where(accept, action_y, action),
            torch.where(keep, force_y, force), accept)


def shift_move(theory: Theory, x: torch.Tensor, width: float, generator: torch.Generator,
               action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One global move of every chain (module docstring): the shift by c ~ N(0, width^2),
    accepted on the exact Delta S, then the Z2 flip with probability 1/2; returns (x, its
    action, accepted)."""
    shape = (-1, *([1] * (x.dim() - 1)))
    c = width * torch.randn(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)
    y = x + c.view(shape)
    action_y = theory.action(y)
    u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)
    accept = torch.log(u) < action - action_y
    x = torch.where(accept.view(shape), y, x)
    flip = torch.rand(x.shape[0], generator=generator, dtype=x.dtype, device=x.device) < 0.5
    return theory.symmetry_flip(x, flip), torch.where(accept, action_y, action), accept


def _sweep(theory, x, h, width, shift_moves, generator, action, force):
    """One MALA step and ``shift_moves`` global moves; returns (x, action, force, MALA
    accepted, mean shift acceptance per chain)."""
    x, action, force, accepted = mala_step(theory, x, h, generator, action, force)
    shifted = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for _ in range(shift_moves):
        x, action, moved = shift_move(theory, x, width, generator, action)
        shifted += moved.double() / shift_moves
        force = None
    return x, action, force, accepted, shifted


def _check_fourier(theory: Theory, fourier: bool) -> None:
    if fourier and not hasattr(theory, "symmetry_flip"):
        raise ValueError(f"--mala-fourier: Fourier acceleration is for phi^4, not {theory.name}")


def _check_shift(theory: Theory, shift_moves: int) -> None:
    if shift_moves < 0:
        raise ValueError(f"shift_moves must be >= 0, got {shift_moves}")
    if shift_moves and not hasattr(theory, "symmetry_flip"):
        raise ValueError(f"--mala-global-moves: the shift and Z2 moves are for phi^4, not {theory.name}")


def run_mala(theory: Theory, x: torch.Tensor, n_steps: int, h: float, generator: torch.Generator,
             schedule: list[float] = (), show_progress: bool = False, desc: str = "mala",
             shift_moves: int = 0, width: float = 0.0, width_schedule: list[float] = ()) -> MALAResult:
    """``n_steps`` MALA steps from ``x`` (every row an independent chain), each followed by
    ``shift_moves`` global moves of width ``width``: step k has size ``schedule[k]`` (and
    width ``width_schedule[k]``) while the schedule lasts, then ``h`` (``width``)."""
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    _check_shift(theory, shift_moves)
    sizes = [*schedule[:n_steps], *[h] * max(0, n_steps - len(schedule))]
    widths = [*width_schedule[:n_steps], *[width] * max(0, n_steps - len(width_schedule))]
    acc = torch.zeros(n_steps, dtype=torch.float64)
    shift_acc = torch.zeros(n_steps if shift_moves else 0, dtype=torch.float64)
    per_chain = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    action = theory.action(x)
    force = None
    bar = progress(total=n_steps, desc=desc, enabled=show_progress and n_steps > 0)
    for k, (size, w) in enumerate(zip(sizes, widths)):
        x, action, force, accepted, shifted = _sweep(theory, x, size, w, shift_moves, generator, action, force)
        acc[k] = accepted.double().mean().item()
        if shift_moves:
            shift_acc[k] = shifted.mean().item()
        per_chain += accepted
        bar.update(1)
    bar.close()
    return MALAResult(x=x, acceptance=acc, accepted_per_chain=per_chain.cpu(), step_size=float(h),
                      step_sizes=torch.tensor(sizes, dtype=torch.float64), shift_acceptance=shift_acc)


def tune_step_size(theory: Theory, x: torch.Tensor, n_steps: int, generator: torch.Generator,
                   target: float = TARGET_ACCEPTANCE, h0: float = 1e-2, shift_moves: int = 0,
                   width0: float = 0.1) -> Tuning:
    """Robbins-Monro tuning on pilot chains ``x``: after every step
    log h += 2 (a_k - target) / (k + 1)^0.6 with a_k the step's acceptance rate over the
    chains (with ``shift_moves``, the width of the global shift alike towards
    :data:`SHIFT_TARGET`); the step size of every pilot step is the schedule the measured
    chains replay.  h (and the width) is the geometric mean of the second half of its
    trajectory, which averages out the last steps' noise."""
    if not 0 < target < 1:
        raise ValueError(f"target acceptance must be in (0, 1), got {target}")
    if n_steps < 2:
        raise ValueError(f"need at least 2 tuning steps, got {n_steps}")
    _check_shift(theory, shift_moves)
    log_h, log_w = math.log(h0), math.log(width0)
    schedule, widths, history = [], [], []
    acc = torch.zeros(n_steps, dtype=torch.float64)
    shift_acc = torch.zeros(n_steps if shift_moves else 0, dtype=torch.float64)
    action, force = theory.action(x), None
    for k in range(n_steps):
        schedule.append(math.exp(log_h))
        widths.append(math.exp(log_w) if shift_moves else 0.0)
        x, action, force, accepted, shifted = _sweep(theory, x, schedule[-1], widths[-1], shift_moves,
                                                     generator, action, force)
        acc[k] = accepted.double().mean().item()
        gain = 2.0 / (k + 1) ** 0.6
        log_h += gain * (float(acc[k]) - target)
        if shift_moves:
            shift_acc[k] = shifted.mean().item()
            log_w += gain * (float(shift_acc[k]) - SHIFT_TARGET)
        history.append((log_h, log_w))
    tail = history[n_steps // 2:]
    mean = [sum(v) / len(tail) for v in zip(*tail)]
    return Tuning(math.exp(mean[0]), acc, schedule, math.exp(mean[1]) if shift_moves else 0.0,
                  widths if shift_moves else [], shift_acc)


TRACE_STEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def trace_summaries(theory: Theory, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-configuration numbers recorded along a MALA run, enough to recompute the global
    observables after any number of steps: the action S, and phibar (phi^4) or the
    topological charge Q (U(1))."""
    out = {"action": theory.action(x)}
    if theory.name == "u1":
        from physml.lattice.u1 import topological_charge
        out["top_charge"] = topological_charge(x).to(x.dtype)
    else:
        out["phibar"] = x.flatten(1).mean(1)
    return out


@dataclass
class MALAStage:
    """The exact correction of a generated (or trivial) start: tune h (and the width of the
    ``shift_moves`` global moves after every step) on ``pilot`` chains (never measured),
    then run the measured chains through a warm-up that replays the pilot's schedule
    (``tune_steps`` steps, fixed in advance) and ``steps`` further steps at the tuned
    values.  Summaries (:func:`trace_summaries`) are recorded after the total step counts
    in :data:`TRACE_STEPS`, for the pull against the number of MALA steps, and after the
    last step.  ``fourier``: every step and move runs in the variables of
    :class:`FourierAccelerated` (phi^4)."""

    steps: int
    tune_steps: int = 100
    target: float = TARGET_ACCEPTANCE
    min_pilot: int = 64
    shift_moves: int = 0
    fourier: bool = False

    def __post_init__(self):
        if self.steps < 0 or self.tune_steps < 2 or self.shift_moves < 0:
            raise ValueError(f"need steps >= 0, tune_steps >= 2 and shift_moves >= 0, got {self.steps}, "
                             f"{self.tune_steps}, {self.shift_moves}")

    def check(self, theory: Theory) -> None:
        """Refuse, before any work, moves that ``theory`` has not got."""
        _check_shift(theory, self.shift_moves)
        _check_fourier(theory, self.fourier)

    def run(self, theory: Theory, x: torch.Tensor, pilot: torch.Tensor, generator: torch.Generator,
            pilot_generator: torch.Generator, show_progress: bool = False, desc: str = "mala"):
        """(final fields (float64), a Dataset of the MALA variables, attributes) for the
        ensemble artifact."""
        if pilot.shape[0] < self.min_pilot:
            raise ValueError(f"MALA tuning needs at least {self.min_pilot} pilot chains, got {pilot.shape[0]}")
        field_theory, x, pilot = theory, x.double(), pilot.double()
        if self.fourier:
            theory = FourierAccelerated(theory, x.shape[-1])
            x, pilot = theory.to_u(x), theory.to_u(pilot)
        to_field = theory.to_field if self.fourier else (lambda u: u)
        tuning = tune_step_size(theory, pilot, self.tune_steps, pilot_generator,
                                target=self.target, shift_moves=self.shift_moves)
        h, width = tuning.h, tuning.width
        width_phi = width * (float(theory.sqrt_k[0, 0]) if self.fourier else 1.0)   # the shift of phi
        total = self.tune_steps + self.steps
        marks = [s for s in TRACE_STEPS if s < total] + [total]
        traces = {k: [v.cpu()] for k, v in trace_summaries(field_theory, to_field(x)).items()}
        acc, sizes, shifts = [], [], []
        accepted = torch.zeros(x.shape[0], dtype=torch.int64)
        done = 0
        bar = progress(total=total, desc=desc, enabled=show_progress and total > 0)
        for mark in marks[1:]:
            res = run_mala(theory, x, mark - done, h, generator, schedule=tuning.schedule[done:],
                           shift_moves=self.shift_moves, width=width, width_schedule=tuning.width_schedule[done:])
            x, done = res.x, mark
            acc.append(res.acceptance)
            sizes.append(res.step_sizes)
            shifts.append(res.shift_acceptance)
            accepted += res.accepted_per_chain
            bar.update(res.acceptance.numel())
            for k, v in trace_summaries(field_theory, to_field(x)).items():
                traces[k].append(v.cpu())
        bar.close()
        acc_all = torch.cat(acc) if acc else torch.zeros(0, dtype=torch.float64)
        mean_acc = float(acc_all[self.tune_steps:].mean()) if self.steps else float("nan")
        shift_all = torch.cat(shifts) if shifts else torch.zeros(0, dtype=torch.float64)
        shift_rate = float(shift_all[self.tune_steps:].mean()) if self.steps and self.shift_moves else float("nan")
        moves = (f", {self.shift_moves} global shift(s) of width {width_phi:.4g} and Z2 flips after each step "
                 f"(shift acceptance {shift_rate:.3f})" if self.shift_moves else "")
        moves += ", Fourier-accelerated" if self.fourier else ""
        print(f"MALA: step size {h:.4g} (tuned for acceptance {self.target} on {pilot.shape[0]} pilot "
              f"chains), {self.tune_steps} warm-up steps on the pilot's schedule, then {self.steps} "
              f"at h: acceptance {mean_acc:.3f}{moves}")
        data_vars = {
            "mala_acceptance": ("mala_step", acc_all.numpy(),
                                {"long_name": "MALA acceptance rate of each step, mean over configurations"}),
            "mala_step_sizes": ("mala_step", (torch.cat(sizes) if sizes else acc_all).numpy(),
                                {"long_name": "step size of each MALA step (warm-up schedule, then h)"}),
            "mala_pilot_acceptance": ("mala_tune_step", tuning.acceptance.numpy(),
                                      {"long_name": "acceptance of each tuning step on the pilot chains"}),
            "mala_accepted": ("config", accepted.numpy(),
                              {"long_name": "accepted MALA steps of each configuration"}),
        }
        if self.shift_moves:
            data_vars["mala_shift_acceptance"] = ("mala_step", shift_all.numpy(), {
                "long_name": "acceptance of the global shifts after each MALA step, mean over configurations"})
        for k, v in traces.items():
            data_vars[f"mala_trace_{k}"] = (("mala_trace_step", "config"), torch.stack(v).numpy(),
                                            {"long_name": f"{k} of each configuration after the "
                                                          "number of MALA steps mala_trace_step"})
        attrs = {"mala_steps": int(self.steps), "mala_warmup_steps": int(self.tune_steps),
                 "mala_step_size": float(h), "mala_target_acceptance": float(self.target),
                 "mala_acceptance_rate": mean_acc, "mala_pilot_chains": int(pilot.shape[0]),
                 "mala_global_moves": int(self.shift_moves), "mala_fourier": int(self.fourier),
                 "mala_tuning": f"Robbins-Monro on {pilot.shape[0]} pilot chains (not measured), "
                                f"{self.tune_steps} steps; the measured chains replay the pilot's "
                                f"schedule as warm-up, then run {self.steps} steps at h"}
        if self.shift_moves:
            attrs.update(mala_shift_width=width_phi, mala_shift_acceptance_rate=shift_rate)
        return to_field(x), xr.Dataset(data_vars, coords={"mala_trace_step": marks}), attrs
