"""Generation as composed stages: prior -> predictor/corrector steps down a noise grid ->
annealing -> final denoising (the exact corrections act afterwards on the physical
fields: MALA, :mod:`physml.mc.mala`; SMC, :mod:`physml.mc.smc`; independence Metropolis
and importance weights from the model's density, :mod:`physml.diffusion.density`).

Every sampler works in the noise level sigma of the variance-exploding process
x_sigma = x_0 + sigma z (normalised units, :mod:`physml.diffusion.model`), in the manner
of Karras et al. 2022: it starts from the prior N(0, sigma_max^2), walks down a grid
sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min, and ends with the **final
denoising step** x <- D(x; sigma_min) = x + sigma_min^2 s(x; sigma_min) (Tweedie's mean,
which is also the last Euler step of the ODE from sigma_min to 0).  With sigma_min far
below the smallest fluctuation of the data (2e-3 against about 0.05 for phi^4 in RMS
units) that step removes a negligible (sigma_min / fluctuation)^2 of their variance.
sigma_max and sigma_min default to the range the model was trained on; a sigma_min
below it is refused.

Grids (``grid``): ``karras``: sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho)
- sigma_max^(1/rho)))^rho with rho = 7, dense at small noise; ``log_sigma``: geometric;
``linear``: uniform in the time t of a song-recipe model's VE SDE (the papers' grid).

Predictors (registered by name on the class, :func:`register`):

- ``em``: Euler-Maruyama on the reverse SDE with the exact variance increment:
  x <- x + (sigma_i^2 - sigma_{i+1}^2) s(x; sigma_i) + sqrt(sigma_i^2 - sigma_{i+1}^2) z;
- ``pc``: the same, after ``n_corrector`` Langevin corrector steps at every level;
- ``ode``: the probability-flow ODE dx/dsigma = -sigma s(x; sigma) with Heun's second
  order step (two score evaluations per step, deterministic given the prior sample), or
  with ``churn`` > 0 EDM's stochastic second-order sampler;
- ``ode2m``: the same ODE with the multistep DPM-Solver++(2M), one evaluation per level;
- ``ald``: annealed Langevin dynamics (Song and Ermon): ``steps_per_level`` Langevin
  steps at each level;
- ``authors``: the U(1) paper's annealed Langevin with their step rule and
  Metropolis-Hastings steps against the exact action at small noise
  (:class:`AuthorsLangevin`).

Langevin steps x <- x + eps s + sqrt(2 eps) z use eps = 2 (snr sigma)^2: Song et al.'s
rule eps = 2 (snr sqrt(d) / |s|)^2 with |s| = sqrt(d) / sigma, the norm of the score of
Gaussian noise of width sigma, which is what the score is dominated by at every level.
It depends on sigma alone, not on the batch.  An **annealing stage** (``anneal_steps``
Langevin steps at sigma_min, before the final denoising) can follow any predictor.

Randomness: every configuration draws all its noise (prior and steps) from its own
generator, seeded from the sampler's seed and the configuration's index, so the
samples do not depend on the batch size (up to the last-bit rounding of batched
convolutions); the price is one small draw per configuration and step, which dominates
only without a network (the exact free-field score).  Periodic fields are wrapped into [-pi, pi)
after every update (:meth:`ScoreModel.wrap`).  ``beta`` (U(1) models) multiplies every
score evaluation by beta / beta0 (physics conditioning).

The model's density (``density="jacobian"``, deterministic samplers: ``ode`` without
churn, ``ode2m``): the same walk run under forward-mode autodiff gives the Jacobian of
the whole map from the prior draw to the generated field, and log q of each sample
(:mod:`physml.diffusion.density`).  Path weights (``density="path"``, ``em``): the
sampler's own Gaussian transitions against the forward noising kernels, no Jacobian.
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
from physml.mc.mala import mala_log_acceptance
from physml.progress import progress
from physml.seeds import derive_seed

GRIDS = ("karras", "log_sigma", "linear")
RHO = 7.0
SAMPLERS: dict[str, type["Sampler"]] = {}


def register(cls: type["Sampler"]) -> type["Sampler"]:
    """Class decorator: make a sampler available by its ``name``."""
    SAMPLERS[cls.name] = cls
    return cls


@dataclass
class SampleResult:
    """Samples ``x`` (physical units, ``(n, *site_shape)``), snapshots
    ``(len(taus), n_snapshots, *site_shape)`` at ``snapshot_taus`` (noise levels
    ``snapshot_sigma``, normalised units), the number of score evaluations per
    configuration (annealing and final denoising included), the wall time, and with a
    density ``log_q`` per configuration (physical units, float64; :mod:`physml.diffusion.density`)."""

    x: torch.Tensor
    snapshots: torch.Tensor | None = None
    snapshot_taus: list[float] = field(default_factory=list)
    snapshot_sigma: list[float] = field(default_factory=list)
    nfe: int = 0
    wall_time: float = 0.0
    sigma_grid: list[float] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    log_q: torch.Tensor | None = None


class Noise:
    """Gaussian noise for a batch of configurations ``first .. first + n - 1``, each from
    its own generator seeded by (seed, index): draws do not depend on the batching."""

    def __init__(self, seed: int, first: int, n: int, device):
        self.gens = [torch.Generator(device=device).manual_seed(derive_seed(seed, "config", first + i))
                     for i in range(n)]

    def randn(self, like_shape, dtype, device) -> torch.Tensor:
        return torch.stack([torch.randn(tuple(like_shape[1:]), generator=g, dtype=dtype, device=device)
                            for g in self.gens])

    def rand(self, dtype, device) -> torch.Tensor:
        """One uniform number in [0, 1) per configuration, shape ``(n,)``."""
        return torch.cat([torch.rand(1, generator=g, dtype=dtype, device=device) for g in self.gens])


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def prior(model, sigma_max: float, noise: Noise, shape, dtype, device) -> torch.Tensor:
    """Prior sample at ``sigma_max``: N(0, sigma_max^2) per component, plus a uniform shift
    of the zero-mode law's variance mu^2 + w^2 (the prior of :mod:`physml.diffusion.model`)."""
    x = sigma_max * noise.randn(shape, dtype, device)
    mu, w2 = model.zero_mode_law(shape[-1] * shape[-2])
    var = mu * mu + w2
    if var:
        x = x + math.sqrt(var) * _bcast(noise.randn((shape[0], 1), dtype, device)[:, 0], x)
    return model.wrap(x)


def tally(stats: dict[str, list[float]], name: str, values: torch.Tensor) -> None:
    """Add ``values`` to the running [sum, count] of statistic ``name`` in ``stats``."""
    entry = stats.setdefault(name, [0.0, 0])
    entry[0] += float(values.sum())
    entry[1] += values.numel()


@dataclass
class Walk:
    """What one batch's walk down the grid needs besides the model and the field: its
    noise streams, the coupling ``beta``, the exact ``target`` action (samplers that
    accept or reject), ``on_step(k, x)`` called at each level, per-configuration
    statistics (:meth:`tally`) and, for path weights, the running sum
    ``log_path`` = sum_k log R_k - log F_k (:meth:`add_path_term`)."""

    noise: Noise | None
    beta: float | None = None
    target: Callable[[torch.Tensor], torch.Tensor] | None = None
    on_step: Callable[[int, torch.Tensor], None] = lambda k, x: None
    stats: dict[str, list[float]] = field(default_factory=dict)
    log_path: torch.Tensor | None = None

    def tally(self, name: str, values: torch.Tensor) -> None:
        """Accumulate a per-configuration statistic (e.g. acceptance) for the result's ``stats``."""
        tally(self.stats, name, values)

    def add_path_term(self, x: torch.Tensor, x_next: torch.Tensor, z: torch.Tensor, dv: float) -> None:
        """log R - log F of one Gaussian step x -> x_next = mean + sqrt(dv) z against the
        forward kernel F(x | x_next) = N(x_next, dv): (|x - x_next|^2 / dv - |z|^2) / 2."""
        if self.log_path is not None:
            term = ((x - x_next).flatten(1).square().sum(1) / dv - z.flatten(1).square().sum(1)) / 2
            self.log_path = self.log_path + term.double()


def langevin_step(model: ScoreModel, x: torch.Tensor, sigma: float, snr: float, walk: Walk) -> torch.Tensor:
    """One Langevin step at fixed ``sigma`` with eps = 2 (snr sigma)^2 (module docstring)."""
    return langevin_move(model, x, sigma, 2.0 * (snr * sigma) ** 2, walk)


def langevin_move(model: ScoreModel, x: torch.Tensor, sigma: float, eps: float, walk: Walk) -> torch.Tensor:
    """x <- x + eps s(x; sigma) + sqrt(2 eps) z."""
    z = walk.noise.randn(x.shape, x.dtype, x.device)
    return model.wrap(x + eps * model(x, sigma, walk.beta) + math.sqrt(2.0 * eps) * z)


def em_step(model: ScoreModel, x: torch.Tensor, sigma: float, sigma_next: float, walk: Walk) -> torch.Tensor:
    """Euler-Maruyama step of the reverse VE SDE from ``sigma`` to ``sigma_next`` with the
    exact variance increment sigma^2 - sigma_next^2 (module docstring)."""
    dv = sigma * sigma - sigma_next * sigma_next
    z = walk.noise.randn(x.shape, x.dtype, x.device)
    x_next = model.wrap(x + dv * model(x, sigma, walk.beta) + math.sqrt(dv) * z)
    walk.add_path_term(x, x_next, z, dv)
    return x_next


class Sampler(ABC):
    """Base class: noise grid, batching, per-configuration noise, snapshots, progress."""

    name = "sampler"
    source = "dm"          # the source label of the ensembles it generates
    needs_target = False   # True: sample() must be given the exact action (Metropolis-Hastings)
    path_weights = False   # True: its Gaussian transitions give path weights (density="path")

    def __init__(self, n_steps: int = 64, grid: str = "karras", sigma_min: float | None = None,
                 sigma_max: float | None = None):
        if grid not in GRIDS:
            raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
        if n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {n_steps}")
        for key, value in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
            if value is not None and not value > 0:
                raise ValueError(f"{key} must be > 0, got {value}")
        self.n_steps = int(n_steps)
        self.grid = grid
        self.sigma_min = None if sigma_min is None else float(sigma_min)
        self.sigma_max = None if sigma_max is None else float(sigma_max)

    # ---- what subclasses provide -------------------------------------------------
    @abstractmethod
    def _diffuse(self, model: ScoreModel, x: torch.Tensor, sigmas: list[float], walk: Walk) -> torch.Tensor:
        """Walk ``x`` ~ prior at ``sigmas[0]`` down to ``sigmas[-1]``; call
        ``walk.on_step(k, x)`` when x is at level ``sigmas[k]``, k = 1 .. N - 1; x in
        normalised units."""

    @property
    def deterministic(self) -> bool:
        """Whether the walk draws no noise after the prior (then it has a density)."""
        return False

    def final_step(self, model: ScoreModel, x: torch.Tensor, sigma: float, walk: Walk) -> torch.Tensor:
        """The final denoising step D = x + sigma_min^2 s(x; sigma_min) (module docstring);
        with path weights a draw from N(D, sigma_min^2) instead, whose forward kernel is the
        noising N(x0, sigma_min^2) of the generated field."""
        d = model.wrap(x + sigma * sigma * model(x, sigma, walk.beta))
        if walk.log_path is None:
            return d
        z = walk.noise.randn(x.shape, x.dtype, x.device)
        x0 = d + sigma * z
        walk.add_path_term(x, x0, z, sigma * sigma)
        return x0

    @property
    def evals_per_level(self) -> int:
        """Score evaluations per grid level (the diffusion without the final step)."""
        return 1

    @property
    def nfe(self) -> int:
        """Score evaluations per configuration: the walk down the grid and the final step."""
        return self.evals_per_level * (self.n_steps - 1) + 1

    def config(self) -> dict[str, Any]:
        """Plain-JSON parameters; ``make_sampler(**sampler.config())`` rebuilds it."""
        params = inspect.signature(type(self).__init__).parameters
        return {"name": self.name, **{k: getattr(self, k) for k in params if k != "self"}}

    # ---- shared machinery --------------------------------------------------------
    def noise_grid(self, model: ScoreModel) -> list[float]:
        """sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min (module docstring)."""
        lo = model.sigma_min if self.sigma_min is None else self.sigma_min
        hi = model.sigma_max if self.sigma_max is None else self.sigma_max
        if lo < model.sigma_min * (1 - 1e-9):
            raise ValueError(f"sigma_min {lo:.4g} is below the smallest noise the model was trained "
                             f"on ({model.sigma_min:.4g})")
        if not lo < hi:
            raise ValueError(f"need sigma_min < sigma_max, got {lo:.4g} and {hi:.4g}")
        i = torch.linspace(0, 1, self.n_steps, dtype=torch.float64)
        if self.grid == "karras":
            sig = (hi ** (1 / RHO) + i * (lo ** (1 / RHO) - hi ** (1 / RHO))) ** RHO
        elif self.grid == "log_sigma":
            sig = torch.exp(math.log(hi) + i * (math.log(lo) - math.log(hi)))
        else:
            sde = model.precond.sde
            if sde is None:
                raise ValueError("grid 'linear' (uniform in t) needs a song-recipe model with an SDE")
            t_lo, t_hi = (float(sde.time_for_std(torch.tensor(s, dtype=torch.float64))) for s in (lo, hi))
            sig = sde.marginal_std(t_hi + i * (t_lo - t_hi))
        out = sig.tolist()
        out[0], out[-1] = hi, lo
        return out

    def snapshot_steps(self, taus: Sequence[float]) -> list[int]:
        """Level index (0 = prior sample, n_steps = final sample) nearest to each tau in [0, 1]."""
        for tau in taus:
            if not 0 <= tau <= 1:
                raise ValueError(f"snapshot tau must be in [0, 1], got {tau}")
        return [int(round(tau * self.n_steps)) for tau in taus]

    def check_density(self, density: str | None, anneal_steps: int = 0) -> None:
        """Refuse a density this sampler cannot give, naming the options."""
        if density not in (None, "jacobian", "path"):
            raise ValueError(f"--density must be 'jacobian' or 'path', got {density!r}")
        if density == "jacobian" and not self.deterministic:
            raise ValueError(f"--density jacobian needs a deterministic sampler (--sampler ode with "
                             f"--churn 0, or ode2m); --sampler {self.name} draws noise at every step")
        if density == "path" and not self.path_weights:
            raise ValueError(f"--density path needs Gaussian reverse transitions (--sampler em); "
                             f"got --sampler {self.name}")
        if density and anneal_steps:
            raise ValueError("--density: the annealing stage (--anneal-steps) has no density; set it to 0")

    @torch.no_grad()
    def sample(self, model: ScoreModel, n: int, site_shape: Sequence[int], *, seed: int,
               batch_size: int = 256, beta: float | None = None,
               snapshot_taus: Sequence[float] = (), n_snapshots: int = 0,
               anneal_steps: int = 0, anneal_snr: float = 0.16, first_index: int = 0,
               show_progress: bool = True, desc: str | None = None,
               target: Callable[[torch.Tensor], torch.Tensor] | None = None,
               density: str | None = None) -> SampleResult:
        """Draw ``n`` configurations of shape ``site_shape`` (e.g. ``(L, L)``), indices
        ``first_index`` .. (their noise streams), then ``anneal_steps`` Langevin steps
        (``anneal_snr``) at sigma_min and the final step.  ``target``: the exact action
        S(phi) per configuration in physical units (at the generated coupling), for
        samplers that accept or reject against it (``needs_target``).  ``density``:
        ``jacobian`` (deterministic samplers) or ``path`` (path weights) fills
        ``log_q`` (:mod:`physml.diffusion.density`); the Jacobian runs in the model's dtype
        and is accumulated in float64."""
        from physml.diffusion import density as dens

        if n < 1 or batch_size < 1:
            raise ValueError("need n >= 1 and batch_size >= 1")
        if self.needs_target and target is None:
            raise ValueError(f"sampler {self.name!r} needs the exact action (target) for its "
                             "Metropolis-Hastings steps")
        if anneal_steps < 0 or anneal_snr <= 0:
            raise ValueError("need anneal_steps >= 0 and anneal_snr > 0")
        self.check_density(density, anneal_steps)
        if density == "path" and model.periodic:
            raise ValueError("--density path: the path weights of periodic fields need wrapped "
                             "kernels; use --density jacobian")
        model.eval()
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        sigmas = self.noise_grid(model)
        snap_steps = self.snapshot_steps(snapshot_taus)
        basis = None
        if density == "jacobian":   # V tangents per configuration (or k, module density): small batches
            basis = getattr(model, "moved_subspace", lambda shape: None)(site_shape)
            batch_size = min(batch_size, dens.jacobian_batch(site_shape if basis is None else (basis.shape[1],)))
        n_snap = min(int(n_snapshots), n, batch_size) if snap_steps else 0
        snaps: list[torch.Tensor | None] = [None] * len(snap_steps)
        outs, log_qs, stats = [], [], {}
        n_batches = math.ceil(n / batch_size)
        bar = progress(total=n_batches * (self.n_steps + anneal_steps), desc=desc or f"sample {self.name}",
                       enabled=show_progress)

        def walk_batch(x, noise, first):
            """prior draw -> generated fields, and the snapshots of the first batch."""
            kept = {}

            def keep(k, xk):
                if first and k in snap_steps:
                    kept[k] = xk

            def on_step(k, xk):
                bar.update(1)
                keep(k, xk)
            walk = Walk(noise, beta, target, on_step, stats,
                        torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
                        if density == "path" else None)
            keep(0, x)
            x = self._diffuse(model, x, sigmas, walk)
            for _ in range(anneal_steps):
                x = langevin_step(model, x, sigmas[-1], anneal_snr, walk)
                bar.update(1)
            x = self.final_step(model, x, sigmas[-1], walk)
            bar.update(1)
            keep(self.n_steps, x)
            return x, [kept[k] for k in snap_steps if k in kept], walk.log_path

        t0 = time.perf_counter()
        for b in range(n_batches):
            m = min(batch_size, n - b * batch_size)
            noise = Noise(seed, first_index + b * batch_size, m, device)
            z = prior(model, sigmas[0], noise, (m, *site_shape), dtype, device)
            if density == "jacobian":
                x, kept, log_det, sign = dens.jacobian_walk(lambda v: walk_batch(v, None, b == 0)[:2], z,
                                                            basis)
                log_qs.append(dens.prior_log_density(model, z, sigmas[0]) - log_det)
                tally(stats, "jacobian_sign_negative", (sign < 0).double())
            else:
                x, kept, log_path = walk_batch(z, noise, b == 0)
                if log_path is not None:
                    log_qs.append(dens.prior_log_density(model, z, sigmas[0]) + log_path)
            for j, xk in enumerate(kept):
                snaps[j] = model.denormalise(xk[:n_snap]).cpu().clone()
            outs.append(model.denormalise(x).cpu())
        bar.close()
        wall = time.perf_counter() - t0
        x = torch.cat(outs)
        log_q = None
        if log_qs:   # physical units: phi = scale x
            volume = math.prod(x.shape[1:])
            log_q = torch.cat(log_qs).cpu().double() - volume * math.log(model.scale)
        snap_sigma = [sigmas[s] if s < self.n_steps else 0.0 for s in snap_steps]
        return SampleResult(x=x, snapshots=torch.stack(snaps) if n_snap else None,
                            snapshot_taus=[float(t) for t in snapshot_taus] if n_snap else [],
                            snapshot_sigma=snap_sigma if n_snap else [],
                            nfe=self.nfe + anneal_steps, wall_time=wall, sigma_grid=sigmas,
                            stats={k: total / count for k, (total, count) in stats.items()},
                            log_q=log_q)


@register
class EulerMaruyama(Sampler):
    """Euler-Maruyama with exact variance increments (module docstring)."""

    name = "em"
    path_weights = True

    def _diffuse(self, model, x, sigmas, walk):
        for k in range(1, len(sigmas)):
            x = em_step(model, x, sigmas[k - 1], sigmas[k], walk)
            walk.on_step(k, x)
        return x


@register
class PredictorCorrector(Sampler):
    """``n_corrector`` Langevin corrector steps (``snr``) then one Euler-Maruyama
    predictor step at every level."""

    name = "pc"

    def __init__(self, n_steps: int = 64, grid: str = "karras", sigma_min: float | None = None,
                 sigma_max: float | None = None, snr: float = 0.16, n_corrector: int = 1):
        super().__init__(n_steps, grid, sigma_min, sigma_max)
        if snr <= 0 or n_corrector < 0:
            raise ValueError("need snr > 0 and n_corrector >= 0")
        self.snr = float(snr)
        self.n_corrector = int(n_corrector)

    @property
    def evals_per_level(self) -> int:
        return 1 + self.n_corrector

    def _diffuse(self, model, x, sigmas, walk):
        for k in range(1, len(sigmas)):
            for _ in range(self.n_corrector):
                x = langevin_step(model, x, sigmas[k - 1], self.snr, walk)
            x = em_step(model, x, sigmas[k - 1], sigmas[k], walk)
            walk.on_step(k, x)
        return x


@register
class ProbabilityFlow(Sampler):
    """Probability-flow ODE dx/dsigma = -sigma s(x; sigma) with Heun's method, two score
    evaluations per step; with ``churn`` > 0 EDM's stochastic sampler: before each step
    the noise is raised from sigma to sigma_hat = sigma (1 + gamma), gamma =
    min(churn / n_steps, sqrt(2) - 1), by adding fresh noise of variance
    sigma_hat^2 - sigma^2, and the Heun step starts from sigma_hat.  The fresh noise
    pulls the walk back towards the true marginal, so discretisation errors do not
    accumulate; churn = 0 is the deterministic ODE."""

    name = "ode"

    def __init__(self, n_steps: int = 64, grid: str = "karras", sigma_min: float | None = None,
                 sigma_max: float | None = None, churn: float = 0.0):
        super().__init__(n_steps, grid, sigma_min, sigma_max)
        if churn < 0:
            raise ValueError(f"need churn >= 0, got {churn}")
        self.churn = float(churn)

    @property
    def evals_per_level(self) -> int:
        return 2

    @property
    def deterministic(self) -> bool:
        return self.churn == 0

    def _diffuse(self, model, x, sigmas, walk):
        gamma = min(self.churn / self.n_steps, math.sqrt(2.0) - 1.0)
        for k in range(1, len(sigmas)):
            s0, s1 = sigmas[k - 1], sigmas[k]
            if gamma > 0:
                s_hat = s0 * (1.0 + gamma)
                z = walk.noise.randn(x.shape, x.dtype, x.device)
                x, s0 = model.wrap(x + math.sqrt(s_hat * s_hat - s0 * s0) * z), s_hat
            d0 = -s0 * model(x, s0, walk.beta)
            x_pred = model.wrap(x + (s1 - s0) * d0)
            d1 = -s1 * model(x_pred, s1, walk.beta)
            x = model.wrap(x + 0.5 * (s1 - s0) * (d0 + d1))
            walk.on_step(k, x)
        return x


@register
class MultistepODE(Sampler):
    """Probability-flow ODE with the second-order multistep exponential integrator
    DPM-Solver++(2M) (Lu et al. 2022) in the denoiser D = x + sigma^2 s: with
    h_k = ln(sigma_{k-1} / sigma_k) and r = h_{k-1} / h_k,

        x_k = (sigma_k / sigma_{k-1}) x_{k-1} + (1 - sigma_k / sigma_{k-1}) D_eff,
        D_eff = (1 + 1/(2r)) D_{k-1} - D_{k-2} / (2r)   (D_{k-1} alone at the first step),

    exact for pure noise at every step size, second order, and one score evaluation per
    level, so twice the levels of Heun for the same cost.

    Periodic fields: D_{k-2} and x_{k-1} must lie in the same image of the torus, so the
    walk carries the unwrapped state (the lift of the ODE to the covering space, whose
    vector field is periodic), evaluates the score at its wrapped value and wraps what it
    hands on; wrapping the state at each step would shift D_eff by 2 pi / (2r) on every
    link that had just crossed +-pi."""

    name = "ode2m"

    @property
    def deterministic(self) -> bool:
        return True

    def _diffuse(self, model, x, sigmas, walk):
        d_prev, h_prev = None, None
        for k in range(1, len(sigmas)):
            s0, s1 = sigmas[k - 1], sigmas[k]
            d = x + s0 * s0 * model(model.wrap(x), s0, walk.beta)
            h = math.log(s0 / s1)
            d_eff = d if d_prev is None else (1 + h / (2 * h_prev)) * d - h / (2 * h_prev) * d_prev
            x = (s1 / s0) * x + (1 - s1 / s0) * d_eff
            d_prev, h_prev = d, h
            walk.on_step(k, model.wrap(x))
        return model.wrap(x)


@register
class AnnealedLangevin(Sampler):
    """Annealed Langevin dynamics: ``steps_per_level`` Langevin steps (``snr``) at each of
    the ``n_steps`` noise levels (geometric by default)."""

    name = "ald"

    def __init__(self, n_steps: int = 100, grid: str = "log_sigma", sigma_min: float | None = None,
                 sigma_max: float | None = None, snr: float = 0.16, steps_per_level: int = 2):
        super().__init__(n_steps, grid, sigma_min, sigma_max)
        if snr <= 0 or steps_per_level < 1:
            raise ValueError("need snr > 0 and steps_per_level >= 1")
        self.snr = float(snr)
        self.steps_per_level = int(steps_per_level)

    @property
    def nfe(self) -> int:
        return self.n_steps * self.steps_per_level + 1

    def _diffuse(self, model, x, sigmas, walk):
        for k, sigma in enumerate(sigmas):
            for _ in range(self.steps_per_level):
                x = langevin_step(model, x, sigma, self.snr, walk)
            if k:
                walk.on_step(k, x)
        return x


@register
class AuthorsLangevin(Sampler):
    """The annealed Langevin sampler of the public code of the U(1) diffusion paper
    (Zhu et al., arXiv:2502.05504), as a preset.  Their fields are link angles / pi with
    the VE SDE of the model (s = 25); ``field_unit`` (pi for angles in radians) converts:

    - ``n_steps`` levels at the SDE times t_k = level_ratio^k, k = 0 .. n_steps - 1
      (30 levels of ratio 0.7: t from 1 down to 3.3e-5), noise sigma_k = field_unit
      sigma(t_k) (levels above the model's sigma_max are evaluated at sigma_max: on the
      torus the noised field is uniform there anyway; a level below its sigma_min is refused);
    - ``steps_per_level`` Langevin steps x <- x + eps_k s + sqrt(2 eps_k) z at each level
      with their step rule eps_k = field_unit^2 step_alpha (t_k / t_last)^2 (largest at
      the first level), with the score times beta / beta0;
    - at levels with t_k < ``t_mh`` every step is a Metropolis-Hastings proposal accepted
      with min(1, exp(S(x) - S(y)) q(x|y) / q(y|x)) against the exact action S at the
      generated coupling (MALA with the learned score as drift, the proposal density
      taken at the nearest periodic image), so these levels sample the exact law;
    - ``output="mean"`` takes the result as they take it: the mean x + eps_last s(x) of
      one more Langevin step at the last level (not a denoising step; a deterministic
      shift of order eps_last along the drift); ``output="state"`` takes the chain's last
      state, which below t_mh is a draw from the exact law.

    Score evaluations per configuration: n_steps x steps_per_level, plus one per
    Metropolis level (the score at the level's first state) and one for the output.
    The acceptance rate of the Metropolis steps is reported as ``stats['mh_acceptance']``.
    """

    name = "authors"
    source = "dm_authors"
    needs_target = True

    def __init__(self, n_steps: int = 30, level_ratio: float = 0.7, steps_per_level: int = 400,
                 step_alpha: float = 5e-9, t_mh: float = 0.01, field_unit: float = math.pi,
                 output: str = "mean"):
        super().__init__(n_steps)
        if output not in ("mean", "state"):
            raise ValueError(f"output must be 'mean' or 'state', got {output!r}")
        if not 0 < level_ratio < 1:
            raise ValueError(f"level_ratio must be in (0, 1), got {level_ratio}")
        if steps_per_level < 1 or not step_alpha > 0 or not field_unit > 0 or t_mh < 0:
            raise ValueError("need steps_per_level >= 1, step_alpha > 0, field_unit > 0, t_mh >= 0")
        self.level_ratio = float(level_ratio)
        self.steps_per_level = int(steps_per_level)
        self.step_alpha = float(step_alpha)
        self.t_mh = float(t_mh)
        self.field_unit = float(field_unit)
        self.output = output

    def times(self) -> list[float]:
        """The SDE times t_k of the levels."""
        return [self.level_ratio ** k for k in range(self.n_steps)]

    def step_sizes(self) -> list[float]:
        """eps_k = field_unit^2 step_alpha (t_k / t_last)^2 (class docstring)."""
        t = self.times()
        return [self.field_unit ** 2 * self.step_alpha * (tk / t[-1]) ** 2 for tk in t]

    @property
    def nfe(self) -> int:
        n_mh = sum(t < self.t_mh for t in self.times())
        return self.n_steps * self.steps_per_level + n_mh + (self.output == "mean")

    def noise_grid(self, model: ScoreModel) -> list[float]:
        sde = model.precond.sde
        if sde is None:
            raise ValueError("sampler 'authors' walks the SDE times of a song-recipe model")
        t = torch.tensor(self.times(), dtype=torch.float64)
        sig = (self.field_unit * sde.marginal_std(t)).tolist()
        if sig[-1] < model.sigma_min * (1 - 1e-9):
            raise ValueError(f"the last level's noise {sig[-1]:.4g} is below the smallest the model was "
                             f"trained on ({model.sigma_min:.4g})")
        return [min(s, model.sigma_max) for s in sig]

    def _diffuse(self, model, x, sigmas, walk):
        for k, (sigma, eps, t) in enumerate(zip(sigmas, self.step_sizes(), self.times())):
            if t < self.t_mh:
                x = self._metropolis_level(model, x, sigma, eps, walk)
            else:
                for _ in range(self.steps_per_level):
                    x = langevin_move(model, x, sigma, eps, walk)
            if k:
                walk.on_step(k, x)
        return x

    def _metropolis_level(self, model, x, sigma, eps, walk):
        """``steps_per_level`` MALA steps with drift eps s(x; sigma) against the exact action."""
        def action(v):
            return walk.target(model.denormalise(v))

        s_x, a_x = model(x, sigma, walk.beta), action(x)
        for _ in range(self.steps_per_level):
            z = walk.noise.randn(x.shape, x.dtype, x.device)
            y = model.wrap(x + eps * s_x + math.sqrt(2.0 * eps) * z)
            s_y, a_y = model(y, sigma, walk.beta), action(y)
            log_a = mala_log_acceptance(x, y, eps, s_x, s_y, a_x, a_y, model.wrap)
            accept = torch.log(walk.noise.rand(x.dtype, x.device)) < log_a
            walk.tally("mh_acceptance", accept.to(x.dtype))
            keep = _bcast(accept, x)
            x, s_x, a_x = torch.where(keep, y, x), torch.where(keep, s_y, s_x), torch.where(accept, a_y, a_x)
        return x

    def final_step(self, model, x, sigma, walk):
        """``output`` "mean": x + eps_last s(x; sigma_last), as the authors take it; "state": x."""
        if self.output == "state":
            return x
        return model.wrap(x + self.step_sizes()[-1] * model(x, sigma, walk.beta))


def make_sampler(name: str = "ode", **params) -> Sampler:
    """A registered sampler by name; parameters it does not take are an error."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; known: {sorted(SAMPLERS)}")
    cls = SAMPLERS[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"sampler {name!r} takes {sorted(allowed)}, not {sorted(unknown)}")
    return cls(**params)
