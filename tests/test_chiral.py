"""Chiral active particles (ω ≠ 0): AOUP and ABP whose propulsion turns at a constant angular velocity.

Exact references, each computed here in float64 from its closed form:
- the propulsion of the simulated chain: ⟨g(t)·g(0)⟩ = 2 e^{−γt} cos ωt and ⟨g(0) × g(t)⟩ = 2 e^{−γt} sin ωt (AOUP),
  θ(t) − θ(0) ~ N(ω t, 2 D_r t) (ABP), stationary g ~ N(0, I);
- the mean-square displacement of free particles, v0² dt² Σ_{k,l<n} C(k − l) + 4 ε n dt with C the chain's
  ⟨g_k·g_l⟩ (exact for the Euler step in x over the exact propulsion update);
- the EPR of free particles, d v0²/ε + d ω²/γ (AOUP) and v0²/ε + ω²/D_r (ABP), through ``estimate`` with the exact
  score and through the learning-free identity (ε > 0 and ε = 0);
- trapped non-interacting chiral AOUPs: a 4 × 4 Gaussian (Lyapunov), its covariance against the simulator, its
  EPR against ``estimate`` with its exact score and against a score trained through ``train_score``'s defaults.
Statistical bars are N_SE standard errors computed here from independent particles or snapshots.
"""

import math

import numpy as np
import pytest

import activescore as a
from activescore.exact import FreeScore, GaussianScore, discrete_lyapunov_covariance, lyapunov_covariance
from activescore.learning import train_score

N_SE = 4
QUARTER_TURN = np.array([[0.0, -1.0], [1.0, 0.0]])


def within(value, expected, stderr, n_se=N_SE):
    assert abs(value - expected) <= n_se * stderr + 1e-12 * abs(expected), (value, expected, stderr)


def free_run(system, n_steps, dt, save_every, seed=3):
    return a.simulate(system, n_steps, dt, seed=seed, save_every=save_every, progress=False)


def displacement(x, x0, box_length):
    d = x - x0
    return d - box_length * np.round(d / box_length)


def chain_msd(n, dt, v0, eps, correlation):
    """MSD after n Euler steps x' = x + dt v0 g_k + √(2ε dt) ξ, with ⟨g_k·g_l⟩ = correlation(|k − l|)."""
    lags = np.arange(1, n)
    return 4 * eps * n * dt + v0**2 * dt**2 * (n * correlation(0) + 2 * np.sum((n - lags) * correlation(lags)))


# ------------------------------------------------------------------------------------------ the model itself


def test_chiral_parameters_reach_every_backend_and_zero_is_the_old_model():
    system = a.AOUP(64, packing_fraction=0.3, omega=0.7)
    assert system.chiral and system.spec().propulsion == (system.gamma, 0.7)
    assert a.ABP(64, packing_fraction=0.3, omega=-1.0).spec().propulsion == (1.0, -1.0)
    assert a.system_from_dict(system.to_dict()) == system
    plain = a.AOUP(64, packing_fraction=0.3)
    assert not plain.chiral and plain.omega == 0.0
    with pytest.raises(ValueError, match="omega"):
        a.AOUP(64, packing_fraction=0.3, omega=float("nan"))
    with pytest.raises(ValueError, match="omega"):
        GaussianScore(a.AOUP(16, box_length=100.0, k=0.0, trap=1.0, eps=0.1, omega=1.0))


def test_chiral_drift_turns_counter_clockwise():
    g = np.array([[1.0, 0.0], [0.0, 2.0]])
    aoup = a.AOUP(2, box_length=50.0, gamma=0.5, omega=3.0)
    np.testing.assert_allclose(aoup.propulsion_drift(g), -0.5 * g + 3.0 * g @ QUARTER_TURN.T)
    np.testing.assert_allclose(a.drift(aoup, np.zeros((2, 2)), g)[1], aoup.propulsion_drift(g))
    abp = a.ABP(2, box_length=50.0, rotational_diffusion=0.5, omega=3.0)
    np.testing.assert_allclose(abp.propulsion_drift(g), [[3.0], [3.0]])
    # Itô drift of g = (cos θ, sin θ): −D_r g + ω J g.
    np.testing.assert_allclose(a.drift(abp, np.zeros((2, 2)), g)[1], -0.5 * g + 3.0 * g @ QUARTER_TURN.T)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_backends_give_the_same_chiral_trajectory(backend, core):
    system = a.AOUP(200, packing_fraction=0.5, v0=0.5, gamma=0.5, eps=0.05, omega=2.0)
    ref = a.simulate(system, 300, 0.01, seed=5, save_every=100, backend="cpp", progress=False)
    run = a.simulate(system, 300, 0.01, seed=5, save_every=100, backend=backend, progress=False)
    np.testing.assert_allclose(run.q, ref.q, rtol=1e-12, atol=1e-12)
    assert np.max(np.abs(displacement(run.x, ref.x, system.box_length))) < 1e-11


# ------------------------------------------------------------------------------------- propulsion statistics


def test_chiral_aoup_propulsion_turns_and_stays_standard_normal():
    gamma, omega, dt = 0.5, 2.0, 0.01
    system = a.AOUP(4000, box_length=2000.0, k=0.0, v0=0.0, gamma=gamma, eps=0.0, omega=omega)
    run = free_run(system, 150, dt, 50)  # lags 0.5, 1, 1.5 (the start is stationary: g ~ N(0, I))
    g0 = run.q[0]
    np.testing.assert_allclose(np.cov(g0.T), np.eye(2), atol=N_SE * math.sqrt(2 / len(g0)))
    for frame in (1, 2, 3):
        t = frame * 50 * dt
        dot = np.einsum("ij,ij->i", g0, run.q[frame])
        cross = g0[:, 0] * run.q[frame][:, 1] - g0[:, 1] * run.q[frame][:, 0]
        se = math.sqrt(len(g0))
        within(dot.mean(), 2 * math.exp(-gamma * t) * math.cos(omega * t), dot.std() / se)
        within(cross.mean(), 2 * math.exp(-gamma * t) * math.sin(omega * t), cross.std() / se)
        g = run.q[frame]
        within(np.mean(np.sum(g**2, axis=1)), 2.0, np.std(np.sum(g**2, axis=1)) / se)


def test_chiral_abp_angle_drifts_at_omega():
    rotational_diffusion, omega, dt = 0.3, -1.5, 0.01
    system = a.ABP(4000, box_length=2000.0, k=0.0, v0=0.0, rotational_diffusion=rotational_diffusion, omega=omega)
    run = free_run(system, 200, dt, 100)
    turn = run.q[2][:, 0] - run.q[0][:, 0]
    t = 200 * dt
    se = math.sqrt(len(turn))
    within(turn.mean(), omega * t, turn.std() / se)
    within(turn.var(), 2 * rotational_diffusion * t, turn.var() * math.sqrt(2 / (len(turn) - 1)))


@pytest.mark.parametrize("model", ["aoup", "abp"])
def test_free_chiral_msd_is_the_chain_formula(model):
    v0, eps, rate, omega, dt, n = 1.0, 0.05, 0.4, 2.5, 0.01, 300
    if model == "aoup":
        system = a.AOUP(3000, box_length=5000.0, k=0.0, v0=v0, gamma=rate, eps=eps, omega=omega)
        norm = 2.0  # E|g|² = d
    else:
        system = a.ABP(3000, box_length=5000.0, k=0.0, v0=v0, rotational_diffusion=rate, eps=eps, omega=omega)
        norm = 1.0

    def correlation(lag):
        return norm * np.exp(-rate * lag * dt) * np.cos(omega * lag * dt)

    run = free_run(system, n, dt, n // 2)
    for frame, steps in ((1, n // 2), (2, n)):
        square = np.sum(displacement(run.x[frame], run.x[0], system.box_length) ** 2, axis=1)
        within(square.mean(), chain_msd(steps, dt, v0, eps, correlation), square.std() / math.sqrt(len(square)))
    # Chirality slows the spreading: the same particles without the turn spread further.
    straight = chain_msd(n, dt, v0, eps, lambda lag: norm * np.exp(-rate * lag * dt))
    assert chain_msd(n, dt, v0, eps, correlation) < 0.9 * straight


# ------------------------------------------------------------------------------------------- entropy production


@pytest.mark.parametrize("model", ["aoup", "abp"])
def test_free_chiral_epr_through_estimate_and_identity(model):
    v0, eps, rate, omega = 0.8, 0.2, 0.5, 1.5
    if model == "aoup":
        system = a.AOUP(400, box_length=400.0, k=0.0, v0=v0, gamma=rate, eps=eps, omega=omega)
        exact = 2 * v0**2 / eps + 2 * omega**2 / rate
    else:
        system = a.ABP(400, box_length=400.0, k=0.0, v0=v0, rotational_diffusion=rate, eps=eps, omega=omega)
        exact = v0**2 / eps + omega**2 / rate
    run = free_run(system, 2000, 0.01, 100)
    result = a.estimate(FreeScore(system), run, progress=False)
    for form in ("quadratic", "divergence"):
        within(result.epr_per_particle[form].value, exact, result.epr_per_particle[form].stderr)
    identity = a.learning_free_epr(system, run, progress=False)
    within(identity.per_particle.value, exact, identity.per_particle.stderr)
    within(identity.active_work_per_particle.value, exact, identity.active_work_per_particle.stderr)
    # The propulsion's share is the chiral turn's alone.
    split = result.split["quadratic"]["g"]
    within(split.value, exact - (2 if model == "aoup" else 1) * v0**2 / eps, split.stderr)


def test_free_chiral_epr_without_translational_noise():
    # ε = 0: the identity is −E[∇·b_x] (0 here) plus the turn's d ω²/γ; the exact score's v_g = ω J g gives it too.
    gamma, omega = 0.5, 1.2
    system = a.AOUP(400, box_length=400.0, k=0.0, v0=0.5, gamma=gamma, omega=omega)
    run = free_run(system, 1000, 0.01, 50)
    exact = 2 * omega**2 / gamma
    identity = a.learning_free_epr(system, run, progress=False)
    assert identity.per_particle.value == pytest.approx(exact, rel=1e-12)  # a constant: no statistical error
    result = a.estimate(FreeScore(system), run, progress=False)
    within(result.epr_per_particle["quadratic"].value, exact, result.epr_per_particle["quadratic"].stderr)


# ------------------------------------------------------------------- trapped chiral AOUPs: a 4 × 4 Gaussian


def chiral_drift(system):
    """B and D of z = (x, y, g_x, g_y) for one non-interacting trapped chiral AOUP."""
    eye = np.eye(2)
    b = np.block(
        [[-system.trap * eye, system.v0 * eye], [np.zeros((2, 2)), -system.gamma * eye + system.omega * QUARTER_TURN]]
    )
    return b, np.diag([system.eps, system.eps, system.gamma, system.gamma])


def chiral_chain_covariance(system, dt):
    """The simulated chain's stationary covariance: Euler in x, the exact turning OU step in g."""
    eye = np.eye(2)
    decay = math.exp(-system.gamma * dt)
    c, s = math.cos(system.omega * dt), math.sin(system.omega * dt)
    transition = np.block(
        [[(1 - system.trap * dt) * eye, system.v0 * dt * eye], [np.zeros((2, 2)), decay * np.array([[c, -s], [s, c]])]]
    )
    noise = np.diag([2 * system.eps * dt] * 2 + [1 - decay**2] * 2)
    return discrete_lyapunov_covariance(transition, noise)


class ChiralGaussianScore:
    """s = −S⁻¹ z per particle for the 4 × 4 stationary covariance S (the score protocol of ``estimate``)."""

    sigma = 0.0

    def __init__(self, system, covariance):
        self.system = system
        self.precision = np.linalg.inv(covariance)

    def __call__(self, x, g):
        s = -np.concatenate([x, g], axis=1) @ self.precision.T
        return s[:, :2], s[:, 2:]

    def divergence_g(self, x, g):
        return np.full(len(x), -np.trace(self.precision[2:, 2:]))

    def divergence_x(self, x, g):
        return np.full(len(x), -np.trace(self.precision[:2, :2]))


def chiral_gaussian_epr(system):
    """E[v·D⁻¹v] per particle, v = (B + D S⁻¹) z."""
    b, d = chiral_drift(system)
    cov = lyapunov_covariance(b, d)
    m = b + d @ np.linalg.inv(cov)
    return float(np.trace(m.T @ np.linalg.inv(d) @ m @ cov)), cov


def trapped_chiral(omega=2.0, n=2000):
    return a.AOUP(n, box_length=400.0, k=0.0, trap=1.0, eps=0.5, gamma=1.0, v0=1.5, omega=omega)


def test_chiral_gaussian_reference_reduces_to_the_exact_one_without_turn():
    plain = trapped_chiral(omega=0.0, n=8)
    epr, cov = chiral_gaussian_epr(plain)
    assert epr == pytest.approx(a.exact.gaussian_epr(plain), rel=1e-12)
    np.testing.assert_allclose(cov[[0, 2]][:, [0, 2]], a.exact.trapped_aoup_covariance(plain), rtol=1e-12)
    # The turn adds entropy: d ω²/γ from the propulsion alone at least.
    assert chiral_gaussian_epr(trapped_chiral())[0] > epr + 2 * 2.0**2 / 1.0


def test_trapped_chiral_simulation_has_the_chain_covariance():
    system, dt = trapped_chiral(), 0.01
    run = a.simulate(system, 1600, dt, seed=9, save_every=400, burn_in=1000, init="uniform", progress=False)
    cov = chiral_chain_covariance(system, dt)
    z = np.concatenate([run.x, run.q], axis=2).reshape(-1, 4)  # 4 frames 4 relaxation times apart
    products = z[:, :, None] * z[:, None, :]
    mean, se = products.mean(axis=0), products.std(axis=0) / math.sqrt(len(z))
    assert np.all(np.abs(mean - cov) <= N_SE * se), (mean, cov, se)
    # The turn correlates x with the perpendicular propulsion: ⟨x g_y − y g_x⟩ > 0 for ω > 0.
    assert cov[0, 3] - cov[1, 2] > 0.1


def test_trapped_chiral_epr_through_estimate_with_its_exact_score():
    system = trapped_chiral(n=500)
    exact, cov = chiral_gaussian_epr(system)
    rng = np.random.default_rng(4)
    z = rng.standard_normal((40, system.n_particles, 4)) @ np.linalg.cholesky(cov).T
    x, g = np.ascontiguousarray(z[..., :2]), np.ascontiguousarray(z[..., 2:])
    result = a.estimate(ChiralGaussianScore(system, cov), (x, g), system=system, progress=False)
    for form in ("quadratic", "divergence"):
        within(result.epr_per_particle[form].value, exact, result.epr_per_particle[form].stderr)
    within(result.identity.per_particle.value, exact, result.identity.per_particle.stderr)


def test_trapped_chiral_score_through_train_score_defaults():
    system = trapped_chiral(n=64)
    exact, cov = chiral_gaussian_epr(system)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((200, system.n_particles, 4)) @ np.linalg.cholesky(cov).T
    score = train_score(system, (z[..., :2], z[..., 2:]), progress=False)
    fresh = rng.standard_normal((50, system.n_particles, 4)) @ np.linalg.cholesky(cov).T
    result = a.estimate(score, (fresh[..., :2], fresh[..., 2:]), system=system, progress=False)
    learned = result.epr_per_particle["quadratic"]
    # The learning error is systematic (a finite training run); the bar is the non-chiral Gaussian's 3 % of the
    # defaults' tests (test_score_defaults) plus N_SE standard errors of the 50 fresh frames.
    assert abs(learned.value - exact) <= 0.03 * exact + N_SE * learned.stderr, (learned, exact)
    assert score.validation.consistent
