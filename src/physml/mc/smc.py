"""Sequential Monte Carlo in the coupling (annealed importance sampling with resampling;
Del Moral, Doucet and Jasra 2006).

Target pi_beta(x) proportional to exp(-beta S_1(x)) for an action linear in its
coupling, S_beta = beta S_1 (U(1): S_1 = -sum_P cos theta_P, so pi_beta is
proportional to exp(beta sum_P cos theta_P)).  ``theory_at(beta)`` returns the theory
at that coupling (:class:`physml.lattice.theory.LatticeTheory`, with
:class:`~physml.lattice.theory.HasFluxShift` for flux moves), so the same code serves any
such theory.

One run, N particles x_i drawn from pi_{beta_0} with equal weights, or from any
proposal q with importance weights W_i proportional to pi_{beta_0}(x_i) / q(x_i) (a
generative model's samples with their density, ``log_w0``; then, before the ladder, the
particles are resampled if the Kish ESS of those weights is below ``resample_below`` x N
and moved at beta_0 as in step 4, so that a start at the target itself, beta_0 = beta,
is importance resampling followed by MCMC moves):

1. next coupling: beta_{k+1} = beta_k + d, with d found by bisection so that the
   conditional ESS of the step, (sum_i W_i w_i)^2 / sum_i W_i w_i^2 with W_i the
   current normalised weights and w_i = exp(-d S_1(x_i)), equals ``ess_fraction``
   (a fraction of 1: no loss when every w_i is equal), or d = beta - beta_k when the
   whole remaining step keeps at least that fraction;
2. reweight: log W_i += -(beta_{k+1} - beta_k) S_1(x_i), then normalise;
3. resample (systematic) when the Kish ESS 1 / sum_i W_i^2 falls below
   ``resample_below`` x N: the event (step index, ESS, reason) is recorded and the
   weights become equal;
4. move: ``n_moves`` HMC trajectories at beta_{k+1} (:func:`physml.mc.hmc.hmc_step`),
   each followed by ``flux_moves`` global flux moves (:mod:`physml.mc.flux`); every
   move leaves pi_{beta_{k+1}} invariant, so the weights are unchanged.

**Collapse.**  Particles that are copies of a few configurations make every ESS above
meaningless: identical particles give a conditional ESS of 1 for any step, so the
ladder jumps to the target at once.  The effective number of distinct particles,
1 / sum_c (sum_{i in c} W_i)^2 over the classes c of identical configurations (the
Kish ESS with the weights of copies summed), is recorded at the start and after every
step's reweighting and resampling, before the moves (``distinct``, a fraction of N).
A run whose smallest value is below ``min_distinct`` collapsed (``collapsed``): its
estimates rest on a handful of configurations, whatever the moves did after.  Copies
are found bit for bit; a model that draws nearly identical configurations is caught by
the weights of its start instead (their ESS), which is why a model's start carries them.

The final weighted particles estimate <O>_beta = sum_i W_i O(x_i); the estimate is
consistent as N grows, with a bias of order 1/N, and the weights are correlated
with the particles through the resampling, so its error must come from
independent replicas (:func:`run_replicas`), never from one run.  Every random
number comes from the run's one ``torch.Generator``: the same seed gives the same
particles, ladder and weights on the CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import xarray as xr

from physml.lattice.theory import LatticeTheory
from physml.mc.ensembles import coupling_attrs
from physml.mc.flux import flux_move
from physml.mc.hmc import hmc_step
from physml.progress import progress
from physml.seeds import derive_seed

TheoryAt = Callable[[float], LatticeTheory]   # the theory at a coupling beta (U1 itself)

BISECTION_STEPS = 60
MAX_STEPS = 100_000


@dataclass
class SMCResult:
    """One SMC run: final particles ``x`` ``(N, *site_shape)`` with normalised ``weights``
    ``(N,)``; per step k = 1 .. K: the ladder ``betas`` ``(K + 1,)`` (beta_0 first, the
    target last), ``ess`` (Kish ESS / N after the reweighting of step k, before any
    resampling), ``distinct`` (effective distinct particles / N before the moves),
    ``hmc_acceptance`` and ``flux_acceptance`` (mean over particles and moves);
    ``start_ess`` and ``start_distinct`` (/ N) of the start weights; ``resampled``:
    (step k, ESS / N, reason) of every resampling, k = 0 for the start; ``collapsed``
    (module docstring); ``wall_time_s``."""

    x: torch.Tensor
    weights: torch.Tensor
    betas: torch.Tensor
    ess: torch.Tensor
    hmc_acceptance: torch.Tensor
    flux_acceptance: torch.Tensor
    distinct: torch.Tensor
    start_ess: float = 1.0
    start_distinct: float = 1.0
    collapsed: bool = False
    resampled: list[tuple[int, float, str]] = field(default_factory=list)
    wall_time_s: float = 0.0

    @property
    def min_distinct(self) -> float:
        """The smallest effective fraction of distinct particles, start included."""
        return min([self.start_distinct, *self.distinct.tolist()])


def normalised(log_w: torch.Tensor) -> torch.Tensor:
    """exp(log_w) / sum exp(log_w), computed with the maximum subtracted."""
    return torch.softmax(log_w, dim=0)


def conditional_ess_fraction(weights: torch.Tensor, log_increment: torch.Tensor) -> float:
    """(sum_i W_i w_i)^2 / sum_i W_i w_i^2 for normalised weights W and increments
    w = exp(log_increment): 1 when every w_i is equal, smaller as they spread."""
    log_w = log_increment - log_increment.max()
    log_mean = torch.logsumexp(torch.log(weights) + log_w, dim=0)
    log_square = torch.logsumexp(torch.log(weights) + 2 * log_w, dim=0)
    return float(torch.exp(2 * log_mean - log_square))


def next_beta(weights: torch.Tensor, unit_action: torch.Tensor, beta: float, target: float,
              ess_fraction: float) -> float:
    """The next coupling (step 1 of the module docstring): the target if the whole step
    keeps a conditional ESS fraction >= ``ess_fraction``, else the bisection's point
    where the fraction equals it (to BISECTION_STEPS halvings)."""
    if conditional_ess_fraction(weights, -(target - beta) * unit_action) >= ess_fraction:
        return target
    lo, hi = 0.0, target - beta
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if conditional_ess_fraction(weights, -mid * unit_action) >= ess_fraction:
            lo = mid
        else:
            hi = mid
    return beta + lo if lo > 0 else beta + hi


def distinct_fraction(x: torch.Tensor, weights: torch.Tensor) -> float:
    """Effective number of distinct particles / N: the Kish ESS 1 / sum_c W_c^2 over the
    classes c of bit-identical configurations, W_c the summed normalised weights of the
    class (module docstring); 1 / N for N copies of one configuration."""
    _, cls = torch.unique(x.flatten(1), dim=0, return_inverse=True)
    w = torch.zeros(int(cls.max()) + 1, dtype=torch.float64, device=x.device)
    w.index_add_(0, cls, weights.double())
    w = w / w.sum()
    return float(1.0 / torch.sum(w * w)) / x.shape[0]


def systematic_resample(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices of N particles drawn by systematic resampling: one uniform u in [0, 1),
    points (u + j) / N, j = 0 .. N-1, against the cumulative weights.  Particle i is
    copied floor(N W_i) or floor(N W_i) + 1 times, E[copies] = N W_i, so the
    equally weighted mean of any observable is unbiased for its weighted mean."""
    n = weights.shape[0]
    u = torch.rand((), generator=generator, dtype=torch.float64, device=weights.device)
    points = (u + torch.arange(n, dtype=torch.float64, device=weights.device)) / n
    cumulative = torch.cumsum(weights.double(), dim=0)
    cumulative[-1] = 1.0    # rounding: the last point must fall inside
    return torch.searchsorted(cumulative, points, right=True).clamp_(max=n - 1)


def sample_smc(theory_at: TheoryAt, x: torch.Tensor, beta0: float, beta: float, *, generator: torch.Generator,
               log_w0: torch.Tensor | None = None, ess_fraction: float = 0.9, resample_below: float = 0.5,
               n_moves: int = 3, flux_moves: int = 1, step_size: float = 0.05, n_steps: int = 20,
               min_distinct: float = 0.1) -> SMCResult:
    """Carry particles ``x`` (draws from pi_{beta0}: equally weighted, or with the
    unnormalised log-weights ``log_w0``, -inf or NaN for none) to ``beta`` >= ``beta0``
    (module docstring); returns an :class:`SMCResult`."""
    if not beta >= beta0 > 0:
        raise ValueError(f"need beta >= beta0 > 0, got beta0={beta0}, beta={beta}")
    if not 0 < ess_fraction < 1 or not 0 <= resample_below <= 1 or not 0 <= min_distinct <= 1:
        raise ValueError(f"need 0 < ess_fraction < 1 and 0 <= resample_below, min_distinct <= 1, got "
                         f"{ess_fraction}, {resample_below}, {min_distinct}")
    if n_moves < 0 or flux_moves < 0:
        raise ValueError(f"need n_moves >= 0 and flux_moves >= 0, got {n_moves}, {flux_moves}")
    t0 = time.perf_counter()
    n = x.shape[0]
    unit = theory_at(1.0)
    x = unit.project(x.clone())
    log_w = torch.zeros(n, dtype=torch.float64, device=x.device)
    if log_w0 is not None:
        log_w = torch.nan_to_num(log_w0.to(log_w), nan=-math.inf)
        if not torch.isfinite(log_w).any():
            raise ValueError(f"no finite start log-weight among {n} particles")
    flux = unit.flux_shift(x) if flux_moves else None
    betas, ess, distinct, hmc_acc, flux_acc, resampled = [float(beta0)], [], [], [], [], []

    def move(x, coupling):
        """``n_moves`` HMC trajectories at ``coupling``, each followed by ``flux_moves`` flux
        moves; returns the particles and the two acceptance rates."""
        theory = theory_at(coupling)
        action = theory.action(x)
        n_hmc = n_flux = 0
        for _ in range(n_moves):
            x, action, accepted, _ = hmc_step(theory, x, step_size, n_steps, generator, action)
            n_hmc += int(accepted.sum())
            for _ in range(flux_moves):
                x, action, accepted = flux_move(theory, x, action, flux, generator)
                n_flux += int(accepted.sum())
        return (x, n_hmc / (n * n_moves) if n_moves else math.nan,
                n_flux / (n * n_moves * flux_moves) if n_moves and flux_moves else math.nan)

    weights = normalised(log_w)
    start_ess = float(1.0 / torch.sum(weights * weights)) / n
    start_distinct = distinct_fraction(x, weights)
    if log_w0 is not None:   # importance resampling and moves at beta0
        if start_ess < resample_below:
            x = x[systematic_resample(weights, generator)]
            log_w = torch.zeros_like(log_w)
            resampled.append((0, start_ess, f"start: ESS {start_ess:.3f} N < {resample_below:g} N "
                                            f"at beta {beta0:.6g}"))
        x = move(x, float(beta0))[0]
    current = float(beta0)
    while current < beta:
        if len(betas) > MAX_STEPS:
            raise RuntimeError(f"SMC took more than {MAX_STEPS} steps from beta {beta0} to {beta}")
        unit_action = unit.action(x).double()
        new = next_beta(normalised(log_w), unit_action, current, beta, ess_fraction)
        log_w = log_w - (new - current) * unit_action
        weights = normalised(log_w)
        ess_k = float(1.0 / torch.sum(weights * weights)) / n
        ess.append(ess_k)
        betas.append(new)
        current = new
        if ess_k < resample_below:
            x = x[systematic_resample(weights, generator)]
            log_w = torch.zeros_like(log_w)
            resampled.append((len(betas) - 1, ess_k,
                              f"ESS {ess_k:.3f} N < {resample_below:g} N at beta {new:.6g}"))
        distinct.append(distinct_fraction(x, normalised(log_w)))
        x, a_hmc, a_flux = move(x, current)
        hmc_acc.append(a_hmc)
        flux_acc.append(a_flux)
    betas, ess, distinct, hmc_acc, flux_acc = (torch.tensor(v, dtype=torch.float64)
                                               for v in (betas, ess, distinct, hmc_acc, flux_acc))
    collapsed = min([start_distinct, *distinct.tolist()]) < min_distinct
    return SMCResult(x, normalised(log_w), betas, ess, hmc_acc, flux_acc, distinct, start_ess, start_distinct,
                     collapsed, resampled, time.perf_counter() - t0)


def run_replicas(theory_at: TheoryAt, pool: torch.Tensor, beta0: float, beta: float, *, replicas: int,
                 n_particles: int, seed: int, pool_log_w: torch.Tensor | None = None,
                 show_progress: bool = False, **options) -> tuple[list[SMCResult], torch.Tensor]:
    """``replicas`` independent SMC runs (:func:`sample_smc`, ``options`` passed on) from
    disjoint sets of ``n_particles`` configurations of ``pool`` (drawn at beta0, with the
    start log-weights ``pool_log_w`` where given), chosen without replacement by a
    permutation from seed derive_seed(seed, 'smc-draw'); replica r runs on its own
    generator, seed derive_seed(seed, 'smc-replica', r).  Returns the runs and the pool
    indices ``(replicas, n_particles)`` each started from."""
    if replicas < 1 or n_particles < 1:
        raise ValueError(f"need replicas >= 1 and n_particles >= 1, got {replicas}, {n_particles}")
    if replicas * n_particles > pool.shape[0]:
        raise ValueError(f"{replicas} replicas x {n_particles} particles need "
                         f"{replicas * n_particles} configurations, the input holds {pool.shape[0]}")
    draw = torch.Generator().manual_seed(derive_seed(seed, "smc-draw"))
    index = torch.randperm(pool.shape[0], generator=draw)[:replicas * n_particles].view(replicas, n_particles)
    runs = []
    for r in progress(range(replicas), desc=f"smc beta {beta0:g} -> {beta:g}", enabled=show_progress):
        gen = torch.Generator(device=pool.device).manual_seed(derive_seed(seed, "smc-replica", r))
        part = index[r].to(pool.device)
        runs.append(sample_smc(theory_at, pool[part], beta0, beta, generator=gen,
                               log_w0=None if pool_log_w is None else pool_log_w[part], **options))
    return runs, index


def _padded(rows: list[torch.Tensor]) -> np.ndarray:
    """Per-replica 1-d records of different lengths as ``(replicas, longest)``, NaN-padded."""
    out = np.full((len(rows), max(len(r) for r in rows)), np.nan)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r.numpy()
    return out


def smc_ensemble(theory_at: TheoryAt, runs: list[SMCResult], beta0: float, beta: float, *, source: str,
                 **attrs) -> xr.Dataset:
    """The ensemble artifact of SMC replicas (layout in :mod:`physml.cli.smc`): particles
    ``config = replica * N + i``, per-configuration ``replica``, ``weight`` (normalised
    within each replica) and ``action`` (S at ``beta``); the ladder and per-step records
    over ``(replica, smc_step)``; per replica the start's ESS, its smallest fraction of
    distinct particles and whether it collapsed; the resampling events over
    ``resample_event``; the theory's couplings (at ``beta``), ``beta0``, ``source``,
    ``collapsed_replicas`` and ``attrs`` as attributes."""
    theory = theory_at(beta)
    x = torch.cat([r.x for r in runs]).detach().double().cpu()
    n = runs[0].x.shape[0]
    events = [(i, k, e, why) for i, r in enumerate(runs) for k, e, why in r.resampled]
    n_steps = np.array([len(r.betas) - 1 for r in runs])
    ds = xr.Dataset(
        {
            theory.field_name: (("config", *theory.site_dims), x.numpy()),
            "replica": ("config", np.repeat(np.arange(len(runs)), n),
                        {"long_name": "independent SMC run the particle belongs to"}),
            "weight": ("config", torch.cat([r.weights for r in runs]).double().cpu().numpy(),
                       {"long_name": "final importance weight, normalised to sum 1 within each replica"}),
            "action": ("config", theory.action(x).numpy(), {"long_name": "action S at the target beta"}),
            "smc_beta": (("replica_id", "smc_ladder"), _padded([r.betas for r in runs]),
                         {"long_name": "beta ladder beta_0 .. beta of each replica (NaN past its end)"}),
            "smc_ess": (("replica_id", "smc_step"), _padded([r.ess for r in runs]),
                        {"long_name": "Kish ESS / N after the reweighting of each step, before resampling"}),
            "smc_hmc_acceptance": (("replica_id", "smc_step"), _padded([r.hmc_acceptance for r in runs]),
                                   {"long_name": "HMC acceptance of each step's moves"}),
            "smc_flux_acceptance": (("replica_id", "smc_step"), _padded([r.flux_acceptance for r in runs]),
                                    {"long_name": "flux-move acceptance of each step's moves"}),
            "smc_distinct": (("replica_id", "smc_step"), _padded([r.distinct for r in runs]),
                             {"long_name": "effective distinct particles / N before each step's moves"}),
            "smc_n_steps": ("replica_id", n_steps, {"long_name": "steps of the ladder of each replica"}),
            "smc_start_ess": ("replica_id", np.array([r.start_ess for r in runs]),
                              {"long_name": "Kish ESS / N of the start weights (1: equal weights)"}),
            "smc_min_distinct": ("replica_id", np.array([r.min_distinct for r in runs]),
                                 {"long_name": "smallest effective fraction of distinct particles, start included"}),
            "smc_collapsed": ("replica_id", np.array([r.collapsed for r in runs], dtype=np.int8),
                              {"long_name": "1: the replica's particles collapsed (physml.mc.smc)"}),
            "replica_wall_time_s": ("replica_id", np.array([r.wall_time_s for r in runs]), {"units": "s"}),
            "resample_replica": ("resample_event", np.array([e[0] for e in events], dtype=np.int64)),
            "resample_step": ("resample_event", np.array([e[1] for e in events], dtype=np.int64),
                              {"long_name": "step k (1 = first) after whose reweighting the replica resampled"}),
            "resample_ess": ("resample_event", np.array([e[2] for e in events], dtype=float),
                             {"long_name": "Kish ESS / N that triggered the resampling"}),
        },
        coords={"config": np.arange(x.shape[0]), "replica_id": np.arange(len(runs)),
                "smc_ladder": np.arange(int(n_steps.max()) + 1), "smc_step": np.arange(1, int(n_steps.max()) + 1)},
        attrs={"theory": theory.name, "source": source, "L": int(x.shape[-1]), "beta0": float(beta0),
               "replicas": len(runs), "n_particles": int(n),
               "resampling_reasons": "; ".join(f"replica {i} step {k}: {why}" for i, k, _, why in events),
               "collapsed_replicas": int(sum(r.collapsed for r in runs)),
               "wall_time_s": float(sum(r.wall_time_s for r in runs))},
    )
    ds.attrs.update({**coupling_attrs(theory), **attrs})
    return ds
