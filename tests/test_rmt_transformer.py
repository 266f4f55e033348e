"""The stdlib-docstring corpus and the nano-GPT whose attention matrices are recorded."""

import numpy as np
import pytest
import torch

from physml.rmt import spectra as sp
from physml.rmt.corpus import build_stdlib_corpus
from physml.rmt.transformer import GPT, GPTConfig, attention_matrices, snapshot_schedule, train_transformer


@pytest.fixture(scope="module")
def corpus():
    return build_stdlib_corpus(20_000)


def test_corpus_is_deterministic_ascii_and_recorded(corpus):
    again = build_stdlib_corpus(20_000)
    assert again.text == corpus.text and again.sha256 == corpus.sha256
    assert len(corpus.text) == 20_000 and corpus.text.isascii()
    assert corpus.python_version.count(".") == 2


def test_corpus_too_small_is_an_error(tmp_path):
    (tmp_path / "tiny.py").write_text('"""A docstring."""\n')
    with pytest.raises(ValueError, match="fewer than max_chars"):
        build_stdlib_corpus(5000, stdlib=tmp_path)


def test_model_sizes_and_initial_per_head_spectra_are_marchenko_pastur():
    cfg = GPTConfig(vocab_size=50)
    model = GPT(cfg, torch.Generator().manual_seed(0))
    names, W = attention_matrices(model)
    assert names[:4] == ["b0.h0.q", "b0.h0.k", "b0.h0.v", "b0.h1.q"] and names[-1] == "b3.h3.v"
    assert W.shape == (48, 64, 16)
    assert W.std() == pytest.approx(0.02, rel=0.02)
    N, q = sp.aspect(W.shape[-2:])
    assert (N, q) == (64, 0.25)
    null = sp.mp_null((64, 16), 48, 100, np.random.default_rng(0))
    test = sp.mp_test(sp.gram_eigenvalues(W), (64, 16), null)
    assert test.p_value > 0.01 and test.p_top > 0.01
    assert test.sigma2.mean() == pytest.approx(0.02 ** 2, rel=0.03)
    wrong = sp.mp_distance(sp.gram_eigenvalues(W) / 64, 1.0)[0]      # q = 1, the fused map's ratio
    assert wrong > 3 * np.max(null.distance)
    with pytest.raises(ValueError, match="multiple"):
        GPTConfig(vocab_size=10, n_embd=30, n_head=4)


def test_head_matrices_are_the_maps_each_head_applies():
    model = GPT(GPTConfig(vocab_size=20, n_layer=2), torch.Generator().manual_seed(3))
    names, W = attention_matrices(model)
    x = torch.randn(5, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        q, k, v = model.blocks[1].attn.c_attn(x).split(64, dim=1)
    for kind, full in zip("qkv", (q, k, v)):
        head = full.view(5, 4, 16)[:, 2]                                  # head 2 of block 1
        mine = x.numpy().astype(np.float64) @ W[names.index(f"b1.h2.{kind}")]
        np.testing.assert_allclose(mine, head.numpy(), rtol=1e-4, atol=1e-6)


def test_training_lowers_the_loss_and_records_snapshots(corpus):
    steps = snapshot_schedule(30, 5, 3)
    assert steps[0] == 0 and steps[-1] == 30 and list(steps[:6]) == [0, 1, 2, 3, 4, 5]
    kw = dict(n_steps=30, batch_size=8, lr=3e-3, weight_decay=0.1, snapshot_steps=steps, seed=1)
    run = train_transformer(corpus.text, {"block_size": 32, "n_layer": 2}, **kw)
    assert run.W.shape == (len(steps), 24, 64, 16)
    assert run.train_loss[-5:].mean() < run.train_loss[0] - 0.5
    again = train_transformer(corpus.text, {"block_size": 32, "n_layer": 2}, **kw)
    np.testing.assert_array_equal(run.W, again.W)          # deterministic on CPU
    with pytest.raises(ValueError, match="snapshot_steps must be a non-empty"):
        train_transformer(corpus.text, {"block_size": 32, "n_layer": 2}, **{**kw, "snapshot_steps": []})
