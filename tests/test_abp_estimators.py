"""Score-based estimators for ABPs (physics.md §4, "ABPs in the score-based estimators") against exact answers:
free ABPs (s = 0, EPR = v0²/ε per particle), equilibrium ABPs (v = 0), a wrong θ-score whose two forms have
different known means, and the refusals of bad ABP input.

Tolerances are in standard errors (batch means over exact independent samples, fixed seeds); quantities that are
exact for an exact score are checked to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import activescore as a
from activescore.exact import EquilibriumScore, FreeScore

N_SE = 5.0


def within(est, expected, n_se=N_SE):
    value, se = est
    assert np.isfinite(se)
    assert abs(value - expected) <= n_se * se + 1e-12 * max(1.0, abs(expected)), (value, expected, se)


def free_abp_samples(system, n_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact independent stationary snapshots of free ABPs in the periodic box: x and θ uniform and independent."""
    rng = np.random.default_rng(seed)
    half = system.box_length / 2
    x = rng.uniform(-half, half, (n_frames, system.n_particles, 2))
    theta = rng.uniform(0.0, 2 * np.pi, (n_frames, system.n_particles))
    return x, np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def free(eps: float, n: int = 64):
    return a.ABP(n, packing_fraction=0.2, v0=1.5, rotational_diffusion=2.0, eps=eps, k=0.0)


@pytest.mark.parametrize("eps", [0.3, 0.0], ids=["eps>0", "eps=0"])
def test_free_abps_with_the_exact_score_give_v0_squared_over_eps_in_every_snapshot(eps):
    system = free(eps)
    traj = a.simulate(system, 200, 0.01, seed=3, save_every=20, progress=False)
    r = a.estimate(FreeScore(system), traj, progress=False, bins=8)
    want = system.v0**2 / eps if eps > 0 else 0.0
    n = system.n_particles
    for form in ("quadratic", "divergence"):
        np.testing.assert_allclose(r.totals[form] / n, want, rtol=1e-12, atol=1e-12)
        assert r.epr_per_particle[form].value == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert r.split[form]["x"].value == pytest.approx(want, rel=1e-12, abs=1e-12)
        assert r.split[form]["g"].value == 0.0  # the θ share: s_θ = 0, b_θ = 0
        assert r.map.integral(form) == pytest.approx(r.epr[form].value, rel=1e-9, abs=1e-9)
        assert r.consistent(form)
    assert r.v_g.shape == (len(traj), n, 1) and np.all(r.v_g == 0)  # v_θ, one component per particle
    np.testing.assert_allclose(r.v_x, system.v0 * traj.g, rtol=1e-12)
    np.testing.assert_allclose(r.identity.per_snapshot / n, want, rtol=1e-12, atol=1e-12)
    assert "θ:" in str(r) and "g:" not in str(r)


def test_a_wrong_theta_score_has_the_predicted_quadratic_and_divergence_means():
    """s_θ = a sin(θ − φ) on uniform θ: E[v_θ²/D_r] = D_r a²/2, E[∂_θ v_θ] = −D_r a E[cos(θ − φ)] = 0."""
    system = free(0.3)
    x, g = free_abp_samples(system, 300, seed=4)
    amplitude, phase, d_r = 0.8, 0.3, system.rotational_diffusion

    class Wrong:
        sigma = 0.0

        def __init__(self):
            self.system = system

        def __call__(self, x, g):
            theta = np.arctan2(g[:, 1], g[:, 0])
            return np.zeros_like(x), amplitude * np.sin(theta - phase)  # s_θ given as (N,)

        def divergence_g(self, x, g):
            return amplitude * np.cos(np.arctan2(g[:, 1], g[:, 0]) - phase)

        def divergence_x(self, x, g):
            return np.zeros(len(x))

    r = a.estimate(Wrong(), (x, g), system=system, progress=False, bins=4)
    theta = np.arctan2(g[..., 1], g[..., 0])
    np.testing.assert_allclose(r.v_g[..., 0], -d_r * amplitude * np.sin(theta - phase), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.local.divergence_g, -d_r * amplitude * np.cos(theta - phase), rtol=1e-12, atol=1e-15)
    within(r.split["quadratic"]["g"], d_r * amplitude**2 / 2)
    within(r.split["divergence"]["g"], 0.0)
    assert r.split["quadratic"]["g"].value > 20 * r.split["quadratic"]["g"].stderr  # the test can see the share
    # The x block is exact (s_x = 0 is the true x-score): v0²/ε per particle in both forms.
    for form in ("quadratic", "divergence"):
        assert r.split[form]["x"].value == pytest.approx(system.v0**2 / system.eps, rel=1e-12)
    # The quadratic total is v0²/ε + D_r a²/2, away from the identity v0²/ε: flagged.
    assert not r.consistent("quadratic") and "INCONSISTENT" in str(r)


@pytest.fixture(scope="module")
def equilibrium_abps():
    system = a.ABP(64, packing_fraction=0.4, v0=0.0, rotational_diffusion=1.0, eps=0.2, k=1.0)
    traj = a.simulate(system, 20_000, 2e-3, seed=5, save_every=200, burn_in=5_000, progress=False, n_threads=1)
    return system, traj


def test_equilibrium_abps_with_the_exact_score_have_zero_velocity_and_epr(equilibrium_abps):
    system, traj = equilibrium_abps
    r = a.estimate(EquilibriumScore(system, n_threads=1), traj, progress=False, n_threads=1)
    scale = np.max(np.abs(a.forces(system, traj.x[-1])))
    assert scale > 0.1  # the particles do interact
    assert np.max(np.abs(r.v_x)) <= 1e-12 * scale
    assert r.v_g.shape[-1] == 1 and np.max(np.abs(r.v_g)) == 0.0
    assert np.max(np.abs(r.quadratic)) <= 1e-20 * (1 + scale**2) / system.eps
    assert np.max(np.abs(r.divergence)) <= 1e-12 * (1 + scale**2 / system.eps)
    within(r.identity.per_particle, 0.0)
    assert r.consistent("quadratic", n_se=N_SE)


def test_local_epr_of_one_abp_snapshot_matches_estimate(equilibrium_abps):
    system, traj = equilibrium_abps
    score = EquilibriumScore(system, n_threads=1)
    one = a.estimation.local_epr(score, traj.x[3], traj.g[3], n_threads=1)
    r = a.estimate(score, traj, frames=[3], progress=False, n_threads=1)
    np.testing.assert_array_equal(one.v_g, r.v_g[0])
    np.testing.assert_allclose(one.divergence, r.divergence[0])


class TorqueScore:
    """s_θ = c e⊥(θ)·F (F the interaction force on the particle, e⊥ = (−sin θ, cos θ)), ∂_θ s_θ = −c e(θ)·F:
    a one-feature family of θ-scores for ε = 0."""

    sigma = 0.0

    def __init__(self, system, c):
        self.system, self.c = system, c

    def feature(self, x, g):
        forces = a.forces(self.system, x, n_threads=1)
        return np.einsum("ij,ij->i", np.stack([-g[:, 1], g[:, 0]], axis=-1), forces), np.einsum("ij,ij->i", g, forces)

    def __call__(self, x, g):
        perpendicular, _ = self.feature(x, g)
        return None, self.c * perpendicular[:, None]

    def divergence_g(self, x, g):
        return -self.c * self.feature(x, g)[1]


def test_interacting_abps_without_translational_noise_implicit_optimum_of_a_family_obeys_the_identity():
    """For ε = 0 there is no closed form; what holds exactly (physics.md §4, §6): at the minimiser of the implicit
    loss over a linear family of θ-scores the two forms have the same mean (the optimality condition
    E[s_θ²] = −E[∂_θ s_θ]), and both are ≤ the EPR, which the learning-free identity gives (Cauchy–Schwarz:
    D_r E[s s*]²/E[s²] ≤ D_r E[s*²]). Fitted on half the frames, checked on the other half."""
    system = a.ABP(64, packing_fraction=0.4, v0=1.0, rotational_diffusion=1.0, eps=0.0, beta=None)
    traj = a.simulate(system, 40_000, 0.002, seed=11, burn_in=5_000, save_every=100, progress=False, n_threads=1)
    probe = TorqueScore(system, 1.0)
    fit = [probe.feature(x, g) for x, g in zip(traj.x[::2], traj.g[::2], strict=True)]
    # J(c) = c² E[f²] + 2 c E[∂_θ f] with ∂_θ f = −e·F: minimised at c = E[e·F] / E[f²].
    c = np.mean([np.sum(along) for _, along in fit]) / np.mean([np.sum(perp**2) for perp, _ in fit])
    r = a.estimate(TorqueScore(system, c), traj, frames=slice(1, None, 2), progress=False, n_threads=1)
    quadratic, divergence = r.epr_per_particle["quadratic"], r.epr_per_particle["divergence"]
    assert quadratic.value > 10 * quadratic.stderr  # the family captures a clear part of the EPR
    paired = r.totals["quadratic"] - r.totals["divergence"]
    batches = np.array([chunk.mean() for chunk in np.array_split(paired, 10)]) / system.n_particles
    assert abs(batches.mean()) <= N_SE * batches.std(ddof=1) / np.sqrt(len(batches))
    ident = r.identity.per_particle
    for est in (quadratic, divergence):
        assert est.value <= ident.value + N_SE * np.hypot(est.stderr, ident.stderr)
    assert np.all(r.local.quadratic_x == 0) and r.split["quadratic"]["x"].value == 0.0  # ε = 0: θ only


def test_bad_abp_input_is_rejected_naming_the_parameter():
    system = free(0.3, n=16)
    x, g = free_abp_samples(system, 3, seed=1)
    with pytest.raises(ValueError, match=r"^samples\.g: ABP propulsion vectors must be unit vectors"):
        a.estimate(FreeScore(system), (x, 2 * g), system=system)
    frozen = a.ABP(16, packing_fraction=0.2, v0=1.5, rotational_diffusion=0.0, eps=0.3, k=0.0)
    with pytest.raises(ValueError, match=r"^system: rotational_diffusion must be > 0"):
        a.estimate(FreeScore(frozen), (x, g), system=frozen)

    class VectorScore(FreeScore):  # an AOUP-shaped propulsion score (N, 2) for an ABP
        def __call__(self, x, g):
            return np.zeros_like(x), np.zeros_like(g)

    with pytest.raises(ValueError, match=r"^score s_g: expected shape \(16, 1\)"):
        a.estimate(VectorScore(system), (x, g), system=system)
    aoup = a.AOUP(16, packing_fraction=0.2, v0=1.5, eps=0.3, k=0.0)
    with pytest.raises(ValueError, match="^score: it is the score of AOUP"):
        a.estimate(FreeScore(aoup), (x, g), system=system)
    with pytest.raises(ValueError, match="k = 0 and trap = 0"):
        FreeScore(a.ABP(16, box_length=50.0, trap=0.5, k=0.0))
    with pytest.raises(ValueError, match="v0 = 0 and eps > 0"):
        EquilibriumScore(system)


def test_free_aoups_with_the_exact_score_give_d_v0_squared_over_eps():
    """The same exact score for AOUPs (s_x = 0, s_g = −g): EPR = d v0²/ε per particle (physics.md §5)."""
    system = a.AOUP(64, packing_fraction=0.2, v0=1.5, gamma=2.0, eps=0.3, k=0.0)
    rng = np.random.default_rng(2)
    half = system.box_length / 2
    x = rng.uniform(-half, half, (200, 64, 2))
    g = rng.standard_normal((200, 64, 2))
    r = a.estimate(FreeScore(system), (x, g), system=system, progress=False, bins=4)
    for form in ("quadratic", "divergence"):
        within(r.epr_per_particle[form], 2 * system.v0**2 / system.eps)
    np.testing.assert_allclose(r.local.quadratic_g, 0.0, atol=1e-12)
