"""Samplers of a trained score model: interchangeable objects with one interface.

Every sampler integrates the backward process from the prior at t = 1 down to
``t_min`` on a time grid of ``n_steps`` points (``linear``: uniform in t;
``log_sigma``: geometric in the noise level sigma(t)) and returns fields in
**physical units** (the model's normalisation undone):

- :class:`EulerMaruyama`: x <- x + g(t)^2 s(x, t) dt + g(t) sqrt(dt) z on the reverse
  SDE; the last step, from t_min to 0, adds no noise (so the output is its mean);
- :class:`PredictorCorrector`: before each Euler-Maruyama predictor step,
  ``n_corrector`` Langevin corrector steps x <- x + eps s + sqrt(2 eps) z with
  eps = 2 (snr sqrt(d) / <||s||>)^2 (Song et al.);
- :class:`ProbabilityFlow`: the probability-flow ODE dx/dt = -g^2 s / 2, Heun's
  method (2 score evaluations per step), optionally a final Tweedie denoising
  step x + sigma(t_min)^2 s(x, t_min);
- :class:`AnnealedLangevin`: annealed Langevin dynamics (Song & Ermon) on a
  geometric grid of noise levels from sigma(1) to sigma(t_min): ``steps_per_level``
  Langevin steps x <- x + eps s + sqrt(2 eps) z at each level, eps from ``snr``
  as for the corrector.

Any sampler can append an **annealing stage** (``anneal_steps`` Langevin steps at
fixed t = t_min, the sampling counterpart of thermalising at the end of the
diffusion; :meth:`Sampler.sample`).  Periodic fields are wrapped into [-pi, pi)
after every update (:meth:`ScoreModel.wrap`), the prior sample included.  The
exact Metropolis correction (MALA, :mod:`physml.mc.mala`) acts on the returned
physical fields.

A sampler runs in batches (``batch_size``), draws all noise from one
``torch.Generator`` (deterministic given the seed and batch size), shows a
progress bar over all steps, and can keep snapshots of the first few
configurations at chosen fractions tau of the backward process (tau = 0: the
prior sample at t = 1; tau = 1: the final sample).  Subclasses implement
:meth:`Sampler._diffuse`; register new samplers in :data:`SAMPLERS`.
"""

from __future__ import annotations

import inspect
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from physml.diffusion.model import ScoreModel
from physml.progress import progress


@dataclass
class SampleResult:
    """Samples ``x`` (physical units, ``(n, *site_shape)``), snapshots
    ``(len(taus), n_snapshots, *site_shape)`` at ``snapshot_taus`` (diffusion times
    ``snapshot_t``), the number of score evaluations per configuration (annealing
    included) and the wall time."""

    x: torch.Tensor
    snapshots: torch.Tensor | None = None
    snapshot_taus: list[float] = field(default_factory=list)
    snapshot_t: list[float] = field(default_factory=list)
    nfe: int = 0
    wall_time: float = 0.0


class Sampler(ABC):
    """Base class: time grid, batching, snapshots, progress."""

    name = "sampler"

    def __init__(self, n_steps: int = 500, t_min: float = 1e-3, grid: str = "linear"):
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
        self.grid = grid
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        if not 0 < t_min < 1:
            raise ValueError(f"t_min must be in (0, 1), got {t_min}")
        self.n_steps = int(n_steps)
        self.t_min = float(t_min)

    # ---- what subclasses provide -------------------------------------------------
    @abstractmethod
    def _diffuse(self, model: ScoreModel, x: torch.Tensor, grid: torch.Tensor,
                 gen: torch.Generator, on_step: Callable[[int, torch.Tensor], None]) -> torch.Tensor:
        """Integrate from ``x`` ~ prior at ``grid[0] = 1`` to the end; call
        ``on_step(k, x)`` after step k = 1 .. n_steps, which ends at ``grid[k]``
        (at t = 0 for k = n_steps); x in normalised units."""

    @property
    def nfe(self) -> int:
        """Score evaluations per configuration."""
        return self.n_steps

    def config(self) -> dict[str, Any]:
        """Plain-JSON parameters; ``make_sampler(**sampler.config())`` rebuilds it."""
        params = inspect.signature(type(self).__init__).parameters
        return {"name": self.name, **{k: getattr(self, k) for k in params if k != "self"}}

    # ---- shared machinery --------------------------------------------------------
    def time_grid(self, sde, device, dtype=torch.float32) -> torch.Tensor:
        """Times t_0 = 1 > ... > t_{n-1} = t_min at which the score is evaluated: uniform
        in t (``linear``, Song et al.) or with geometrically spaced noise levels sigma(t)
        (``log_sigma``), which keeps every step a fixed fraction of the noise variance
        and so resolves fluctuations much smaller than the data scale."""
        if self.grid == "linear":
            return torch.linspace(1.0, self.t_min, self.n_steps, device=device, dtype=dtype)
        lo, hi = (math.log(float(sde.marginal_std(torch.tensor(t, dtype=torch.float64))))
                  for t in (self.t_min, 1.0))
        std = torch.exp(torch.linspace(hi, lo, self.n_steps, dtype=torch.float64))
        t = sde.time_for_std(std)
        t[0], t[-1] = 1.0, self.t_min
        return t.to(device=device, dtype=dtype)

    def snapshot_steps(self, taus: Sequence[float]) -> list[int]:
        """Step index (0 = prior sample, n_steps = final) nearest to each tau in [0, 1]."""
        for tau in taus:
            if not 0 <= tau <= 1:
                raise ValueError(f"snapshot tau must be in [0, 1], got {tau}")
        return [int(round(tau * self.n_steps)) for tau in taus]

    @torch.no_grad()
    def sample(self, model: ScoreModel, n: int, site_shape: Sequence[int], *,
               generator: torch.Generator, batch_size: int = 256,
               snapshot_taus: Sequence[float] = (), n_snapshots: int = 0,
               anneal_steps: int = 0, anneal_snr: float = 0.16,
               show_progress: bool = True, desc: str | None = None) -> SampleResult:
        """Draw ``n`` configurations of shape ``site_shape`` (e.g. ``(L, L)``), then run
        ``anneal_steps`` Langevin steps (``anneal_snr``) at t = t_min on each."""
        if n < 1 or batch_size < 1:
            raise ValueError("need n >= 1 and batch_size >= 1")
        if anneal_steps < 0 or anneal_snr <= 0:
            raise ValueError("need anneal_steps >= 0 and anneal_snr > 0")
        model.eval()
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        grid = self.time_grid(model.sde, device, dtype)
        snap_steps = self.snapshot_steps(snapshot_taus)
        n_snap = min(int(n_snapshots), n) if snap_steps else 0
        snaps: list[torch.Tensor | None] = [None] * len(snap_steps)
        outs = []
        n_batches = math.ceil(n / batch_size)
        bar = progress(total=n_batches * (self.n_steps + anneal_steps), desc=desc or f"sample {self.name}",
                       enabled=show_progress)
        t0 = time.perf_counter()
        for b in range(n_batches):
            m = min(batch_size, n - b * batch_size)
            x = model.wrap(model.sde.prior_sampling((m, *site_shape), generator, dtype=dtype,
                                                    device=device))

            def on_step(k, xk, first=(b == 0)):
                bar.update(1)
                if first and n_snap:
                    for j, s in enumerate(snap_steps):
                        if s == k:
                            snaps[j] = model.denormalise(xk[:n_snap]).cpu().clone()

            if b == 0 and n_snap:
                for j, s in enumerate(snap_steps):
                    if s == 0:
                        snaps[j] = model.denormalise(x[:n_snap]).cpu().clone()
            x = self._diffuse(model, x, grid, generator, on_step)
            for _ in range(anneal_steps):
                x = langevin_step(model, x, grid[-1], anneal_snr, generator)
                bar.update(1)
            x = model.denormalise(x)
            if b == 0 and n_snap:
                for j, s in enumerate(snap_steps):
                    if s == self.n_steps:
                        snaps[j] = x[:n_snap].cpu().clone()
            outs.append(x.cpu())
        bar.close()
        wall = time.perf_counter() - t0
        snapshots = torch.stack(snaps) if n_snap else None
        snap_t = [float(grid[s]) if s < self.n_steps else 0.0 for s in snap_steps]
        return SampleResult(x=torch.cat(outs), snapshots=snapshots,
                            snapshot_taus=[float(t) for t in snapshot_taus] if n_snap else [],
                            snapshot_t=snap_t if n_snap else [], nfe=self.nfe + anneal_steps,
                            wall_time=wall)


GRIDS = ("linear", "log_sigma")


def step_sizes(grid: torch.Tensor) -> list[float]:
    """dt of the step taken at each grid time: to the next grid time, and for the last
    step (taken without noise) from t_min to t = 0."""
    return (grid[:-1] - grid[1:]).tolist() + [float(grid[-1])]


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def _time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.expand(x.shape[0]).contiguous()


def em_step(model: ScoreModel, x: torch.Tensor, t: torch.Tensor, dt: float,
            gen: torch.Generator, noise: bool = True) -> torch.Tensor:
    """One Euler-Maruyama step of the reverse SDE from t to t - dt (dt > 0)."""
    tt = _time(t, x)
    drift = model.sde.reverse_drift(x, tt, model(x, tt))
    _, g = model.sde.sde(x, tt)
    x_mean = x - drift * dt
    if not noise:
        return model.wrap(x_mean)
    z = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
    return model.wrap(x_mean + _bcast(g, x) * math.sqrt(dt) * z)


def langevin_step(model: ScoreModel, x: torch.Tensor, t: torch.Tensor, snr: float,
                  gen: torch.Generator) -> torch.Tensor:
    """Langevin corrector at fixed t with the step size set by the signal-to-noise ratio
    as in Song et al.: eps = 2 (snr sqrt(d) / <||s||>)^2 with d the number of components
    and <||s||> the batch mean of the score norms.  (A per-configuration ratio
    ||z|| / ||s(x)|| correlates the step with x and inflates the variance on small
    lattices.)"""
    tt = _time(t, x)
    s = model(x, tt)
    z = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
    s_norm = s.flatten(1).norm(dim=1).mean().clamp(min=1e-12)
    eps = 2 * (snr * math.sqrt(x[0].numel()) / s_norm) ** 2
    return model.wrap(x + eps * s + torch.sqrt(2 * eps) * z)


class EulerMaruyama(Sampler):
    """Euler-Maruyama on the reverse SDE; the last step adds no noise."""

    name = "em"

    def _diffuse(self, model, x, grid, gen, on_step):
        for k, (t, dt) in enumerate(zip(grid, step_sizes(grid)), start=1):
            x = em_step(model, x, t, dt, gen, noise=k < len(grid))
            on_step(k, x)
        return x


class PredictorCorrector(Sampler):
    """``n_corrector`` Langevin corrector steps (``snr``) then one Euler-Maruyama
    predictor step at every grid time."""

    name = "pc"

    def __init__(self, n_steps: int = 500, t_min: float = 1e-3, grid: str = "linear",
                 snr: float = 0.16, n_corrector: int = 1):
        super().__init__(n_steps, t_min, grid)
        if snr <= 0 or n_corrector < 0:
            raise ValueError("need snr > 0 and n_corrector >= 0")
        self.snr = float(snr)
        self.n_corrector = int(n_corrector)

    @property
    def nfe(self) -> int:
        return self.n_steps * (1 + self.n_corrector)

    def _diffuse(self, model, x, grid, gen, on_step):
        for k, (t, dt) in enumerate(zip(grid, step_sizes(grid)), start=1):
            for _ in range(self.n_corrector):
                x = langevin_step(model, x, t, self.snr, gen)
            x = em_step(model, x, t, dt, gen, noise=k < len(grid))
            on_step(k, x)
        return x


class ProbabilityFlow(Sampler):
    """Probability-flow ODE with Heun's method from t = 1 to t_min (deterministic given
    the prior sample); ``denoise`` adds the Tweedie step x + sigma(t_min)^2 s at the end."""

    name = "ode"

    def __init__(self, n_steps: int = 250, t_min: float = 1e-3, grid: str = "linear",
                 denoise: bool = True):
        super().__init__(n_steps, t_min, grid)
        self.denoise = bool(denoise)

    @property
    def nfe(self) -> int:
        return 2 * (self.n_steps - 1) + (1 if self.denoise else 0)

    def _diffuse(self, model, x, grid, gen, on_step):
        def f(x, t):
            tt = _time(t, x)
            return model.sde.ode_drift(x, tt, model(x, tt))

        for k in range(len(grid) - 1):
            t, t_next = grid[k], grid[k + 1]
            h = float(t_next - t)  # negative
            d1 = f(x, t)
            x_pred = x + h * d1
            x = model.wrap(x + 0.5 * h * (d1 + f(x_pred, t_next)))
            on_step(k + 1, x)
        if self.denoise:
            tt = _time(grid[-1], x)
            std = model.sde.marginal_std(tt)
            x = model.wrap(x + _bcast(std * std, x) * model(x, tt))
        on_step(len(grid), x)
        return x


class AnnealedLangevin(Sampler):
    """Annealed Langevin dynamics: ``steps_per_level`` Langevin steps (``snr``) at each of
    ``n_steps`` noise levels, geometrically spaced from sigma(1) to sigma(t_min)."""

    name = "ald"

    def __init__(self, n_steps: int = 100, t_min: float = 1e-3, grid: str = "log_sigma",
                 snr: float = 0.16, steps_per_level: int = 2):
        if grid != "log_sigma":
            raise ValueError(f"annealed Langevin needs the geometric grid 'log_sigma', got {grid!r}")
        super().__init__(n_steps, t_min, grid)
        if snr <= 0 or steps_per_level < 1:
            raise ValueError("need snr > 0 and steps_per_level >= 1")
        self.snr = float(snr)
        self.steps_per_level = int(steps_per_level)

    @property
    def nfe(self) -> int:
        return self.n_steps * self.steps_per_level

    def _diffuse(self, model, x, grid, gen, on_step):
        for k, t in enumerate(grid, start=1):
            for _ in range(self.steps_per_level):
                x = langevin_step(model, x, t, self.snr, gen)
            on_step(k, x)
        return x


SAMPLERS: dict[str, type[Sampler]] = {
    "em": EulerMaruyama,
    "pc": PredictorCorrector,
    "ode": ProbabilityFlow,
    "ald": AnnealedLangevin,
}


def make_sampler(name: str = "em", **params) -> Sampler:
    """A registered sampler by name; parameters it does not take are an error."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {sorted(SAMPLERS)}")
    cls = SAMPLERS[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"sampler {name!r} takes {sorted(allowed)}, not {sorted(unknown)}")
    return cls(**params)
