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


def test_model_sizes_and_initial_attention_spectra_are_marchenko_pastur():
    cfg = GPTConfig(vocab_size=50)
    model = GPT(cfg, torch.Generator().manual_seed(0))
    names, W = attention_matrices(model)
    assert names[:3] == ["b0.q", "b0.k", "b0.v"] and W.shape == (12, 64, 64)
    assert cfg.n_embd // cfg.n_head == 16
    assert W.std() == pytest.approx(0.02, rel=0.02)
    null = sp.mp_null((64, 64), 12, 100, np.random.default_rng(0))
    test = sp.mp_test(sp.gram_eigenvalues(W), (64, 64), null)
    assert test.p_value > 0.01 and test.p_top > 0.01
    np.testing.assert_allclose(test.sigma2, 0.02 ** 2, rtol=0.15)    # median fit: ~4.5% per matrix
    assert test.sigma2.mean() == pytest.approx(0.02 ** 2, rel=0.03)
    with pytest.raises(ValueError, match="multiple"):
        GPTConfig(vocab_size=10, n_embd=30, n_head=4)


def test_training_lowers_the_loss_and_records_snapshots(corpus):
    steps = snapshot_schedule(30, 5, 3)
    assert steps[0] == 0 and steps[-1] == 30 and list(steps[:6]) == [0, 1, 2, 3, 4, 5]
    kw = dict(n_steps=30, batch_size=8, lr=3e-3, weight_decay=0.1, snapshot_steps=steps, seed=1)
    run = train_transformer(corpus.text, {"block_size": 32, "n_layer": 2}, **kw)
    assert run.W.shape == (len(steps), 6, 64, 64)
    assert run.train_loss[-5:].mean() < run.train_loss[0] - 0.5
    again = train_transformer(corpus.text, {"block_size": 32, "n_layer": 2}, **kw)
    np.testing.assert_array_equal(run.W, again.W)          # deterministic on CPU
    with pytest.raises(ValueError, match="snapshot_steps must be a non-empty"):
        train_transformer(corpus.text, {"block_size": 32, "n_layer": 2}, **{**kw, "snapshot_steps": []})
