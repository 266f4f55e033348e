"""Training: determinism, exact resume after an interruption or a SIGKILL, the physics
check that the learned score approaches the drift -dS/dphi at small noise, and a model
trained on the free field against its exact score and propagator."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from physml.diffusion.free_field import family_threshold, lowest_momenta, propagator_pulls, score_errors
from physml.diffusion.model import build_score_model, load_score_model, save_score_model, state_bytes
from physml.diffusion.samplers import make_sampler
from physml.diffusion.training import TrainConfig, sample_sigmas, train_score_model
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
    assert h["loss_sigma"].shape == (4, 6)
    assert a.meta["sigma_max"] > 1 and a.model.precond.law.volume == 64


def test_spectral_training_fits_the_propagator_and_round_trips(tmp_path):
    """White-noise data, normalised by its RMS (C(p) = 1 at every p): the fitted law has
    b = 0 and a = 1 within the scatter of 48 configurations; the model file rebuilds the
    same denoiser; the song recipe has no propagator law."""
    res = _train(tmp_path, "spec", epochs=2, spectral=True)
    law = res.model.precond.inner.propagator
    assert law["b"] < 0.05 and law["a"] == pytest.approx(1.0, rel=0.1)
    assert np.isfinite(res.history["loss"].values).all()
    save_score_model(tmp_path / "m.pt", res.model)
    loaded, _ = load_score_model(tmp_path / "m.pt")
    x = _data(n=4, seed=1).float()
    torch.testing.assert_close(loaded.denoise(x, 0.4), res.model.eval().denoise(x, 0.4))
    assert "propagator" not in _train(tmp_path, "song", epochs=1, spectral=True, recipe="song").model.precond.config()


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


def test_training_noise_levels_cover_every_decade():
    model = build_score_model({"channels": [4]}, {"recipe": "edm"}, 1e-3, 10.0)
    gen = torch.Generator().manual_seed(0)
    sigma = sample_sigmas(model, 20000, TrainConfig(), gen, dtype=torch.float64)
    assert sigma.min() >= 1e-3 and sigma.max() <= 10
    hist = torch.histc(torch.log10(sigma), bins=4, min=-3, max=1)
    assert (hist / 20000 - 0.25).abs().max() < 0.02
    song = build_score_model({"channels": [4]}, {"recipe": "song", "sde": {"name": "ve", "sigma": 25.0}},
                             3e-3, 9.8)
    uniform_t = sample_sigmas(song, 20000, TrainConfig(recipe="song"), gen, dtype=torch.float64)
    assert (uniform_t < 0.1).double().mean() < 0.05 < (sigma < 0.1).double().mean()


def _write_tiny_ensemble(path, L=8, n=64):
    import xarray as xr
    from physml.io.artifacts import write_artifact
    ds = xr.Dataset({"phi": (("config", "x", "y"), _data(n, L).numpy())},
                    attrs={"theory": "phi4", "source": "hmc", "L": L, "kappa": 0.21, "lam": 0.022})
    write_artifact(ds, path, config={"test": 1}, rule="test", seed=0)


def _train_cmd(ens, out, epochs):
    return [sys.executable, "-m", "physml", "diffusion", "train", str(ens), "--out", str(out), "--history",
            str(out.with_suffix(".nc")), "--channels", "4", "8", "--embed-dim", "8", "--groups", "2",
            "--epochs", str(epochs), "--batch-size", "8", "--seed", "3", "--device", "cpu",
            "--no-progress"]


def test_killed_training_job_resumes_to_identical_weights(tmp_path):
    """SIGKILL a real `physml diffusion train` process mid-run, start it again, compare with an
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
    """Stochastic quantisation link: at small noise the learned score, in physical units, is
    the drift F = -dS/dphi.  Symmetric phase kappa = 0.21, L = 8, a small model trained for
    about 20 s of one core (edm recipe).

    Stated tolerance, on held-out HMC configurations at sigma = 0.055 of the data RMS
    (0.043 in field units, where the exact score of the smoothed distribution differs from
    F by about 1%): relative L2 error ||s - F|| / ||F|| < 0.5 and cosine similarity
    > 0.95.  The same check on the untrained network must fail."""
    theory = Phi4(0.21, 0.022)
    ens = hmc_ensemble(theory, L=8, n_configs=1024 + 64, n_chains=64, n_therm=50, meas_interval=2,
                       step_size=0.125, n_steps=8, seed=11, start="hot", show_progress=False)
    phi = torch.from_numpy(ens["phi"].values)
    perm = torch.randperm(len(phi), generator=torch.Generator().manual_seed(0))
    train, test = phi[perm[:1024]], phi[perm[1024:]]
    net = {"channels": [8, 16], "embed_dim": 16}
    cfg = TrainConfig(epochs=30, batch_size=32, lr=3e-3)
    res = train_score_model(train, sde=SDE, net=net, cfg=cfg, seed=1, show_progress=False)
    drift = theory.force(test)

    def errors(model):
        s = model.physical_score(test.float(), 0.055).double()
        rel = float((s - drift).norm() / drift.norm())
        cos = float((s * drift).sum() / (s.norm() * drift.norm()))
        return rel, cos

    rel, cos = errors(res.model)
    print(f"trained: relative error {rel:.3f}, cosine {cos:.4f}")
    assert rel < 0.5 and cos > 0.95
    torch.manual_seed(1)
    untrained = build_score_model(**res.model.config()).eval()
    rel0, cos0 = errors(untrained)
    assert rel0 > 0.5 and cos0 < 0.95


def test_model_trained_on_a_near_critical_free_field_matches_its_exact_score_and_propagator():
    """Free field near criticality (lambda = 0, kappa = 0.235, L = 8: correlation length 2 =
    L / 4, chi_2 = 8.3, C(p) from 8.3 down to 0.35), 2048 HMC configurations, a small model
    trained for about 40 s of one core with the defaults (edm recipe).  Stated tolerances,
    on noised held-out configurations, against the exact score at nine noise levels from
    sigma_min to sigma_max, in the units that decide a sampler's step (the error of sigma s,
    i.e. of the denoised estimate in units of the noise): RMS over components below 0.1, and
    along the unit zero mode (the restoring force on phibar) below 0.1.  (The score itself
    cannot be learned to a relative accuracy at sigma << the data's scale: there it is O(1)
    while the regression target z / sigma is O(1 / sigma).)  Then the default sampler's
    samples reproduce the propagator at every momentum within 3 sigma family-wise
    (:func:`family_threshold`), at L and at 2L, and at L the longest modes (p = 0 and the
    lowest momenta) within 3 sigma each.  At 2L the longest modes are held only to the
    family-wise bound: there the lowest momentum came out at -3.1 sigma (2026-12-07), the
    same with the fitted propagator law alone, whose finite-size extrapolation from 8 x 8
    is what sets it (the 16 -> 32 check in benchmarks/free_field_cli.py holds them within
    2 sigma); without the spectral scalings it is -12.9 sigma, which this test fails."""
    kappa = 0.235
    theory = Phi4(kappa, 0.0)
    ens = hmc_ensemble(theory, L=8, n_configs=2048 + 256, n_chains=128, n_therm=200, meas_interval=8,
                       step_size=0.125, n_steps=8, seed=5, start="hot", show_progress=False)
    phi = torch.from_numpy(ens["phi"].values)
    train, test = phi[:2048], phi[2048:]
    res = train_score_model(train, sde=SDE, net={"channels": [16, 32, 64], "embed_dim": 64},
                            cfg=TrainConfig(generate_L=16), seed=2, show_progress=False)
    model = res.model.double()
    for sigma, rel, zero in score_errors(model, test, kappa):
        print(f"sigma {sigma:.3g}: error of sigma s {rel:.4f}, zero mode {zero:.4f}")
        assert rel < 0.1 and zero < 0.1
    for L, n in ((8, 1024), (16, 512)):
        sample = make_sampler("ode2m", n_steps=64).sample(model, n, (L, L), seed=3, show_progress=False).x
        pull = propagator_pulls(sample, kappa)
        print(f"L = {L}: max |pull| {float(pull.abs().max()):.2f}, longest modes {lowest_momenta(pull).tolist()}")
        assert pull.abs().max() < family_threshold(L)
        if L == 8:
            assert lowest_momenta(pull).abs().max() < 3
