"""MALA on the exact action: exactness against exact results, tuning, periodic fields."""

import math

import numpy as np
import pytest
import torch

from physml.lattice import u1_exact
from physml.lattice.phi4 import Phi4, free_propagator
from physml.lattice.u1 import U1, plaquette_angles
from physml.diffusion.free_field import family_threshold, lowest_momenta, propagator_pulls
from physml.mc.mala import FourierAccelerated, MALAStage, mala_step, run_mala, tune_step_size


def test_mala_alone_converges_to_the_exact_u1_plaquette_at_beta_2_L_8():
    """The issue's proof of exactness: random starts, no model, exact plaquette."""
    gen = torch.Generator().manual_seed(11)
    theory = U1(2.0)
    tuning = tune_step_size(theory, theory.random_start(32, 8, gen), 150, gen)
    h, pilot_acc = tuning.h, tuning.acceptance
    res = run_mala(theory, theory.random_start(256, 8, gen), 800, h, gen, schedule=tuning.schedule)
    assert res.step_sizes[:150].tolist() == tuning.schedule and (res.step_sizes[150:] == h).all()
    assert torch.all(res.x >= -math.pi) and torch.all(res.x < math.pi)   # wrapped links
    plaq = torch.cos(plaquette_angles(res.x)).mean(dim=(-2, -1)).numpy()  # one per chain
    err = plaq.std(ddof=1) / math.sqrt(len(plaq))
    exact = u1_exact.plaquette(2.0, 8)
    assert abs(plaq.mean() - exact) < 3 * err, (plaq.mean(), err, exact)
    assert err < 0.005
    assert 0.5 < float(res.acceptance[-200:].mean()) < 0.7      # tuned for 0.6
    assert res.accepted_per_chain.shape == (256,)
    assert len(pilot_acc) == 150


def test_accept_step_removes_the_langevin_bias_of_a_large_step():
    """Free field (lambda = 0): with a fixed large step, unadjusted Langevin is visibly
    biased, MALA reproduces the exact <phi_x^2> = (1/V) sum_p G(p)."""
    kappa, L, h = 0.1, 8, 0.3
    theory = Phi4(kappa, 0.0)
    exact = float(free_propagator(kappa, L).mean())
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((512, L, L), generator=gen, dtype=torch.float64)
    res = run_mala(theory, x.clone(), 300, h, gen)
    phi2 = res.x.square().mean(dim=(-2, -1)).numpy()
    err = phi2.std(ddof=1) / math.sqrt(len(phi2))
    assert abs(phi2.mean() - exact) < 3 * err, (phi2.mean(), err, exact)
    ula = x.clone()
    for _ in range(300):
        ula = ula + h * theory.force(ula) + math.sqrt(2 * h) * torch.randn(ula.shape, generator=gen,
                                                                            dtype=torch.float64)
    ula2 = ula.square().mean(dim=(-2, -1)).numpy()
    assert abs(ula2.mean() - exact) > 10 * err          # the bias MALA removes


def test_step_size_is_tuned_to_the_target_and_shrinks_with_volume():
    theory = Phi4(0.5, 0.022)
    gen = torch.Generator().manual_seed(2)
    steps = {}
    for L in (8, 32):
        tuning = tune_step_size(theory, theory.cold_start(32, L), 300, gen, target=0.6)
        h, acc = tuning.h, tuning.acceptance
        assert 0.5 < float(acc[-100:].mean()) < 0.7
        steps[L] = h
    assert steps[32] < 0.6 * steps[8]          # optimal MALA steps scale like V^(-1/3)


def test_mala_step_keeps_the_cached_action_and_force_consistent():
    theory = U1(3.0)
    gen = torch.Generator().manual_seed(0)
    x = theory.random_start(8, 4, gen)
    x, action, force, accepted = mala_step(theory, x, 0.05, gen)
    assert accepted.dtype == torch.bool and accepted.shape == (8,)
    torch.testing.assert_close(action, theory.action(x))
    torch.testing.assert_close(force, theory.force(x))


def test_bad_settings_are_rejected():
    theory = U1(1.0)
    gen = torch.Generator().manual_seed(0)
    x = theory.cold_start(2, 4)
    with pytest.raises(ValueError, match="step size"):
        mala_step(theory, x, 0.0, gen)
    with pytest.raises(ValueError, match="target acceptance"):
        tune_step_size(theory, x, 10, gen, target=1.5)
    with pytest.raises(ValueError, match="tuning steps"):
        tune_step_size(theory, x, 1, gen)
    assert np.isfinite(run_mala(theory, x, 0, 0.1, gen).x.numpy()).all()


def test_a_constant_start_moves_with_the_pilot_schedule_but_not_with_the_tuned_step():
    """Broken phase from a constant field at L = 16: the equilibrium step size is rejected
    almost always at the start; replaying the pilot's schedule gets the chains going."""
    theory = Phi4(0.5, 0.022)
    gen = torch.Generator().manual_seed(4)
    start = theory.cold_start(32, 16)
    tuning = tune_step_size(theory, start.clone(), 200, gen)
    h, schedule = tuning.h, tuning.schedule
    fixed = run_mala(theory, start.clone(), 200, h, gen)
    replayed = run_mala(theory, start.clone(), 200, h, gen, schedule=schedule)
    assert float(replayed.acceptance[-50:].mean()) > 0.4
    assert float(replayed.acceptance.mean()) > 2 * float(fixed.acceptance.mean())


def test_mala_stage_tunes_on_pilots_warms_up_on_their_schedule_and_records_traces():
    """The measured chains run tune_steps warm-up steps on the pilot's schedule, then their
    own steps at the tuned h; per-configuration traces are kept at the listed step counts."""
    from physml.mc.mala import MALAStage

    theory = Phi4(0.5, 0.022)
    gen = torch.Generator().manual_seed(0)
    start = theory.cold_start(80, 8)
    stage = MALAStage(steps=30, tune_steps=20)
    x, mala, attrs = stage.run(theory, start[:16].clone(), start[16:].clone(), gen,
                               torch.Generator().manual_seed(1))
    assert x.shape == (16, 8, 8) and attrs["mala_steps"] == 30 and attrs["mala_warmup_steps"] == 20
    sizes = mala["mala_step_sizes"].values
    assert len(sizes) == 50 and np.all(sizes[20:] == attrs["mala_step_size"])
    assert list(mala["mala_trace_step"].values) == [0, 1, 2, 5, 10, 20, 50]
    assert mala["mala_trace_phibar"].shape == (7, 16)
    torch.testing.assert_close(torch.from_numpy(mala["mala_trace_phibar"].values[-1]), x.mean((-2, -1)))
    with pytest.raises(ValueError, match="at least 64 pilot"):
        stage.run(theory, start[:16], start[:32], gen, gen)


def test_global_shift_moves_the_zero_mode_and_keeps_the_free_field_exact():
    """Free field near criticality (kappa = 0.24, L = 8: chi_2 = 12.5 against C(p) <= 0.6 at
    every other momentum). From a constant field phi = 0, 60 MALA steps leave the zero
    mode's variance far below chi_2 / V; the same steps with a global shift after each
    (width tuned on pilot chains) reach chi_2 within 3 sigma, and the other momenta stay
    exact: the move is an exact Metropolis kernel."""
    kappa, L = 0.24, 8
    theory = Phi4(kappa, 0.0)
    gen = torch.Generator().manual_seed(3)
    tuning = tune_step_size(theory, theory.cold_start(64, L), 100, gen, shift_moves=1)
    assert tuning.width > 0 and 0.25 < float(tuning.shift_acceptance[50:].mean()) < 0.55
    exact = free_propagator(kappa, L)
    start = torch.zeros(1024, L, L, dtype=torch.float64)
    local = run_mala(theory, start.clone(), 60, tuning.h, gen)
    moved = run_mala(theory, start.clone(), 60, tuning.h, gen, shift_moves=1, width=tuning.width)
    for res, ok in ((local, False), (moved, True)):
        chi2 = L * L * res.x.mean(dim=(-2, -1)).square()
        err = float(chi2.std() / math.sqrt(len(chi2)))
        assert (abs(float(chi2.mean()) - float(exact[0, 0])) < 3 * err) == ok, (float(chi2.mean()), err)
    prop = torch.fft.fft2(moved.x).abs().square().mean(0) / L ** 2
    assert 0.25 < float(moved.shift_acceptance.mean()) < 0.6
    assert torch.allclose(prop.flatten()[1:], exact.flatten()[1:], rtol=0.15)
    with pytest.raises(ValueError, match="for phi\\^4, not u1"):
        run_mala(U1(1.0), U1(1.0).random_start(4, 4, gen), 2, 0.1, gen, shift_moves=1, width=0.1)


def test_fourier_acceleration_relaxes_the_long_modes_and_keeps_the_free_field_exact():
    """Free field nearer criticality (kappa = 0.245, L = 16: chi_2 = 25, C at the lowest
    non-zero momentum 6.5, at the highest 0.25).  From phi = 0, 60 MALA steps with global
    shifts leave the lowest non-zero momenta far below their exact C (critical slowing
    down: they relax about 25 times more slowly than the short modes); the same steps
    Fourier-accelerated reach every momentum within the family-wise 3 sigma bound.  From
    exact samples, accelerated steps keep every momentum exact: the preconditioned kernel
    has the right stationary law (a wrong proposal asymmetry would move it)."""
    kappa, L, n = 0.245, 16, 512
    theory = Phi4(kappa, 0.0)
    acc = FourierAccelerated(theory, L)
    x = torch.randn(3, L, L, dtype=torch.float64)
    assert torch.allclose(acc.to_field(acc.to_u(x)), x, atol=1e-12)
    assert torch.allclose(acc.action(acc.to_u(x)), theory.action(x))
    start = torch.zeros(n, L, L, dtype=torch.float64)
    pulls = {}
    for fourier in (False, True):
        stage = MALAStage(40, tune_steps=20, shift_moves=1, fourier=fourier)
        out, _, attrs = stage.run(theory, start.clone(), start[:64].clone(), torch.Generator().manual_seed(1),
                                  torch.Generator().manual_seed(2))
        assert attrs["mala_fourier"] == int(fourier)
        pulls[fourier] = propagator_pulls(out, kappa)
    assert float(lowest_momenta(pulls[False])[1:].max()) < -5, lowest_momenta(pulls[False])
    assert float(pulls[True].abs().max()) < family_threshold(L), lowest_momenta(pulls[True])
    C = free_propagator(kappa, L)
    xi = torch.randn((n, L, L), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    exact = torch.fft.ifft2(torch.fft.fft2(xi) * C.sqrt()).real
    out, _, _ = MALAStage(100, tune_steps=20, shift_moves=1, fourier=True).run(
        theory, exact, exact[:64].clone(), torch.Generator().manual_seed(5), torch.Generator().manual_seed(6))
    assert float(propagator_pulls(out, kappa).abs().max()) < family_threshold(L)
    with pytest.raises(ValueError, match="--mala-fourier.*not u1"):
        FourierAccelerated(U1(1.0), 4)
