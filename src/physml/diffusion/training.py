"""Denoising score matching on lattice ensembles, with exact checkpoint/resume.

Every model is a variance-exploding one, x = x0 + sigma z with z ~ N(0, 1) per
component (:mod:`physml.diffusion.model`), trained to denoise: with the denoiser
D(x; sigma) = x + sigma^2 s(x; sigma), the loss is the preconditioner's weighted
|D(x; sigma) - x0|^2 (:meth:`physml.diffusion.precond.Scalings.loss`: every mode in
units of its output scale; with the zero-mode split the site average's error is added
``zero_mode_weight`` times as much as all other modes together), averaged over sigma,
x0 and z.  Any positive weighting of the modes and noise levels has the same minimiser
(the exact score), so these choices only move where the network's capacity goes.  The
two recipes:

- ``edm`` (Karras et al. 2022): sigma log-uniform in [sigma_min, sigma_max] (or
  log-normal, ``sigma_distribution``).  ``sigma_max`` is sized from the data (Song and
  Ermon 2020, technique 1: at least the largest distance between two training
  configurations): the maximum pairwise distance of the normalised training set, times
  sqrt(V_gen / V) for generation at a larger volume V_gen (the distance between
  configurations, the zero mode's included, grows at most like sqrt(V) in normalised
  units), computed by :func:`data_sigma_max` and recorded.  Scalar fields get the
  zero-mode split with the law of the training site averages
  (:class:`physml.diffusion.precond.ZeroModeLaw`), and with ``spectral`` per-momentum
  scalings from the propagator law fitted to their fluctuations.
- ``song`` (score_sde, the papers' recipe): the VE SDE with sigma(t)^2 =
  (s^(2t) - 1) / (2 ln s), t uniform in [t_min, 1] (or sigma(t) log-uniform,
  ``t_sampling``): the sigma^2-weighted score loss |sigma s + z|^2, no zero-mode split.

The data are normalised by a scale with no shift (:func:`normalisation_scale`); the
score is odd by construction (:class:`physml.diffusion.model.ScoreModel`); each batch
is augmented by a random element of the lattice symmetry group: translations,
reflections and 90-degree rotations (:func:`augment`).  Adam, optional cosine
learning-rate decay, and an exponential moving average (EMA) of the weights, which is
what the model file holds; its half-life is a fraction of all optimiser steps, so it
acts at any run length.

Periodic fields (U(1) link angles, ``periodic=True``, song recipe).  The data are
angles in radians, not normalised; the augmentation is a random translation and a
random gauge transformation of every configuration (:func:`augment_links`); the noisy
input is wrapped, x = wrap(x0 + sigma z), while the regression target of the score
stays -z / sigma (the denoiser's target x - sigma z, unwrapped).  This is denoising
score matching for the *wrapped* Gaussian kernel p(x | x0) = sum_k N(x + 2 pi k; x0,
sigma^2): its score is the posterior mean over the winding k of
-(x + 2 pi k - x0) / sigma^2, and -z / sigma is exactly that quantity for the winding
that occurred, so the minimiser of the loss is the exact score of the periodic
marginal at every noise level.  At large sigma the marginal is uniform on the torus
and the learned score tends to zero, which the wrapped prior matches.
With ``plaquette_law`` the denoiser carries the noised law of independent plaquettes
at beta0 (:class:`physml.diffusion.precond.PlaquetteLaw`) and the network learns the rest.

Determinism and resume.  Every random number of the loop (data order,
augmentation, sigma, z) comes from one ``torch.Generator`` seeded from ``seed``;
the initial weights from ``torch.manual_seed(seed)``.  After every epoch a
checkpoint (weights, EMA, optimiser, generator state, history) is written
atomically; a run started again with the same inputs finds it and continues
with the next epoch, so a job killed at any point and restarted ends with
bit-identical weights to an uninterrupted run (on the same device and
software).  A checkpoint whose fingerprint (config + data hash) differs is
ignored.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import xarray as xr

from physml.diffusion.model import ScoreModel, build_score_model, song_sigma_range
from physml.diffusion.precond import RECIPES, ZeroModeLaw, fit_propagator
from physml.io.artifacts import atomic_path, canonical_json
from physml.lattice.u1 import random_gauge_transform
from physml.progress import progress

N_SIGMA_BINS = 6
T_SAMPLING = ("uniform", "log_sigma")
SIGMA_DISTRIBUTIONS = ("log_uniform", "log_normal")


@dataclass
class TrainConfig:
    """Settings of :func:`train_score_model` (all plain values; stored in the model file).
    Noise levels are in normalised units."""

    recipe: str = "edm"              # edm | song (module docstring)
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    lr_schedule: str = "cosine"      # constant | cosine (to lr * lr_final_factor)
    lr_final_factor: float = 0.05
    ema_halflife: float = 0.1        # EMA half-life as a fraction of all optimiser steps
    sigma_min: float = 2e-3          # edm: smallest training noise
    sigma_distribution: str = "log_uniform"   # edm: log_uniform | log_normal in [sigma_min, sigma_max]
    generate_L: int = 0              # edm: largest L to be generated (sizes sigma_max; 0: training L)
    t_min: float = 1e-5              # song: smallest training time
    t_sampling: str = "uniform"      # song: uniform in t | log_sigma
    zero_mode_weight: float = 1.0    # weight of the zero mode's error (zero-mode split only)
    spectral: bool = True            # edm, scalar fields: per-momentum scalings (module docstring)
    normalisation: str = "rms"       # rms | minmax (both without a shift) | none
    periodic: bool = False           # angles in [-pi, pi): wrapped inputs, gauge augmentation
    plaquette_law: bool = False      # periodic: the law of independent plaquettes in the denoiser
    augment: bool = True
    odd: bool = True
    grad_clip: float = 1.0           # max global gradient norm (0 = off)

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {list(RECIPES)}, got {self.recipe!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("need epochs >= 1, batch_size >= 1, lr > 0")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        if self.normalisation not in ("rms", "minmax", "none"):
            raise ValueError(f"normalisation must be rms, minmax or none, got {self.normalisation!r}")
        if self.periodic and (self.normalisation != "none" or self.recipe != "song"
                              or self.zero_mode_weight):
            raise ValueError("periodic fields (angles) need normalisation 'none', recipe 'song' "
                             "and zero_mode_weight 0")
        if self.plaquette_law and not self.periodic:
            raise ValueError("plaquette_law is for U(1) links (periodic fields)")
        if not 0 < self.ema_halflife <= 1:
            raise ValueError(f"ema_halflife must be in (0, 1] (a fraction of the steps), got {self.ema_halflife}")
        if not 0 < self.t_min < 1:
            raise ValueError(f"t_min must be in (0, 1), got {self.t_min}")
        if not self.sigma_min > 0:
            raise ValueError(f"sigma_min must be > 0, got {self.sigma_min}")
        if self.t_sampling not in T_SAMPLING:
            raise ValueError(f"t_sampling must be one of {T_SAMPLING}, got {self.t_sampling!r}")
        if self.sigma_distribution not in SIGMA_DISTRIBUTIONS:
            raise ValueError(f"sigma_distribution must be one of {SIGMA_DISTRIBUTIONS}, "
                             f"got {self.sigma_distribution!r}")
        if self.zero_mode_weight < 0 or self.generate_L < 0:
            raise ValueError("need zero_mode_weight >= 0 and generate_L >= 0")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based)."""
        if self.lr_schedule == "constant" or self.epochs == 1:
            return self.lr
        frac = epoch / (self.epochs - 1)
        lo = self.lr * self.lr_final_factor
        return lo + 0.5 * (self.lr - lo) * (1 + math.cos(math.pi * frac))


def normalisation_scale(phi: torch.Tensor, kind: str = "rms") -> float:
    """Scale of the data without a shift: RMS over all sites, max |phi| (symmetric min-max),
    or 1 (``none``)."""
    if kind == "none":
        return 1.0
    if kind == "rms":
        return float(phi.double().square().mean().sqrt())
    if kind == "minmax":
        return float(phi.double().abs().max())
    raise ValueError(f"unknown normalisation {kind!r}")


def data_sigma_max(x: torch.Tensor, generate_L: int = 0, max_configs: int = 2048) -> dict[str, float]:
    """Noise scale sized from normalised data ``x`` ``(n, ...)`` (module docstring): the
    maximum pairwise distance of (at most ``max_configs`` of) the configurations, scaled by
    sqrt(V_gen / V) to the largest generated lattice (``generate_L``; 0: the training L).
    Also returns the zero mode's spread, std of sum_x x / sqrt(V), scaled the same way."""
    flat = x.double().flatten(1)[:max_configs]
    volume = x.shape[-1] * x.shape[-2]
    gen_volume = (generate_L or x.shape[-1]) * (generate_L or x.shape[-2])
    factor = math.sqrt(gen_volume / volume)
    d_max = float(torch.cdist(flat, flat).max())
    zero = float((flat.sum(1) / math.sqrt(flat.shape[1])).std())
    return {"sigma_max": d_max * factor, "max_pair_distance": d_max,
            "zero_mode_spread": zero * factor, "volume_factor": factor}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply an independent random lattice symmetry to each configuration.

    ``x`` is ``(batch, L, L)`` or ``(batch, C, L, L)`` with a square lattice; each
    configuration gets a random translation, reflections of either axis and a
    transposition, i.e. a uniform element of translations x the dihedral group D4
    (reflections and 90-degree rotations).  This is for scalar channels;
    U(1) links use :func:`augment_links`.
    """
    n, L = x.shape[0], x.shape[-1]
    if x.shape[-2] != L:
        raise ValueError("augmentation needs a square lattice")
    dev = x.device
    r = torch.randint(0, L, (n, 2), generator=generator, device=dev)
    s = torch.randint(0, 2, (n, 3), generator=generator, device=dev)
    sign = 1 - 2 * s[:, :2]                       # reflection of each axis
    ar = torch.arange(L, device=dev)
    ix = (sign[:, 0, None] * ar[None, :] + r[:, 0, None]) % L   # (n, L)
    iy = (sign[:, 1, None] * ar[None, :] + r[:, 1, None]) % L
    b = torch.arange(n, device=dev)
    if x.dim() == 3:
        out = x[b[:, None, None], ix[:, :, None], iy[:, None, :]]
        return torch.where(s[:, 2, None, None].bool(), out.transpose(-1, -2), out)
    out = x[b[:, None, None, None], torch.arange(x.shape[1], device=dev)[None, :, None, None],
            ix[:, None, :, None], iy[:, None, None, :]]
    return torch.where(s[:, 2, None, None, None].bool(), out.transpose(-1, -2), out)


def augment_links(theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """U(1) links ``(batch, 2, L, L)``: an independent random translation and a uniformly
    random gauge transformation of each configuration (both leave the Wilson action and
    every gauge-invariant observable unchanged)."""
    n, L0, L1 = theta.shape[0], theta.shape[-2], theta.shape[-1]
    r = torch.randint(0, L0 * L1, (n,), generator=generator, device=theta.device)
    ix = (torch.arange(L0, device=theta.device)[None, :] + (r // L1)[:, None]) % L0
    iy = (torch.arange(L1, device=theta.device)[None, :] + (r % L1)[:, None]) % L1
    b = torch.arange(n, device=theta.device)[:, None, None, None]
    mu = torch.arange(2, device=theta.device)[None, :, None, None]
    shifted = theta[b, mu, ix[:, None, :, None], iy[:, None, None, :]]
    return random_gauge_transform(shifted, generator)


def sample_sigmas(model: ScoreModel, n: int, cfg: TrainConfig, generator: torch.Generator,
                  device=None, dtype=torch.float32) -> torch.Tensor:
    """Training noise levels ``(n,)`` (module docstring).  edm: log-uniform in the model's
    [sigma_min, sigma_max], or log-normal with that range as its +-2 sigma interval,
    clipped to it.  song: t ~ U(t_min, 1) (``uniform``) or sigma(t) log-uniform
    (``log_sigma``), mapped to sigma(t)."""
    lo, hi = math.log(model.sigma_min), math.log(model.sigma_max)
    if cfg.recipe == "song" and cfg.t_sampling == "uniform":
        t = cfg.t_min + (1.0 - cfg.t_min) * torch.rand(n, generator=generator, device=device,
                                                       dtype=torch.float64)
        return model.precond.sde.marginal_std(t).to(dtype)
    if cfg.recipe == "edm" and cfg.sigma_distribution == "log_normal":
        z = torch.randn(n, generator=generator, device=device, dtype=torch.float64)
        return torch.exp(((lo + hi) / 2 + (hi - lo) / 4 * z).clamp(lo, hi)).to(dtype)
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return torch.exp(lo + (hi - lo) * u).to(dtype)


def dsm_loss(model: ScoreModel, x0: torch.Tensor, generator: torch.Generator, cfg: TrainConfig,
             return_sigma: bool = False):
    """Denoising loss of the module docstring, averaged over the batch (with
    ``return_sigma``: also per-sample losses and noise levels)."""
    n = x0.shape[0]
    sigma = sample_sigmas(model, n, cfg, generator, x0.device, x0.dtype)
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    noise = sigma.reshape(-1, *([1] * (x0.dim() - 1))) * z
    x = model.wrap(x0 + noise)
    err = model.denoise(x, sigma) - (x - noise)   # target x - sigma z: x0 unwrapped
    channels = (lambda v: v[:, None]) if x.dim() == 3 else (lambda v: v)
    per_sample = model.precond.loss(channels(err), channels(x), sigma, cfg.zero_mode_weight)
    loss = per_sample.mean()
    return (loss, per_sample.detach(), sigma) if return_sigma else loss


class EMA:
    """Exponential moving average of parameters and buffers with a fixed ``decay`` per step
    (from the half-life: decay = 2^(-1 / half-life in steps))."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.n_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @classmethod
    def from_halflife(cls, model: torch.nn.Module, halflife_steps: float) -> "EMA":
        return cls(model, 0.5 ** (1.0 / max(1.0, halflife_steps)))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.n_updates += 1
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "n_updates": self.n_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = state["decay"]
        self.n_updates = state["n_updates"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}


@dataclass
class TrainResult:
    model: ScoreModel                  # EMA weights, eval mode
    history: xr.Dataset
    resumed_from_epoch: int = 0        # epochs already done when this call started
    meta: dict[str, Any] = field(default_factory=dict)


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()


def _history_dataset(hist: dict[str, list], cfg: TrainConfig, edges: np.ndarray) -> xr.Dataset:
    epochs = np.arange(1, len(hist["loss"]) + 1)
    return xr.Dataset(
        {
            "loss": ("epoch", np.asarray(hist["loss"]),
                     {"long_name": "weighted denoising loss per component, mean over the epoch"}),
            "loss_sigma": (("epoch", "sigma_bin"),
                           np.asarray(hist["loss_sigma"]).reshape(len(epochs), N_SIGMA_BINS),
                           {"long_name": "weighted denoising loss by noise-level bin (log-spaced)"}),
            "lr": ("epoch", np.asarray(hist["lr"]), {"long_name": "Adam learning rate"}),
            "epoch_time": ("epoch", np.asarray(hist["epoch_time"]), {"units": "s"}),
            "wall_time": ("epoch", np.cumsum(hist["epoch_time"]),
                          {"units": "s", "long_name": "cumulative training wall time"}),
            "samples_per_s": ("epoch", np.asarray(hist["samples_per_s"]), {"units": "configs/s"}),
        },
        coords={"epoch": epochs, "sigma_bin": np.arange(N_SIGMA_BINS),
                "sigma_lo": ("sigma_bin", edges[:-1], {"long_name": "noise level (normalised units)"}),
                "sigma_hi": ("sigma_bin", edges[1:], {"long_name": "noise level (normalised units)"})},
        attrs={"train_config_json": canonical_json(asdict(cfg))},
    )


# Network defaults per recipe, for keys the caller leaves out.  The edm noise label
# ln(sigma)/4 spans about 2.5 over the noise range, where Fourier frequencies of scale 16
# decorrelate neighbouring noise levels (docs/diffusion_phi4.md, noise-label embedding); the
# song label t in [0, 1] keeps the papers' 16.  The field statistics are for scalar fields.
RECIPE_NETWORK = {"edm": {"field_stats": True, "adaptive_norm": True, "fourier_scale": 1.0},
                  "song": {"field_stats": False, "adaptive_norm": False, "fourier_scale": 16.0}}


def recipe_network(net: dict[str, Any], cfg: TrainConfig) -> dict[str, Any]:
    """``net`` with the recipe's defaults (:data:`RECIPE_NETWORK`) for the keys it lacks."""
    defaults = dict(RECIPE_NETWORK[cfg.recipe])
    if cfg.periodic or net.get("gauge"):
        defaults["field_stats"] = False
    return {**defaults, **net}


def noise_range(x: torch.Tensor, sde: dict[str, Any], cfg: TrainConfig) -> dict[str, float]:
    """(sigma_min, sigma_max) of a model trained on normalised data ``x`` with ``cfg``, and
    for edm the data measurements that size sigma_max (:func:`data_sigma_max`)."""
    if cfg.recipe == "song":
        lo, hi = song_sigma_range(sde, cfg.t_min)
        return {"sigma_min": lo, "sigma_max": hi}
    sized = data_sigma_max(x, cfg.generate_L)
    if sized["sigma_max"] <= cfg.sigma_min:
        raise ValueError(f"sigma_max sized from the data ({sized['sigma_max']:.3g}) is not above "
                         f"sigma_min ({cfg.sigma_min:g})")
    return {"sigma_min": cfg.sigma_min, **sized}


def train_score_model(data: torch.Tensor, *, sde: dict[str, Any], net: dict[str, Any],
                      cfg: TrainConfig, seed: int, device: torch.device | str = "cpu",
                      beta0: float | None = None,
                      checkpoint: str | os.PathLike | None = None, data_sha256: str = "",
                      show_progress: bool = True,
                      on_epoch: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a score model on ``data`` (physical units, ``(n, L, L)`` or ``(n, C, L, L)``).

    ``sde``: the VE SDE of the song recipe (ignored by edm); ``net``: backbone
    hyperparameters (:class:`physml.diffusion.unet.UNet`); ``beta0``: the coupling of the
    data, for physics conditioning.  ``checkpoint``: file written after every epoch and
    resumed from when present and compatible.  ``on_epoch(epoch, history)`` is called after
    each epoch's checkpoint (tests use it to interrupt a run).  Returns the EMA model and
    the history Dataset; ``meta`` holds the normalisation and the noise range's sizing.
    """
    device = torch.device(device)
    data = torch.as_tensor(data)
    net = recipe_network(net, cfg)
    if cfg.periodic and (data.dim() != 4 or data.shape[1] != 2):
        raise ValueError(f"periodic training needs U(1) links shaped (n, 2, L, L), got {tuple(data.shape)}")
    scale = normalisation_scale(data, cfg.normalisation)
    x_cpu = data.to(torch.float32) / scale
    x_all = x_cpu.to(device)
    n = x_all.shape[0]
    noise = noise_range(x_cpu, sde, cfg)
    x64 = x_cpu.double()
    precond: dict[str, Any] = {"recipe": cfg.recipe}
    if cfg.periodic:
        precond["sigma_data"] = 1.0
    elif cfg.recipe == "edm" and x64.dim() == 3:   # scalar field: the zero-mode split
        m0 = x64.mean(dim=(-2, -1))
        fluct = x64 - m0[:, None, None]
        precond["sigma_data"] = float(fluct.square().mean().sqrt())
        precond["zero_mode"] = asdict(ZeroModeLaw.fit(m0, x64.shape[-1] * x64.shape[-2]))
        if cfg.spectral:
            precond["propagator"] = fit_propagator(fluct)
    else:
        precond["sigma_data"] = float(x64.square().mean().sqrt())
    if cfg.recipe == "song":
        precond["sde"] = sde
    if cfg.plaquette_law:
        if beta0 is None:
            raise ValueError("the plaquette law needs the training coupling beta0")
        precond["plaquette_law"] = {"beta": float(beta0)}
    fp = fingerprint(precond, net, asdict(cfg), int(seed), data_sha256 or float(data.double().sum()),
                     list(data.shape), beta0)

    torch.manual_seed(seed)
    model = build_score_model(net, precond, noise["sigma_min"], noise["sigma_max"], scale=scale,
                              odd=cfg.odd, periodic=cfg.periodic, beta0=beta0).to(device)
    if data.shape[-1] % model.downsampling:
        raise ValueError(f"L = {data.shape[-1]} is not a multiple of the U-Net's downsampling "
                         f"factor {model.downsampling}")
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ema = EMA.from_halflife(model, cfg.ema_halflife * cfg.epochs * steps_per_epoch)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    hist: dict[str, list] = {k: [] for k in ("loss", "loss_sigma", "lr", "epoch_time", "samples_per_s")}
    start_epoch = 0
    edges = np.exp(np.linspace(math.log(model.sigma_min), math.log(model.sigma_max), N_SIGMA_BINS + 1))
    log_edges = torch.log(torch.as_tensor(edges, dtype=torch.float64))

    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path is not None and ckpt_path.is_file():
        try:
            state = torch.load(ckpt_path, map_location=device, weights_only=True)
        except Exception as exc:  # unreadable checkpoint: start over, but say so
            print(f"ignoring unreadable checkpoint {ckpt_path}: {exc}")
            state = None
        if state is not None and state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            ema.load_state_dict(state["ema"])
            gen.set_state(state["generator"].cpu())
            hist = state["history"]
            start_epoch = state["epoch"]
            print(f"resuming from {ckpt_path} after epoch {start_epoch}")
        elif state is not None:
            print(f"ignoring checkpoint {ckpt_path}: made with other settings or data")

    bar = progress(total=cfg.epochs, desc="train", enabled=show_progress)
    bar.update(start_epoch)
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        lr = cfg.lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        perm = torch.randperm(n, generator=gen, device=device)
        tot, tot_n = 0.0, 0
        bin_sum = torch.zeros(N_SIGMA_BINS, dtype=torch.float64)
        bin_n = torch.zeros(N_SIGMA_BINS, dtype=torch.float64)
        for i in range(0, n, cfg.batch_size):
            x0 = x_all[perm[i:i + cfg.batch_size]]
            if cfg.augment:
                x0 = augment_links(x0, gen) if cfg.periodic else augment(x0, gen)
            loss, per_sample, sigma = dsm_loss(model, x0, gen, cfg, return_sigma=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            ema.update(model)
            tot += float(loss.detach()) * x0.shape[0]
            tot_n += x0.shape[0]
            b = (torch.bucketize(torch.log(sigma.detach().double().cpu()), log_edges) - 1)
            b = b.clamp(0, N_SIGMA_BINS - 1)
            bin_sum.index_add_(0, b, per_sample.double().cpu())
            bin_n.index_add_(0, b, torch.ones_like(per_sample, dtype=torch.float64).cpu())
        dt = time.perf_counter() - t0
        hist["loss"].append(tot / tot_n)
        hist["loss_sigma"].extend((bin_sum / bin_n.clamp(min=1)).tolist())
        hist["lr"].append(lr)
        hist["epoch_time"].append(dt)
        hist["samples_per_s"].append(tot_n / dt)
        if ckpt_path is not None:
            state = {"fingerprint": fp, "epoch": epoch + 1, "model": model.state_dict(),
                     "optimizer": opt.state_dict(), "ema": ema.state_dict(),
                     "generator": gen.get_state(), "history": hist}
            with atomic_path(ckpt_path) as tmp:
                torch.save(state, tmp)
        bar.update(1)
        bar.set_postfix(loss=f"{hist['loss'][-1]:.4f}", lr=f"{lr:.2e}")
        if on_epoch is not None:
            on_epoch(epoch + 1, hist)
    bar.close()

    model.load_state_dict(ema.shadow)
    model.eval()
    return TrainResult(model=model, history=_history_dataset(hist, cfg, edges),
                       resumed_from_epoch=start_epoch,
                       meta={"scale": scale, "fingerprint": fp, "n_train": n,
                             "ema_decay": ema.decay, **noise})
