"""Learned scores of non-interacting trapped AOUPs against the exact Gaussian score (physics.md §5).

Samples are drawn exactly from the stationary Gaussian (no simulator), in a box so large that wrapping never
matters. The particles are independent, so each particle's tokens are itself alone (k = 1, as the defaults choose
for non-interacting particles): the neighbour set never changes and the network needs no cutoff.

Tolerance: relative Fisher error E|s − s*|² / E|s*|² ≤ 2 % (the issue's bar). These runs reach 0.3–0.5 %; the
Monte-Carlo error of the estimate over 2000 fresh particles is ≈ 3 % of its value, negligible against the margin.
"""

import numpy as np
import pytest
from scipy.linalg import solve_continuous_lyapunov

import activescore
from activescore import exact
from activescore.learning import ScoreNetConfig, TrainConfig, train_score
from score_helpers import (
    gaussian_score,
    relative_fisher_error,
    sample_trapped_aoups,
    score_on_frames,
    trapped_aoup_covariance,
)

TRAP, GAMMA, V0 = 1.0, 1.0, 1.0
N = 8
TRAIN_SAMPLES = 80_000  # finite data is what limits DSM at small σ (it starts to memorise): 2e4 gave ≈ 1.5 %
TOLERANCE = 0.02


@pytest.mark.parametrize("trap,gamma,v0", [(TRAP, GAMMA, V0), (0.3, 2.5, 0.7)])
def test_the_packages_lyapunov_solution_matches_closed_forms_and_scipy(trap, gamma, v0):
    # The package's stationary covariance (exact.trapped_aoup_covariance, through its Lyapunov solver) against the
    # closed form of physics.md §5 (score_helpers) and scipy's Bartels–Stewart solver.
    for eps in (0.0, 0.3):
        system = activescore.AOUP(N, box_length=1e3, v0=v0, gamma=gamma, eps=eps, k=0.0, trap=trap, beta=None)
        s = exact.trapped_aoup_covariance(system)
        np.testing.assert_allclose(s, trapped_aoup_covariance(trap, gamma, v0, eps), rtol=1e-12)
        drift = np.array([[-trap, v0], [0.0, -gamma]])
        np.testing.assert_allclose(s, solve_continuous_lyapunov(drift, -2 * np.diag([eps, gamma])), rtol=1e-12)
        if eps == 0:  # non-degenerate even without translational noise when γ > 0 and A > 0
            assert np.linalg.det(s) == pytest.approx(v0**2 * gamma / (trap * (trap + gamma) ** 2), rel=1e-9)
    # A general stable, non-normal 3×3 drift against scipy.
    rng = np.random.default_rng(4)
    b = np.diag([-0.5, -1.0, -2.0]) + np.triu(rng.normal(size=(3, 3)), 1)
    d = np.diag([0.2, 0.0, 1.5])
    np.testing.assert_allclose(exact.lyapunov_covariance(b, d), solve_continuous_lyapunov(b, -2 * d), rtol=1e-12)
    assert exact.lyapunov_covariance(np.array([[-2.0]]), np.array([[1.0]]))[0, 0] == pytest.approx(0.5)


def trapped_system(eps):
    return activescore.AOUP(N, box_length=1e3, v0=V0, gamma=GAMMA, eps=eps, k=0.0, trap=TRAP, beta=None)


def learn_and_compare(eps, loss, sigma, seed):
    covariance = trapped_aoup_covariance(TRAP, GAMMA, V0, eps)
    rng = np.random.default_rng(seed)
    x, g = sample_trapped_aoups(rng, covariance, TRAIN_SAMPLES // N, N)
    config = ScoreNetConfig.small(k=1, predict_x=eps > 0, absolute_position=True, readout_skip=True)
    training = TrainConfig(
        loss=loss, sigmas=sigma or (), n_steps=800, batch_particles=256, learning_rate=1e-2, seed=seed, holdout=0.0
    )
    score = train_score(trapped_system(eps), (x, g), config, training, progress=False)
    x_test, g_test = sample_trapped_aoups(rng, covariance, 250, N)
    s_x, s_g = score_on_frames(score, x_test, g_test)
    # DSM learns the score of ρ * N(0, σ²) on the noisy coordinates (g, and x when ε > 0), itself Gaussian.
    smoothing = (sigma if eps > 0 else 0.0, sigma) if loss == "dsm" else (0.0, 0.0)
    exact_x, exact_g = gaussian_score(x_test, g_test, covariance, smoothing)
    if s_x is None:
        return relative_fisher_error(s_g, exact_g)
    return relative_fisher_error(np.stack([s_x, s_g]), np.stack([exact_x, exact_g]))


def test_dsm_with_translational_noise_learns_the_smoothed_score():
    # σ = 0.1: the smoothed score differs from the exact one by ≈ 1 %, so comparing with the smoothed Gaussian
    # checks that DSM has the right minimiser, not just a nearby one.
    assert learn_and_compare(eps=0.5, loss="dsm", sigma=0.1, seed=0) <= TOLERANCE


def test_implicit_loss_without_translational_noise_learns_the_exact_g_score():
    # ε = 0: only s_g is defined and learned; the implicit loss has no smoothing bias.
    assert learn_and_compare(eps=0.0, loss="implicit", sigma=None, seed=1) <= TOLERANCE
