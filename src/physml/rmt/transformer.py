"""A small character-level transformer (nano-GPT style) whose attention matrices are recorded.

Architecture (defaults: 4 blocks, 4 heads, model width 64, head width 16, context 64): token
and position embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a 4x
GELU MLP with residual connections, a final LayerNorm and a readout tied to the token
embedding.  Linear layers have no biases.  Initialisation as in nanoGPT: every weight
N(0, 0.02^2), the residual output projections N(0, 0.02^2 / (2 n_layer)).  Training: AdamW on
random windows of the corpus (next-character cross entropy).

Recorded matrices: per block and head the head's own query, key and value maps
W_Q^h, W_K^h, W_V^h, each ``n_embd x head_dim`` (64 x 16 by default: rows = the model's
features, columns = the head's features, so a head computes ``q = x W_Q^h``).  They are the
transposed row blocks ``[h d, (h+1) d)`` of the fused ``c_attn`` weight's Q, K and V parts.
At initialisation their entries are iid N(0, 0.02^2), so the eigenvalues of
``(1/N) W^T W`` (N = n_embd = 64, 16 of them) follow Marchenko-Pastur with the aspect ratio
q = head_dim / n_embd = 1/4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

INIT_STD = 0.02


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the model; ``n_embd`` must be a multiple of ``n_head``."""

    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64

    def __post_init__(self):
        if min(self.vocab_size, self.block_size, self.n_layer, self.n_head, self.n_embd) < 1:
            raise ValueError(f"all sizes must be positive: {self}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} is not a multiple of n_head = {self.n_head}")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)  # rows: Q, K, V
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Character-level decoder-only transformer; ``forward(idx)`` gives logits (b, t, vocab)."""

    def __init__(self, cfg: GPTConfig, generator: torch.Generator):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    residual = name.endswith(("c_proj.weight", "mlp.2.weight"))
                    std = INIT_STD / np.sqrt(2 * cfg.n_layer) if residual else INIT_STD
                    p.normal_(0.0, std, generator=generator)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def attention_matrices(model: GPT) -> tuple[list[str], np.ndarray]:
    """Names ``b{layer}.h{head}.{q,k,v}`` and values ``(3 n_layer n_head, n_embd, head_dim)``
    of every head's W_Q^h, W_K^h, W_V^h (layer-major, then head, then q, k, v)."""
    c, d = model.cfg.n_embd, model.cfg.n_embd // model.cfg.n_head
    names, mats = [], []
    for i, block in enumerate(model.blocks):
        w = block.attn.c_attn.weight.detach().cpu().numpy()       # (3 c, c): rows Q, K, V
        for h in range(model.cfg.n_head):
            for j, kind in enumerate("qkv"):
                names.append(f"b{i}.h{h}.{kind}")
                mats.append(w[j * c + h * d:j * c + (h + 1) * d].T)
    return names, np.stack(mats).astype(np.float32)


def snapshot_schedule(n_steps: int, dense_until: int, n_sparse: int) -> np.ndarray:
    """Every step 0..dense_until, then ``n_sparse`` log-spaced steps up to n_steps."""
    if not 0 <= dense_until <= n_steps:
        raise ValueError(f"need 0 <= dense_until <= n_steps, got {dense_until}, {n_steps}")
    sparse = np.geomspace(max(dense_until, 1), n_steps, n_sparse + 1).round().astype(int)
    return np.unique(np.concatenate([np.arange(dense_until + 1), sparse, [n_steps]]))


@dataclass
class TransformerRun:
    """Output of :func:`train_transformer`."""

    steps: np.ndarray        # (n_snap,)
    names: list[str]         # matrix names, b{layer}.h{head}.{q,k,v}
    W: np.ndarray            # (n_snap, n_matrices, n_embd, head_dim)
    train_loss: np.ndarray   # (n_steps,) cross entropy of each training batch (nats/char)
    val_loss: float          # cross entropy on held-out windows at the end
    vocab: str


def train_transformer(text: str, cfg_kwargs: dict, *, n_steps: int, batch_size: int, lr: float,
                      weight_decay: float, snapshot_steps, seed: int, val_fraction: float = 0.1,
                      device: torch.device | str = "cpu", progress=None) -> TransformerRun:
    """AdamW training on random windows of ``text``; every head's W_Q^h, W_K^h, W_V^h
    (:func:`attention_matrices`) is stored after each step in ``snapshot_steps``
    (0 = initialisation).  ``progress(step)`` is called every 10 steps."""
    vocab = "".join(sorted(set(text)))
    cfg = GPTConfig(vocab_size=len(vocab), **cfg_kwargs)
    codes = torch.from_numpy(np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64))
    lut = torch.zeros(128, dtype=torch.long)
    lut[[ord(ch) for ch in vocab]] = torch.arange(len(vocab))
    data = lut[codes].to(device)
    n_val = int(len(data) * val_fraction)
    train, val = data[:-n_val], data[-n_val:]
    if len(val) <= cfg.block_size + 1:
        raise ValueError(f"corpus of {len(text)} characters is too short for context {cfg.block_size}")
    gen = torch.Generator().manual_seed(int(seed))
    model = GPT(cfg, gen).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))
    snaps = sorted(set(int(s) for s in snapshot_steps))
    if not snaps or snaps[0] < 0 or snaps[-1] > n_steps:
        raise ValueError(f"snapshot_steps must be a non-empty list of steps in 0..{n_steps}, "
                         f"got {snaps}")

    def batch(source):
        start = torch.randint(len(source) - cfg.block_size - 1, (batch_size,), generator=gen)
        rows = start[:, None] + torch.arange(cfg.block_size + 1)
        chunk = source[rows.to(device)]
        return chunk[:, :-1], chunk[:, 1:]

    def loss_of(x, y):
        return F.cross_entropy(model(x).reshape(-1, cfg.vocab_size), y.reshape(-1))

    W, names, losses = [], [], np.empty(n_steps)
    if 0 in snaps:
        names, w = attention_matrices(model)
        W.append(w)
    for step in range(1, n_steps + 1):
        loss = loss_of(*batch(train))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step - 1] = loss.item()
        if step in snaps:
            names, w = attention_matrices(model)
            W.append(w)
        if progress is not None and step % 10 == 0:
            progress(step)
    with torch.no_grad():
        val_loss = float(np.mean([float(loss_of(*batch(val))) for _ in range(8)]))
    return TransformerRun(np.array(snaps), names, np.stack(W), losses, val_loss, vocab)
