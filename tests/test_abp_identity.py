"""The learning-free identity for ABPs (physics.md §4): exact answers for free and trapped ABPs, the agreement of
the identity with its active-work form for interacting ABPs, and the same numbers from a Trajectory and from
(x, g) arrays."""

import numpy as np
import pytest

import activescore as a


def test_free_abps_with_translational_noise_have_epr_v0_squared_over_eps():
    # Uniform stationary density in (x, θ): s = 0, v = b, EPR = v0²/ε per particle, exactly in every snapshot.
    system = a.ABP(64, packing_fraction=0.2, v0=1.5, rotational_diffusion=2.0, eps=0.3, k=0.0)
    traj = a.simulate(system, 200, 0.01, seed=3, save_every=20, progress=False)
    result = a.learning_free_epr(system, traj)
    np.testing.assert_allclose(result.per_snapshot / system.n_particles, 1.5**2 / 0.3, rtol=1e-12)
    np.testing.assert_allclose(result.active_work_per_snapshot / system.n_particles, 1.5**2 / 0.3, rtol=1e-12)
    assert result.forms_agree() is True  # identical per snapshot: a zero difference within zero error


def test_trapped_abps_without_translational_noise_have_epr_d_times_trap():
    system = a.ABP(16, box_length=40.0, v0=0.7, rotational_diffusion=0.5, eps=0.0, k=0.0, trap=0.8)
    traj = a.simulate(system, 100, 0.01, seed=1, save_every=10, progress=False)
    result = a.learning_free_epr(system, traj)
    assert result.per_particle.value == pytest.approx(2 * 0.8, rel=1e-12)
    assert result.active_work is None


def test_interacting_abps_identity_agrees_with_active_work_form():
    # No closed form: the two forms are different estimators of the same EPR (physics.md §4, ABPs with ε > 0).
    system = a.ABP(64, packing_fraction=0.4, v0=1.0, rotational_diffusion=1.0, eps=0.2, beta=None)
    traj = a.simulate(system, 20_000, 0.002, seed=11, burn_in=5_000, save_every=100, progress=False)
    result = a.learning_free_epr(system, traj)
    diff = (result.per_snapshot - result.active_work_per_snapshot) / system.n_particles
    batches = np.array([c.mean() for c in np.array_split(diff, 10)])
    stderr = batches.std(ddof=1) / np.sqrt(len(batches))
    assert abs(diff.mean()) < 4 * stderr
    # The interactions matter: the EPR is well away from the free value v0²/ε.
    assert abs(result.per_particle.value - 1.0 / 0.2) > 10 * result.per_particle.stderr
    # Arrays (x, g = (cos θ, sin θ)) give the same numbers as the trajectory.
    again = a.learning_free_epr(system, (traj.x, traj.g))
    np.testing.assert_array_equal(again.per_snapshot, result.per_snapshot)
