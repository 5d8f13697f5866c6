"""Learned scores of non-interacting trapped AOUPs against the exact Gaussian score (physics.md §5).

Samples are drawn exactly from the stationary Gaussian (no simulator), in a box so large that wrapping never
matters. Frames hold k = N = 8 particles, so every particle's tokens are the whole frame: the neighbour set never
changes and the network needs no cutoff.

Tolerance: relative Fisher error E|s − s*|² / E|s*|² ≤ 2 % (the issue's bar). These runs reach ≈ 0.7 %; the
Monte-Carlo error of the estimate over 2000 fresh particles is ≈ 3 % of its value, negligible against the margin.
"""

import numpy as np
import pytest

pytest.importorskip("activescore._core", reason="the compiled core is not built")

import activescore  # noqa: E402
from activescore.learning import ScoreNetConfig, TrainConfig, train_score  # noqa: E402
from score_helpers import (  # noqa: E402
    gaussian_score,
    lyapunov_covariance,
    relative_fisher_error,
    sample_trapped_aoups,
    score_on_frames,
    trapped_aoup_covariance,
)

TRAP, GAMMA, V0 = 1.0, 1.0, 1.0
N = 8
TRAIN_SAMPLES = 80_000  # finite data is what limits DSM at small σ (it starts to memorise): 2e4 gave ≈ 1.5 %
TOLERANCE = 0.02


def test_lyapunov_solution_matches_closed_forms():
    for eps in (0.0, 0.3):
        s = trapped_aoup_covariance(TRAP, GAMMA, V0, eps)
        expected = np.array(
            [[eps / TRAP + V0**2 / (TRAP * (TRAP + GAMMA)), V0 / (TRAP + GAMMA)], [V0 / (TRAP + GAMMA), 1.0]]
        )
        np.testing.assert_allclose(s, expected, rtol=1e-12)
        if eps == 0:  # non-degenerate even without translational noise when γ > 0 and A > 0
            assert np.linalg.det(s) == pytest.approx(V0**2 * GAMMA / (TRAP * (TRAP + GAMMA) ** 2), rel=1e-9)
        drift = np.array([[-TRAP, V0], [0.0, -GAMMA]])
        residual = drift @ s + s @ drift.T + 2 * np.diag([eps, GAMMA])
        np.testing.assert_allclose(residual, 0.0, atol=1e-12)
    assert lyapunov_covariance(np.array([[-2.0]]), np.array([[1.0]]))[0, 0] == pytest.approx(0.5)


def trapped_system(eps):
    return activescore.AOUP(N, box_length=1e3, v0=V0, gamma=GAMMA, eps=eps, k=0.0, trap=TRAP, beta=None)


def learn_and_compare(eps, loss, sigma, seed):
    covariance = trapped_aoup_covariance(TRAP, GAMMA, V0, eps)
    rng = np.random.default_rng(seed)
    x, g = sample_trapped_aoups(rng, covariance, TRAIN_SAMPLES // N, N)
    config = ScoreNetConfig.small(k=N, predict_x=eps > 0, absolute_position=True, readout_skip=True)
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
