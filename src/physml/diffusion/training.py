"""Denoising score matching on lattice ensembles, with exact checkpoint/resume.

Loss (PHYSICS.md section 3), weighted by sigma(t)^2:

    L = E_{t ~ U(t_min, 1), x0, z ~ N(0, 1)} || sigma(t) s_theta(x0 + sigma(t) z, t) + z ||^2 / V

(per site, V = number of field components); optionally t is drawn with sigma(t)
log-uniform instead (:func:`sample_times`).  The data are normalised by a
scale with no shift (:func:`normalisation_scale`); the score is odd by
construction (:class:`physml.diffusion.model.ScoreModel`); each batch is
augmented by a random element of the lattice symmetry group: translations,
reflections and 90-degree rotations (:func:`augment`).  Adam, optional cosine
learning-rate decay, and an exponential moving average (EMA) of the weights,
which is what the model file holds.

Periodic fields (U(1) link angles, ``periodic=True``).  The data are angles in
radians, not normalised; the augmentation is a random translation and a random
gauge transformation of every configuration (:func:`augment_links`); the noisy
input is wrapped, x_t = wrap(x0 + sigma(t) z), while the regression target stays
-z / sigma(t).  This is denoising score matching for the *wrapped* Gaussian kernel
p_t(x | x0) = sum_k N(x + 2 pi k; x0, sigma^2): its score is the posterior mean over
the winding k of -(x + 2 pi k - x0) / sigma^2, and -z / sigma(t) is exactly that
quantity for the winding that occurred, so the minimiser of the loss is the exact
score of the periodic marginal p_t at every noise level, not an approximation.
At small sigma (the regime of the final sampler steps, MALA and annealing) only
k = 0 contributes and the kernel is the ordinary Gaussian; at large sigma the
marginal is uniform on the torus and the learned score tends to zero, which the
wrapped prior (uniform for sigma(1) >> pi) matches.

Determinism and resume.  Every random number of the loop (data order,
augmentation, t, z) comes from one ``torch.Generator`` seeded from ``seed``;
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

from physml.diffusion.model import ScoreModel, build_score_model
from physml.io.artifacts import atomic_path, canonical_json
from physml.lattice.u1 import random_gauge_transform
from physml.progress import progress

N_T_BINS = 5
T_SAMPLING = ("uniform", "log_sigma")


@dataclass
class TrainConfig:
    """Settings of :func:`train_score_model` (all plain values; stored in the model file)."""

    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    lr_schedule: str = "cosine"      # constant | cosine (to lr * lr_final_factor)
    lr_final_factor: float = 0.05
    ema_decay: float = 0.999
    t_min: float = 1e-5
    t_sampling: str = "uniform"      # uniform in t | log_sigma: uniform in log sigma(t)
    normalisation: str = "rms"       # rms | minmax (both without a shift) | none
    periodic: bool = False           # angles in [-pi, pi): wrapped inputs, gauge augmentation
    augment: bool = True
    odd: bool = True
    grad_clip: float = 1.0           # max global gradient norm (0 = off)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("need epochs >= 1, batch_size >= 1, lr > 0")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        if self.normalisation not in ("rms", "minmax", "none"):
            raise ValueError(f"normalisation must be rms, minmax or none, got {self.normalisation!r}")
        if self.periodic and self.normalisation != "none":
            raise ValueError("periodic fields (angles) need normalisation 'none'")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 < self.t_min < 1:
            raise ValueError(f"t_min must be in (0, 1), got {self.t_min}")
        if self.t_sampling not in T_SAMPLING:
            raise ValueError(f"t_sampling must be one of {T_SAMPLING}, got {self.t_sampling!r}")

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


def sample_times(sde, n: int, t_min: float, kind: str, generator: torch.Generator,
                 device=None, dtype=torch.float32) -> torch.Tensor:
    """Training times: t ~ U(t_min, 1) (``uniform``), or sigma(t) log-uniform between
    sigma(t_min) and sigma(1) (``log_sigma``), which gives every decade of noise level
    the same share of the batch: the small-t end, where the score approaches the
    physics drift -dS/dphi and the broken phase's fluctuations live, gets as much
    training as the large-t end.  Any positive weighting of t has the same minimiser
    (the exact score), so this only moves where the network's capacity goes."""
    u = torch.rand(n, generator=generator, device=device, dtype=dtype)
    if kind == "uniform":
        return t_min + (1.0 - t_min) * u
    lo, hi = (math.log(float(sde.marginal_std(torch.tensor(t, dtype=torch.float64)))) for t in (t_min, 1.0))
    return sde.time_for_std(torch.exp(lo + (hi - lo) * u)).clamp(t_min, 1.0)


def dsm_loss(model: ScoreModel, x0: torch.Tensor, generator: torch.Generator, t_min: float,
             t_sampling: str = "uniform", return_t: bool = False):
    """sigma(t)^2-weighted denoising score matching loss per site, averaged over the batch
    (with ``return_t``: also per-sample losses and times)."""
    n = x0.shape[0]
    t = sample_times(model.sde, n, t_min, t_sampling, generator, x0.device, x0.dtype)
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    std = model.sde.marginal_std(t).reshape(-1, *([1] * (x0.dim() - 1)))
    score = model(model.wrap(x0 + std * z), t)
    per_sample = (std * score + z).square().flatten(1).mean(dim=1)
    loss = per_sample.mean()
    return (loss, per_sample.detach(), t) if return_t else loss


class EMA:
    """Exponential moving average of parameters and buffers, decay warmed up as
    min(decay, (1 + n) / (10 + n)) after n updates."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.n_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.n_updates += 1
        d = min(self.decay, (1 + self.n_updates) / (10 + self.n_updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
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


def _history_dataset(hist: dict[str, list], cfg: TrainConfig) -> xr.Dataset:
    epochs = np.arange(1, len(hist["loss"]) + 1)
    edges = np.linspace(0.0, 1.0, N_T_BINS + 1)
    return xr.Dataset(
        {
            "loss": ("epoch", np.asarray(hist["loss"]),
                     {"long_name": "sigma^2-weighted DSM loss per site, mean over the epoch"}),
            "loss_t": (("epoch", "t_bin"), np.asarray(hist["loss_t"]).reshape(len(epochs), N_T_BINS),
                       {"long_name": "DSM loss per site by diffusion-time bin"}),
            "lr": ("epoch", np.asarray(hist["lr"]), {"long_name": "Adam learning rate"}),
            "epoch_time": ("epoch", np.asarray(hist["epoch_time"]), {"units": "s"}),
            "wall_time": ("epoch", np.cumsum(hist["epoch_time"]),
                          {"units": "s", "long_name": "cumulative training wall time"}),
            "samples_per_s": ("epoch", np.asarray(hist["samples_per_s"]), {"units": "configs/s"}),
        },
        coords={"epoch": epochs, "t_bin": np.arange(N_T_BINS),
                "t_lo": ("t_bin", edges[:-1]), "t_hi": ("t_bin", edges[1:])},
        attrs={"train_config_json": canonical_json(asdict(cfg))},
    )


def train_score_model(data: torch.Tensor, *, sde: dict[str, Any], net: dict[str, Any],
                      cfg: TrainConfig, seed: int, device: torch.device | str = "cpu",
                      checkpoint: str | os.PathLike | None = None, data_sha256: str = "",
                      show_progress: bool = True,
                      on_epoch: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a score model on ``data`` (physical units, ``(n, L, L)`` or ``(n, C, L, L)``).

    ``checkpoint``: file written after every epoch and resumed from when present and
    compatible.  ``on_epoch(epoch, history)`` is called after each epoch's checkpoint
    (tests use it to interrupt a run).  Returns the EMA model and the history Dataset.
    """
    device = torch.device(device)
    data = torch.as_tensor(data)
    scale = normalisation_scale(data, cfg.normalisation)
    x_all = (data.to(torch.float32) / scale).to(device)
    n = x_all.shape[0]
    fp = fingerprint(sde, net, asdict(cfg), int(seed), data_sha256 or float(data.double().sum()),
                     list(data.shape))

    torch.manual_seed(seed)
    if cfg.periodic and (data.dim() != 4 or data.shape[1] != 2):
        raise ValueError(f"periodic training needs U(1) links shaped (n, 2, L, L), got {tuple(data.shape)}")
    model = build_score_model(sde, net, scale=scale, odd=cfg.odd, periodic=cfg.periodic).to(device)
    if data.shape[-1] % model.downsampling:
        raise ValueError(f"L = {data.shape[-1]} is not a multiple of the U-Net's downsampling "
                         f"factor {model.downsampling}")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ema = EMA(model, cfg.ema_decay)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    hist: dict[str, list] = {k: [] for k in ("loss", "loss_t", "lr", "epoch_time", "samples_per_s")}
    start_epoch = 0

    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path is not None and ckpt_path.is_file():
        try:
            state = torch.load(ckpt_path, map_location=device, weights_only=False)
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
        bin_sum = torch.zeros(N_T_BINS, dtype=torch.float64)
        bin_n = torch.zeros(N_T_BINS, dtype=torch.float64)
        for i in range(0, n, cfg.batch_size):
            x0 = x_all[perm[i:i + cfg.batch_size]]
            if cfg.augment:
                x0 = augment_links(x0, gen) if cfg.periodic else augment(x0, gen)
            loss, per_sample, t = dsm_loss(model, x0, gen, cfg.t_min, cfg.t_sampling, return_t=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            ema.update(model)
            tot += float(loss.detach()) * x0.shape[0]
            tot_n += x0.shape[0]
            b = torch.clamp((t * N_T_BINS).long(), max=N_T_BINS - 1).cpu()
            bin_sum.index_add_(0, b, per_sample.double().cpu())
            bin_n.index_add_(0, b, torch.ones_like(per_sample, dtype=torch.float64).cpu())
        dt = time.perf_counter() - t0
        hist["loss"].append(tot / tot_n)
        hist["loss_t"].extend((bin_sum / bin_n.clamp(min=1)).tolist())
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
    return TrainResult(model=model, history=_history_dataset(hist, cfg), resumed_from_epoch=start_epoch,
                       meta={"scale": scale, "fingerprint": fp, "n_train": n})
