"""Score network backbone: a fully convolutional U-Net on the periodic lattice.

The backbone F(x_in, c_noise) knows nothing of the noise level sigma: it reads the
preconditioned field ``x_in`` and a scalar noise label ``c_noise`` per configuration,
and the preconditioner around it (:mod:`physml.diffusion.model`) turns F into a
denoiser and a score.  In the style of the score_sde tutorial network (Song et al.):
a Gaussian Fourier embedding of the noise label, mixed into every block; GroupNorm;
SiLU; skip connections from each encoder level to the decoder level of the same
resolution.

Every convolution uses **circular padding**, so the network respects the
lattice's periodic boundary and runs on any L divisible by its downsampling
factor 2^(len(channels) - 1): a model trained at L = 16 generates at L = 32.
Downsampling is a stride-2 circular 3x3 convolution, upsampling a 2x2
transposed convolution with stride 2 (each coarse site feeds exactly its own
2x2 block, so no padding is involved and periodicity is exact).

Field statistics (``field_stats=True``, scalar fields).  GroupNorm makes every block
blind to a uniform shift and to the overall amplitude of its input, and in the broken
phase of phi^4 those two numbers (phibar and the RMS) are what the score must restore.
So the per-configuration mean and RMS of each input channel enter the conditioning next
to the noise label (before any normalisation), and a uniform head adds a uniform field
computed from that conditioning to the output: the score along phibar is then a direct
function of (phibar, RMS, sigma).  ``adaptive_norm=True`` applies the conditioning
after GroupNorm as a per-channel scale and shift (h -> norm(h) (1 + a) + b, as in EDM's
networks) instead of adding it before the norm, where the norm partly removes it.

Input ``(batch, in_channels, L, L)``, noise label ``(batch,)``; output like the input.
``in_channels`` is 1 for a scalar field, 2 for U(1) link angles (mu = 0, 1).

Gauge-covariant mode (``gauge=True``, U(1) links only).  A gauge transformation
shifts the links by D alpha and the Gaussian kernel of the SDE is shift invariant,
so every p_sigma of gauge-invariant data is gauge invariant, and so is it under a
constant shift of all links along one direction (which leaves the plaquettes
unchanged).  Its score is therefore orthogonal to all those directions, i.e. of
the form B^T g with B the link -> plaquette incidence map and g one number per
plaquette.  In this mode the network reads the gauge-invariant plaquette features
(cos theta_P, sin theta_P) (periodic by construction), outputs g, and returns
B^T g:

    s_{x,0} = g(x) - g(x - 1),   s_{x,1} = g(x - 0) - g(x)

(:func:`physml.lattice.u1.plaquette_transpose`, the map that turns sin theta_P into the
Wilson force), so the score is exactly gauge covariant and the small-noise limit
-dS/dtheta = B^T (-beta sin theta_P) is a linear function of the features.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from physml.lattice.u1 import plaquette_angles, plaquette_transpose


class GaussianFourierProjection(nn.Module):
    """Fixed random Fourier features [sin(2 pi W c), cos(2 pi W c)], W ~ N(0, scale^2)."""

    def __init__(self, embed_dim: int, scale: float = 16.0):
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even, got {embed_dim}")
        # a buffer: saved with the model, never trained
        self.register_buffer("W", torch.randn(embed_dim // 2) * scale)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        proj = c[:, None] * self.W[None, :] * (2 * math.pi)
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def _groups(channels: int, groups: int) -> int:
    return math.gcd(channels, groups)


class Block(nn.Module):
    """conv (circular) -> GroupNorm -> conditioning -> SiLU.

    ``mode``: ``same`` (3x3, stride 1), ``down`` (3x3, stride 2) or ``up`` (2x2 transposed
    convolution with stride 2, which maps each coarse site to its own 2x2 block).  The
    conditioning vector is added before the norm, or with ``adaptive`` applied after it as
    a per-channel scale and shift.
    """

    def __init__(self, c_in: int, c_out: int, embed_dim: int, groups: int, mode: str = "same",
                 adaptive: bool = False):
        super().__init__()
        if mode not in ("same", "down", "up"):
            raise ValueError(f"unknown block mode {mode!r}")
        if mode == "up":  # each site -> its 2x2 block: no padding, exactly periodic
            self.conv = nn.ConvTranspose2d(c_in, c_out, 2, stride=2, bias=False)
        else:
            self.conv = nn.Conv2d(c_in, c_out, 3, stride=2 if mode == "down" else 1, padding=1,
                                  padding_mode="circular", bias=False)
        self.adaptive = bool(adaptive)
        self.dense = nn.Linear(embed_dim, 2 * c_out if adaptive else c_out)
        self.norm = nn.GroupNorm(_groups(c_out, groups), c_out)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        cond = self.dense(emb)[:, :, None, None]
        if not self.adaptive:
            return self.act(self.norm(self.conv(h) + cond))
        scale, shift = cond.chunk(2, dim=1)
        return self.act(self.norm(self.conv(h)) * (1 + scale) + shift)


class UNet(nn.Module):
    """Backbone F(x_in, c_noise) of the score model (module docstring).

    ``channels`` gives the width of each resolution level (its length is the depth:
    ``[16, 32, 64]`` has three levels, L, L/2, L/4); ``blocks_per_level`` extra
    stride-1 residual blocks deepen every encoder level; ``global_pool`` adds the
    lattice average of the deepest features back to them.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64),
                 embed_dim: int = 64, fourier_scale: float = 16.0, groups: int = 4,
                 blocks_per_level: int = 0, global_pool: bool = False, gauge: bool = False,
                 field_stats: bool = False, adaptive_norm: bool = False):
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        if gauge and in_channels != 2:
            raise ValueError(f"the gauge-covariant network takes U(1) links (2 channels), got {in_channels}")
        if gauge and field_stats:
            raise ValueError("field_stats is for scalar fields; the gauge-covariant network reads plaquettes")
        self.gauge = bool(gauge)
        self.field_stats = bool(field_stats)
        self.in_channels = int(in_channels)
        self.channels = channels
        self.hparams = {"in_channels": self.in_channels, "channels": channels,
                        "embed_dim": int(embed_dim), "fourier_scale": float(fourier_scale),
                        "groups": int(groups), "blocks_per_level": int(blocks_per_level),
                        "global_pool": bool(global_pool), "gauge": self.gauge,
                        "field_stats": self.field_stats, "adaptive_norm": bool(adaptive_norm)}
        self.embed = nn.Sequential(GaussianFourierProjection(embed_dim, fourier_scale),
                                   nn.Linear(embed_dim, embed_dim), nn.SiLU())
        c_out = 1 if self.gauge else self.in_channels
        if self.field_stats:   # (mean, RMS) of each input channel -> conditioning; uniform head
            self.stats = nn.Sequential(nn.Linear(2 * self.in_channels, embed_dim), nn.SiLU(),
                                       nn.Linear(embed_dim, embed_dim), nn.SiLU())
            self.uniform_head = nn.Linear(embed_dim, c_out)
        block = dict(embed_dim=embed_dim, groups=groups, adaptive=adaptive_norm)
        self.enc = nn.ModuleList()
        self.extra = nn.ModuleList()
        c_prev = 2 if self.gauge else self.in_channels
        for i, c in enumerate(channels):
            self.enc.append(Block(c_prev, c, mode="same" if i == 0 else "down", **block))
            self.extra.append(nn.ModuleList(Block(c, c, **block) for _ in range(blocks_per_level)))
            c_prev = c
        self.dec = nn.ModuleList()
        for i in range(len(channels) - 1, 0, -1):
            c_in = channels[i] if i == len(channels) - 1 else 2 * channels[i]
            self.dec.append(Block(c_in, channels[i - 1], mode="up", **block))
        # lattice-wide average of the deepest features, mixed back in; it is a mean over
        # sites, so the network stays translation covariant and runs on any L
        self.pool = nn.Linear(channels[-1], channels[-1]) if global_pool else None
        c_last = 2 * channels[0] if len(channels) > 1 else channels[0]
        self.out = nn.Conv2d(c_last, c_out, 3, padding=1, padding_mode="circular")

    @property
    def downsampling(self) -> int:
        """L must be a multiple of this."""
        return 2 ** (len(self.channels) - 1)

    def config(self) -> dict[str, Any]:
        return dict(self.hparams)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.downsampling or x.shape[-2] % self.downsampling:
            raise ValueError(f"lattice {tuple(x.shape[-2:])} not divisible by the U-Net's "
                             f"downsampling factor {self.downsampling}")
        emb = self.embed(c_noise)
        if self.field_stats:
            stats = torch.cat([x.mean(dim=(-2, -1)), x.square().mean(dim=(-2, -1)).sqrt()], dim=1)
            emb = emb + self.stats(stats)
        skips = []
        if self.gauge:
            theta_p = plaquette_angles(x)
            h = torch.stack([torch.cos(theta_p), torch.sin(theta_p)], dim=1)
        else:
            h = x
        for block, extra in zip(self.enc, self.extra):
            h = block(h, emb)
            for res in extra:
                h = h + res(h, emb)
            skips.append(h)
        skips.pop()  # the deepest level feeds the decoder directly
        if self.pool is not None:
            h = h + self.pool(h.mean(dim=(-2, -1)))[:, :, None, None]
        for block in self.dec:
            h = torch.cat([block(h, emb), skips.pop()], dim=1)
        h = self.out(h)
        if self.field_stats:
            h = h + self.uniform_head(emb)[:, :, None, None]
        return plaquette_transpose(h[:, 0]) if self.gauge else h   # s = B^T g (module docstring)
