"""Teacher-student model of the phase study: gradients, batching, divergence handling."""

import numpy as np
import pytest
import torch

from physml.phases import teacher_student as ts

TORCH_ACT = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


def torch_loss(runs, x, y, W):
    """Independent forward pass (torch, all three layers) -> summed per-run 1/2 MSE."""
    f = TORCH_ACT[runs.arch.activation]
    t = lambda v: torch.as_tensor(v, dtype=W.dtype)  # noqa: E731
    a = f(torch.einsum("rli,rni->rnl", t(runs.M), t(x)))
    out = torch.einsum("rnk,rk->rn", f(torch.einsum("rkl,rnl->rnk", W, a)), t(runs.Z))
    return 0.5 * ((out - t(y)) ** 2).mean(dim=1)


@pytest.mark.parametrize("activation", ts.ACTIVATIONS)
def test_hand_written_gradient_matches_autograd(activation):
    runs = ts.draw_runs(3, 1.5, seed=7, arch=ts.Architecture(activation=activation), dtype=np.float64)
    data = ts.draw_data(runs, batch_size=4, n_batches=5, n_test=8)
    x, y = data.x_train[:, :4], data.y_train[:, :4]
    loss, grad = ts.loss_and_grad(runs, x, y, runs.W0)
    W = torch.tensor(runs.W0, requires_grad=True)
    ref = torch_loss(runs, x, y, W)
    ref.sum().backward()
    np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, W.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.abs(grad).max() > 1e-3  # a non-trivial gradient was compared


def test_runs_do_not_depend_on_their_batch():
    many = ts.draw_runs(5, 2.0, seed=3)
    for r in range(5):
        one = ts.draw_runs(1, 2.0, seed=3, run_offset=r)
        for name in ("M", "W_teacher", "Z", "W0"):
            np.testing.assert_array_equal(getattr(many, name)[r], getattr(one, name)[0])
    assert not np.allclose(many.W0[0], many.W0[1])
    data = ts.draw_data(many, 4, 3, 5)
    sub = ts.draw_data(many.select([1, 4]), 4, 3, 5)
    np.testing.assert_array_equal(sub.x_train, data.x_train[[1, 4]])
    np.testing.assert_array_equal(sub.y_test, data.y_test[[1, 4]])


def test_teacher_and_student_scales():
    runs = ts.draw_runs(400, 4.0, seed=1, dtype=np.float64)
    assert runs.M.var() == pytest.approx(1 / 3, rel=0.05)
    assert runs.W_teacher.var() == pytest.approx(1 / 32, rel=0.05)
    assert runs.Z.var() == pytest.approx(1 / 16, rel=0.05)
    assert runs.W0.var() == pytest.approx(16 / 32, rel=0.05)


def test_batched_equals_sequential_and_autograd_loop():
    runs = ts.draw_runs(4, 1.0, seed=11)
    data = ts.draw_data(runs, batch_size=4, n_batches=50, n_test=10)
    kw = dict(snapshot_steps=[0, 37, 300], check_every=25)
    batched = ts.train_sgd(runs, data, 0.8, 300, **kw)
    sequential = ts.train_sequential(runs, data, 0.8, 300, **kw)
    np.testing.assert_allclose(batched.snapshots, sequential.snapshots, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(batched.snapshots[0], runs.W0)
    np.testing.assert_array_equal(batched.snapshots[-1], batched.W)
    # an independent loop: torch autograd, one run, the same mini-batch order
    r = 2
    W = torch.tensor(runs.W0[r:r + 1].astype(np.float64), requires_grad=True)
    one = runs.select(slice(r, r + 1))
    for step in range(300):
        b = step % data.n_batches
        sl = slice(4 * b, 4 * b + 4)
        torch_loss(one, data.x_train[r:r + 1, sl].astype(np.float64),
                   data.y_train[r:r + 1, sl].astype(np.float64), W).sum().backward()
        with torch.no_grad():
            W -= 0.8 * W.grad
        W.grad = None
    np.testing.assert_allclose(batched.W[r], W.detach().numpy()[0], rtol=1e-3, atol=1e-4)
    assert np.abs(batched.W[r] - runs.W0[r]).max() > 0.05  # training moved W


@pytest.mark.parametrize("activation,widths,batch", [
    ("tanh", (3, 32, 16), 4), ("relu", (3, 32, 16), 4), ("tanh", (3, 20, 24), 3),
    ("relu", (2, 8, 5), 2), ("identity", (3, 32, 16), 4)])
def test_native_kernel_matches_numpy_reference(activation, widths, batch):
    """The C kernel (specialised paper shape and the generic path with n2 padded to 16k)
    against its numpy twin, float32 both, over many steps of real training."""
    arch = ts.Architecture(*widths, activation=activation)
    runs = ts.draw_runs(5, 1.0, seed=4, arch=arch)
    data = ts.draw_data(runs, batch_size=batch, n_batches=30, n_test=10)
    lr = 0.05 if activation == "identity" else 0.5
    kw = dict(snapshot_steps=[0, 100, 400], check_every=50)
    fast = ts.train_sgd(runs, data, lr, 400, engine="native", **kw)
    ref = ts.train_sgd(runs, data, lr, 400, engine="reference", **kw)
    assert (fast.engine, ref.engine) == ("native", "reference")
    assert not ref.diverged.any()
    np.testing.assert_allclose(fast.snapshots, ref.snapshots, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(fast.last_batch_loss, ref.last_batch_loss, rtol=2e-3, atol=1e-7)
    assert np.abs(ref.W - runs.W0).max() > 0.05  # training moved W
    # each run is computed on its own: the same bits alone as in the batch
    alone = ts.train_sgd(runs.select([3]), data.select([3]), lr, 400, engine="native", **kw)
    np.testing.assert_array_equal(alone.snapshots[:, 0], fast.snapshots[:, 3])


def test_native_kernel_tanh_is_accurate():
    """One SGD step of a 1 -> 1 -> 16 -> 1 network with unit first-layer features reads the
    kernel's tanh at 16 pre-activations per mini-batch point: compare with np.tanh."""
    arch = ts.Architecture(1, 1, 16)
    u = np.concatenate([np.geomspace(1e-6, 12, 40), -np.geomspace(1e-6, 12, 40), [0.0]])
    for chunk in np.array_split(u, 6):
        runs = ts.draw_runs(1, 1.0, seed=1, arch=arch)
        runs.M[:] = 1.0
        B = len(chunk)
        x = np.full((1, B * 16, 1), 10.0, np.float32)  # features tanh(10) = 1 (to float32)
        data = ts.Dataset(x, np.zeros((1, B * 16), np.float32), x[:, :1], np.zeros((1, 1), np.float32), B)
        runs.W0[0, :, 0] = np.resize(chunk, 16)[:16]
        res = ts.train_sgd(runs, data, 0.0, 1, engine="native")  # lr = 0: loss of W0 only
        s = np.tanh(np.resize(chunk, 16)[:16].astype(np.float64))
        expected = 0.5 * (runs.Z[0].astype(np.float64) @ s) ** 2
        assert res.last_batch_loss[0] == pytest.approx(expected, rel=2e-6, abs=1e-12)


def test_engine_arguments_are_checked():
    runs = ts.draw_runs(1, 1.0, seed=1, dtype=np.float64)
    data = ts.draw_data(runs, 4, 2, 2)
    with pytest.raises(ValueError, match="float32"):
        ts.train_sgd(runs, data, 0.1, 10, engine="native")
    with pytest.raises(ValueError, match="engine"):
        ts.train_sgd(runs, data, 0.1, 10, engine="fast")
    assert ts.train_sgd(runs, data, 0.1, 10).engine == "reference"  # auto: float64 stays in numpy


def test_divergent_run_stops_alone():
    arch = ts.Architecture(activation="relu")
    runs = ts.draw_runs(3, 1.0, seed=5, arch=arch)
    data = ts.draw_data(runs, batch_size=4, n_batches=20, n_test=10)
    W_init = runs.W0.copy()
    W_init[1] *= 300  # relu output unbounded: run 1 starts with a loss far above the threshold
    res = ts.train_sgd(runs, data, 0.05, 400, W_init=W_init, check_every=10, snapshot_steps=[400])
    assert res.diverged.tolist() == [False, True, False]
    assert res.diverged_step[1] == 10 and res.last_batch_loss[1] > 100
    alone = ts.train_sgd(runs.select([0, 2]), data.select([0, 2]), 0.05, 400, check_every=10)
    np.testing.assert_allclose(res.W[[0, 2]], alone.W, rtol=1e-6, atol=1e-7)
    assert np.isfinite(res.W[[0, 2]]).all()


def test_tanh_loss_is_bounded_so_large_lr_does_not_diverge():
    runs = ts.draw_runs(4, 1.0, seed=2)
    data = ts.draw_data(runs, batch_size=4, n_batches=20, n_test=10)
    res = ts.train_sgd(runs, data, 256.0, 500)
    bound = 0.5 * (2 * np.abs(runs.Z).sum(axis=1)) ** 2
    assert not res.diverged.any()
    assert (res.last_batch_loss <= bound).all()


def test_bad_arguments_raise():
    runs = ts.draw_runs(1, 1.0, seed=1)
    data = ts.draw_data(runs, 4, 2, 2)
    with pytest.raises(ValueError, match="snapshot"):
        ts.train_sgd(runs, data, 0.1, 10, snapshot_steps=[11])
    with pytest.raises(ValueError, match="activation"):
        ts.Architecture(activation="sigmoid")
    with pytest.raises(ValueError, match="sigma_w"):
        ts.draw_runs(1, -1.0, seed=1)
