"""The drift-response score (activescore.learning.linear): its pieces against float64 references and finite
differences, its fit against the exact Gaussian score, and the variational bound in the MIPS regime."""

import numpy as np
import pytest
import scipy.sparse as sparse

import activescore as a
from activescore import exact
from activescore.estimation.statistics import ratio_estimate
from activescore.learning.linear import LinearScore, fit_linear_score, pair_jacobian, response_features


def relative_fisher_error(s, exact_s):
    return float(np.sum((s - exact_s) ** 2) / np.sum(exact_s**2))


def clustered(system, seed=0):
    """A configuration with many overlapping contacts: a short run from a uniform start."""
    traj = a.simulate(system, 400, 0.05, seed=seed, save_every=400, progress=False)
    return np.asarray(traj.x[-1]), np.asarray(traj.g[-1])


SYSTEMS = [
    a.mips(48, 0.7, trap=0.01),
    a.AOUP(40, packing_fraction=0.6, v0=0.5, gamma=0.5, eps=0.0, beta=None, radius=np.linspace(0.8, 1.2, 40)),
]


@pytest.mark.parametrize("system", SYSTEMS, ids=["softplus-trapped", "harmonic-polydisperse"])
def test_force_and_jacobian_match_the_simulator_and_finite_differences(system):
    x, _ = clustered(system)
    force, jacobian = pair_jacobian(system, x)
    np.testing.assert_allclose(force, a.forces(system, x), rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        jacobian.diagonal().reshape(-1, 2).sum(axis=1), a.drift_divergence(system, x), rtol=0, atol=1e-12
    )
    n, h = system.n_particles, 1e-6
    numeric = np.zeros((2 * n, 2 * n))
    for c in range(2 * n):
        step = np.zeros(2 * n)
        step[c] = h
        plus = a.forces(system, x + step.reshape(n, 2))
        minus = a.forces(system, x - step.reshape(n, 2))
        numeric[:, c] = (plus - minus).ravel() / (2 * h)
    # The harmonic force has a kink at contact; no pair sits within h of it here.
    np.testing.assert_allclose(jacobian.toarray(), numeric, rtol=0, atol=1e-7 * np.abs(numeric).max())


def test_feature_divergences_are_exact():
    system = SYSTEMS[0]
    x, g = clustered(system, seed=3)
    order = 3
    _, divergence = response_features(system, x, g, order)
    # The features are linear in g: a central difference is exact up to rounding.
    h = 1e-2
    numeric = np.zeros_like(divergence)
    for i in range(system.n_particles):
        for d in range(2):
            plus, minus = g.copy(), g.copy()
            plus[i, d] += h
            minus[i, d] -= h
            numeric[:, i] += (
                response_features(system, x, plus, order)[0][:, i, d]
                - response_features(system, x, minus, order)[0][:, i, d]
            ) / (2 * h)
    scale = np.maximum(np.abs(divergence).max(axis=1, keepdims=True), 1.0)
    np.testing.assert_allclose(divergence / scale, numeric / scale, rtol=0, atol=1e-9)


@pytest.mark.parametrize("v0,gamma,trap", [(0.5, 0.3, 0.7), (0.025, 1e-2, 0.05), (1.0, 2.0, 0.2)])
def test_the_fit_recovers_the_exact_gaussian_score_through_the_defaults(v0, gamma, trap):
    # Trapped free AOUPs with ε = 0: the exact score lies in the span of g, F/v0 and M b_x (module docstring).
    system = a.AOUP(200, packing_fraction=0.01, v0=v0, gamma=gamma, eps=0.0, k=0.0, trap=trap)
    x, g = exact.gaussian_samples(system, 400, seed=1)
    score = fit_linear_score(system, (x, g))
    test_x, test_g = exact.gaussian_samples(system, 4, seed=2)
    exact_score = exact.GaussianScore(system)
    learned = np.stack([score(xf, gf)[1] for xf, gf in zip(test_x, test_g, strict=True)])
    truth = np.stack([exact_score(xf, gf)[1] for xf, gf in zip(test_x, test_g, strict=True)])
    # The fit's error is that of a few coefficients from 400 × 200 × 2 samples (at 40 frames it was 0.029 % ±
    # 0.001 % for all three: the same dimensionless problem); its upper limit at 5 standard errors (delta method over
    # the independent particles) must stay below 0.2 %, room for the data's draw.
    per_particle = np.sum((learned - truth) ** 2, axis=-1).ravel(), np.sum(truth**2, axis=-1).ravel()
    error = ratio_estimate(*per_particle, 40, "relative Fisher error", None)
    assert error.value == pytest.approx(relative_fisher_error(learned, truth), rel=1e-12)
    assert error.value + 5 * error.stderr <= 0.002, error
    # The EPR: paired with the exact score on the same frames, the fit's own error, which falls as 1/√(training
    # frames) (measured +0.41 %, +0.46 %, −0.19 % from 400 frames; +0.9 %, +1.3 %, −4.9 % from 40): bar 1 %. The
    # frames' draw: the exact score's EPR within 5 standard errors of the exact value.
    frames_x, frames_g = exact.gaussian_samples(system, 20, seed=3)
    result = a.estimate(score, (frames_x, frames_g), system=system, progress=False)
    reference = a.estimate(exact_score, (frames_x, frames_g), system=system, progress=False)
    learned, truth = result.epr_per_particle["quadratic"], reference.epr_per_particle["quadratic"]
    assert abs(learned.value / truth.value - 1) <= 0.01, (learned, truth)
    assert abs(truth.value - exact.gaussian_epr(system)) <= 5 * truth.stderr, truth
    assert score.validation.consistent


@pytest.mark.parametrize("v0,gamma,trap", [(0.5, 0.3, 0.7), (0.025, 1e-4, 1.0)])
def test_the_linear_aoup_score_is_the_closure_with_coefficients_0_minus1_1(v0, gamma, trap):
    # physics.md §6: for ẋ = −A x + v0 g, s_g = (M − γ) b_x/(γ v0) = −g − φ_1 + φ_2 exactly.
    system = a.AOUP(50, packing_fraction=0.01, v0=v0, gamma=gamma, eps=0.0, k=0.0, trap=trap)
    x, g = exact.gaussian_samples(system, 2, seed=3)
    closure = LinearScore(system, [0.0, -1.0, 1.0], order=1)
    truth = exact.GaussianScore(system)
    for xf, gf in zip(x, g, strict=True):
        expected = truth(xf, gf)[1]
        np.testing.assert_allclose(closure(xf, gf)[1], expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())
        np.testing.assert_allclose(closure.divergence_g(xf, gf), truth.divergence_g(xf, gf), rtol=1e-12)


def test_the_fit_is_the_minimiser_of_the_implicit_loss():
    system = SYSTEMS[0]
    traj = a.simulate(system, 2000, 0.1, seed=2, save_every=200, burn_in=2000, progress=False)
    score = fit_linear_score(system, traj, order=2, holdout=0.0)

    def implicit_loss(coefficients):
        trial = LinearScore(system, coefficients, 2)
        total = 0.0
        for xf, gf in zip(traj.x, traj.g, strict=True):
            _, s_g = trial(xf, gf)
            total += np.sum(s_g**2) + 2 * np.sum(trial.divergence_g(xf, gf))
        return total / len(traj.x)

    best = implicit_loss(score.coefficients)
    rng = np.random.default_rng(0)
    for _ in range(4):
        nudged = score.coefficients * (1 + 1e-3 * rng.normal(size=score.coefficients.shape))
        assert implicit_loss(nudged) > best


def test_in_the_mips_regime_the_bound_holds_and_the_score_transfers(tmp_path):
    # γ = 1e-2, φ = 0.5: the implied EPR is a lower bound on the identity (within its errors). How much of it the
    # features capture is a function-class gap, not noise: measured learned/identity (divergence form) 0.774 here
    # (± 0.001 from the 3 held-out frames), and over seeds 1-6 of this run 0.81 with a seed-to-seed spread of 0.046
    # (0.76-0.89); the bar is that mean less 3 spreads.
    system = a.mips(256, 0.5, gamma=1e-2)
    traj = a.simulate(system, 24 * 200, 0.1, seed=1, save_every=200, burn_in=4000, progress=False)
    score = fit_linear_score(system, traj)
    v = score.validation
    ratio, stderr = v.ratio("divergence")
    assert 0.81 - 3 * 0.046 < ratio < 1 + 3 * stderr
    assert v["lower_bound"][0] <= v["identity"][0] + 3 * v["identity"][1]
    loaded = LinearScore.load(score.save(tmp_path / "linear.json"))
    np.testing.assert_array_equal(loaded.coefficients, score.coefficients)
    assert loaded.validation.to_dict() == v.to_dict()
    bigger = system.with_size(512)
    big = a.simulate(bigger, 200, 0.1, seed=3, save_every=200, progress=False)
    transferred = a.estimate(loaded, big, system=bigger, transfer=True, progress=False)
    direct = LinearScore(bigger, score.coefficients, score.order)
    # The features are local: applied at N = 512 through transfer, the score is the one built for N = 512.
    at_size = a.estimate(direct, big, system=bigger, progress=False)
    for form in ("quadratic", "divergence"):
        value = transferred.epr_per_particle[form].value
        assert value == pytest.approx(at_size.epr_per_particle[form].value, rel=1e-12) and value > 0
    np.testing.assert_allclose(direct(big.x[-1], big.g[-1])[1], loaded(big.x[-1], big.g[-1], bigger.box_length)[1])


@pytest.mark.parametrize(
    "system,kwargs,names",
    [
        (a.AOUP(32, packing_fraction=0.3, eps=0.1), {}, "eps = 0"),
        (a.mips(32, 0.3), dict(order=0), "order"),
        (a.mips(32, 0.3), dict(holdout=1.0), "holdout"),
    ],
)
def test_set_ups_it_cannot_fit_are_refused(system, kwargs, names):
    traj = a.simulate(system, 20, 0.01, seed=1, save_every=5, progress=False)
    with pytest.raises(ValueError, match=names):
        fit_linear_score(system, traj, **kwargs)


def test_the_closure_is_exact_for_any_fixed_symmetric_stable_coupling(monkeypatch):
    # physics.md §6: for ẋ = M x + v0 g, ġ = −γ g + √(2γ) ξ with M symmetric negative definite (not a multiple of
    # the identity), the stationary Gaussian's g-score is (M − γ) b_x/(γ v0), b_x = M x + v0 g. The package's
    # LinearScore with coefficients (0, −1, 1) is run on such a coupling (its force and drift Jacobian replaced by
    # M x and M on three particles) and compared with the score and divergence of the Lyapunov covariance of the
    # full linear system, solved independently by scipy in float64.
    from scipy.linalg import solve_continuous_lyapunov

    from activescore.learning import linear

    rng = np.random.default_rng(7)
    n, v0, gamma = 3, 0.3, 0.05
    d = 2 * n
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    m = -(q * rng.uniform(0.2, 3.0, d)) @ q.T  # symmetric, eigenvalues in [-3, -0.2]
    drift = np.block([[m, v0 * np.eye(d)], [np.zeros((d, d)), -gamma * np.eye(d)]])
    diffusion = np.block([[np.zeros((d, d)), np.zeros((d, d))], [np.zeros((d, d)), 2 * gamma * np.eye(d)]])
    precision = np.linalg.inv(solve_continuous_lyapunov(drift, -diffusion))
    monkeypatch.setattr(
        linear, "pair_jacobian", lambda system, x: ((m @ np.ravel(x)).reshape(-1, 2), sparse.csr_matrix(m))
    )
    system = a.AOUP(n, box_length=1e3, v0=v0, gamma=gamma, eps=0.0, k=0.0, trap=1.0)
    closure = LinearScore(system, [0.0, -1.0, 1.0], order=1)
    for z in rng.normal(size=(5, 2 * d)):
        x, g = z[:d].reshape(n, 2), z[d:].reshape(n, 2)
        exact_g_score = -(precision @ z)[d:]
        learned = closure(x, g)[1].ravel()
        np.testing.assert_allclose(learned, exact_g_score, rtol=1e-9, atol=1e-9 * np.abs(exact_g_score).max())
    exact_divergence = -np.diag(precision)[d:].reshape(n, 2).sum(axis=1)  # ∇_{g_i}·s_g,i = −tr P_{g_i g_i}
    np.testing.assert_allclose(closure.divergence_g(x, g), exact_divergence, rtol=1e-9)
