"""Training: determinism, exact resume after an interruption or a SIGKILL, and the physics
check that the learned score approaches the drift -dS/dphi at small t."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from physml.diffusion.model import build_score_model, load_score_model, state_bytes
from physml.diffusion.sde import VESDE
from physml.diffusion.training import TrainConfig, sample_times, train_score_model
from physml.lattice.phi4 import Phi4
from physml.mc.ensembles import hmc_ensemble

SDE = {"name": "ve", "sigma": 25.0}
TINY = {"channels": [4, 8], "embed_dim": 8, "groups": 2}


def _data(n=48, L=8, seed=0):
    return torch.randn((n, L, L), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.3


class Interrupt(Exception):
    pass


def _train(tmp_path, name, on_epoch=None, seed=7, epochs=4, **cfg):
    return train_score_model(_data(), sde=SDE, net=TINY, cfg=TrainConfig(epochs=epochs, batch_size=16, **cfg),
                             seed=seed, checkpoint=tmp_path / f"{name}.ckpt", data_sha256="abc",
                             show_progress=False, on_epoch=on_epoch)


def test_training_is_deterministic_given_the_seed(tmp_path):
    a = _train(tmp_path, "a")
    b = _train(tmp_path, "b")
    c = _train(tmp_path, "c", seed=8)
    assert state_bytes(a.model) == state_bytes(b.model)
    assert state_bytes(a.model) != state_bytes(c.model)
    h = a.history
    assert h["loss"].dims == ("epoch",) and len(h["epoch"]) == 4
    assert (np.diff(h["lr"].values) < 0).all()  # cosine decay
    assert (np.diff(h["wall_time"].values) > 0).all()
    assert h["loss_t"].shape == (4, 5)


@pytest.mark.parametrize("stop_after", [1, 3])
def test_interrupted_training_resumes_to_identical_weights(tmp_path, stop_after):
    full = _train(tmp_path, "full")

    def stop(epoch, hist):
        if epoch == stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        _train(tmp_path, "part", on_epoch=stop)
    assert (tmp_path / "part.ckpt").is_file()
    resumed = _train(tmp_path, "part")
    assert resumed.resumed_from_epoch == stop_after
    assert state_bytes(resumed.model) == state_bytes(full.model)
    assert np.array_equal(resumed.history["loss"].values, full.history["loss"].values)


def test_checkpoint_of_other_settings_is_ignored(tmp_path, capsys):
    _train(tmp_path, "x", epochs=2)
    other = _train(tmp_path, "x", epochs=3, lr=1e-3)
    assert other.resumed_from_epoch == 0
    assert "other settings" in capsys.readouterr().out


def test_log_sigma_training_times_cover_every_noise_decade():
    sde = VESDE(25.0)
    gen = torch.Generator().manual_seed(0)
    t = sample_times(sde, 20000, 1e-5, "log_sigma", gen, dtype=torch.float64)
    assert t.min() >= 1e-5 and t.max() <= 1
    log_std = torch.log(sde.marginal_std(t))
    lo, hi = float(torch.log(sde.marginal_std(torch.tensor(1e-5)))), float(torch.log(sde.marginal_std(torch.tensor(1.0))))
    hist = torch.histc(log_std, bins=4, min=lo, max=hi)
    assert (hist / 20000 - 0.25).abs().max() < 0.02
    u = sample_times(sde, 20000, 1e-5, "uniform", gen, dtype=torch.float64)
    assert (u < 1e-2).double().mean() < 0.02 < (t < 1e-2).double().mean()


def _write_tiny_ensemble(path, L=8, n=64):
    import xarray as xr
    from physml.io.artifacts import write_artifact
    ds = xr.Dataset({"phi": (("config", "x", "y"), _data(n, L).numpy())},
                    attrs={"theory": "phi4", "source": "hmc", "L": L, "kappa": 0.21, "lam": 0.022})
    write_artifact(ds, path, config={"test": 1}, rule="test", seed=0)


def _train_cmd(ens, out, epochs):
    return [sys.executable, "-m", "physml", "train", str(ens), "--out", str(out), "--history",
            str(out.with_suffix(".nc")), "--channels", "4", "8", "--embed-dim", "8", "--groups", "2",
            "--epochs", str(epochs), "--batch-size", "8", "--seed", "3", "--device", "cpu",
            "--no-progress"]


def test_killed_training_job_resumes_to_identical_weights(tmp_path):
    """SIGKILL a real `physml train` process mid-run, start it again, compare with an
    uninterrupted run bit for bit."""
    ens = tmp_path / "ens.nc"
    _write_tiny_ensemble(ens)
    epochs = 20
    ref = tmp_path / "ref.pt"
    subprocess.run(_train_cmd(ens, ref, epochs), check=True, capture_output=True, timeout=600)
    out = tmp_path / "killed.pt"
    ckpt = tmp_path / "killed.pt.ckpt"
    proc = subprocess.Popen(_train_cmd(ens, out, epochs), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the job finished before it could be killed; raise the epochs"
    assert ckpt.exists()
    again = subprocess.run(_train_cmd(ens, out, epochs), check=True, capture_output=True, text=True,
                           timeout=600)
    assert "resuming from" in again.stdout
    a, _ = load_score_model(ref)
    b, rec = load_score_model(out)
    assert state_bytes(a) == state_bytes(b)
    assert not ckpt.exists()  # removed after success
    assert len(rec["ensemble"]["sha256"]) == 64 and rec["config"]["epochs"] == epochs


def test_trained_score_approaches_the_drift_at_small_t():
    """Stochastic quantisation link: at small t the learned score, in physical units, is the
    drift F = -dS/dphi.  Symmetric phase kappa = 0.21, L = 8, a small model trained for
    about 20 s of one core with log-uniform noise levels (to train the small-t end).

    Stated tolerance, on held-out HMC configurations at t = 3e-3 (sigma(t) = 0.055 of the
    data RMS, 0.043 in field units, where the exact score of the smoothed distribution
    differs from F by about 1%): relative L2 error ||s - F|| / ||F|| < 0.5 and cosine
    similarity > 0.95.  The direction is learned well (cosine ~0.98 for all t <= 0.01);
    the magnitude is the weak part: with the output divided by sigma(t), the sigma^2-
    weighted loss carries only O(sigma^2) signal about it at small t, so the error grows
    like 1/sigma below t ~ 1e-3 (measured here: 0.5 at 1e-3, 3.6 at 1e-4).  The same check
    on the untrained network must fail."""
    theory = Phi4(0.21, 0.022)
    ens = hmc_ensemble(theory, L=8, n_configs=1024 + 64, n_chains=64, n_therm=50, meas_interval=2,
                       step_size=0.125, n_steps=8, seed=11, start="random", show_progress=False)
    phi = torch.from_numpy(ens["phi"].values)
    perm = torch.randperm(len(phi), generator=torch.Generator().manual_seed(0))
    train, test = phi[perm[:1024]], phi[perm[1024:]]
    net = {"channels": [8, 16], "embed_dim": 16}
    cfg = TrainConfig(epochs=30, batch_size=32, lr=3e-3, t_sampling="log_sigma", ema_decay=0.99)
    res = train_score_model(train, sde=SDE, net=net, cfg=cfg, seed=1, show_progress=False)
    drift = theory.force(test)

    def errors(model):
        s = model.physical_score(test.float(), 3e-3).double()
        rel = float((s - drift).norm() / drift.norm())
        cos = float((s * drift).sum() / (s.norm() * drift.norm()))
        return rel, cos

    rel, cos = errors(res.model)
    print(f"trained: relative error {rel:.3f}, cosine {cos:.4f}")
    assert rel < 0.5 and cos > 0.95
    torch.manual_seed(1)
    untrained = build_score_model(SDE, net, scale=res.model.scale).eval()
    rel0, cos0 = errors(untrained)
    assert rel0 > 0.5 and cos0 < 0.95
