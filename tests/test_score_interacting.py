"""Learned scores of interacting soft disks against exact results (physics.md §4-5).

- Equilibrium (v0 = 0, ε > 0): the exact score is s_x = k ΣF / ε, s_g = −g.
- Active (v0 > 0, ε > 0): the EPR of the learned score, E[|v_x|²/ε + |v_g|²/γ] with v = b − D s, must agree with
  the learning-free identity EPR = E[b·D⁻¹b] + E[∇·b].

Both use denoising at σ = 0.02, far below the typical overlap √(ε/k) ≈ 0.3, so the smoothing bias is well
under the tolerances; the network has a cutoff (2.5 = contact range 2 plus the envelope's width) and k large
enough that fewer than k particles ever sit inside it. Seeds are fixed.
"""

import numpy as np
import pytest

import activescore
from activescore.estimation.statistics import ratio_estimate
from activescore.learning import ScoreNetConfig, TrainConfig, train_score
from score_helpers import relative_fisher_error, score_on_frames, stationary_frames

EPS, GAMMA, N = 0.1, 1.0, 128
NETWORK = dict(predict_x=True, cutoff=2.5, cutoff_width=0.5, readout_skip=True)
TRAINING = TrainConfig(
    loss="dsm", sigmas=(0.02,), n_steps=1500, batch_particles=256, learning_rate=1e-2, seed=0, holdout=0.0
)


def soft_disks(v0, packing_fraction):
    return activescore.AOUP(
        N, packing_fraction=packing_fraction, v0=v0, gamma=GAMMA, eps=EPS, k=1.0, beta=None, radius=1.0
    )


@pytest.mark.slow  # its fast version, through the defaults: test_score_defaults.py, soft disks "_fast"
def test_equilibrium_x_score_is_the_force_over_eps():
    # 1000 training frames of 128 particles. Tolerance 3 % (the bar); this run reaches ≈ 2 %, and the
    # estimate over 40 × 128 fresh particles has a Monte-Carlo error of a few per cent of its value.
    system = soft_disks(v0=0.0, packing_fraction=0.4)
    train = stationary_frames(system, dt=0.01, duration=500, every=0.5, seed=1)
    test = stationary_frames(system, dt=0.01, duration=200, every=5, seed=2)
    score = train_score(system, train, ScoreNetConfig.small(k=8, **NETWORK), TRAINING, progress=False)
    s_x, s_g = score_on_frames(score, test.x, test.g)
    exact_x = np.stack([activescore.forces(system, x) for x in test.x]) / EPS
    errors = []
    for learned, truth in ((s_x, exact_x), (s_g, -test.g)):
        # Over the 40 fresh frames (5 time units apart: independent), the ratio's delta-method standard error.
        per_frame = np.sum((learned - truth) ** 2, axis=(1, 2)), np.sum(truth**2, axis=(1, 2))
        errors.append(ratio_estimate(*per_frame, len(truth), "relative Fisher error", None))
        assert errors[-1].value == pytest.approx(relative_fisher_error(learned, truth), rel=1e-12)
    # Measured: s_x 2.32 % ± 0.08 %, s_g 0.59 % ± 0.02 % (DSM at σ = 0.02 and 1500 steps: systematic). s_x keeps the
    # issue's 3 % on its value (its upper limit at 5 standard errors, 2.73 %, would leave another training run
    # 0.3 %: one seed measured, so no tighter bar); s_g's upper limit at 5 standard errors must stay below 1 %
    # (formerly 3 % on the value).
    error_x, error_g = errors
    assert error_x.value <= 0.03 and error_g.value + 5 * error_g.stderr <= 0.01, errors


def epr_estimates(system, score, frames):
    """Per-frame totals: (learned EPR, learning-free identity, the naive s = (0, −g) estimate)."""
    learned, identity, naive = [], [], []
    for x, g in zip(frames.x, frames.g, strict=False):
        b_x, b_g = activescore.drift(system, x, g)
        s_x, s_g = score(x, g)
        learned.append(np.sum((b_x - EPS * s_x) ** 2) / EPS + np.sum((b_g - GAMMA * s_g) ** 2) / GAMMA)
        divergence = np.sum(activescore.drift_divergence(system, x)) - 2 * N * GAMMA
        identity.append(np.sum(b_x**2) / EPS + np.sum(b_g**2) / GAMMA + divergence)
        naive.append(np.sum(b_x**2) / EPS)
    return np.array(learned), np.array(identity), np.array(naive)


@pytest.fixture(scope="module")
def active_run():
    # v0 = 0.5 at φ = 0.5: interactions lower the EPR by ≈ 15 % from the free value 2 v0²/ε = 5 per particle,
    # so a score that ignores them fails the test. dt = 0.005: the identity drifts by O(dt) with the Euler-
    # Maruyama chain (4.29 → 4.25 → 4.22 per particle at dt = 0.01, 0.005, 0.0025), ≈ 1.5 % here.
    system = soft_disks(v0=0.5, packing_fraction=0.5)
    train = stationary_frames(system, dt=0.005, duration=500, every=0.5, seed=1)
    test = stationary_frames(system, dt=0.005, duration=200, every=1, seed=2)
    return system, train, test


def test_active_epr_from_the_learned_score_matches_the_identity(active_run):
    # learned/identity on the same 200 frames, with the paired delta-method standard error over 10 batches of 20
    # frames: measured 0.976 ± 0.0044 (of it ≈ −1.5 % the identity's own dt drift at dt = 0.005, see active_run, the
    # rest the learning error of 1000 steps). Bar: that 2.5 % systematic plus 5 standard errors, ≈ 4.7 % in all
    # (formerly a fixed 5 %). The naive s = (0, −g) estimate measured 1.26 ± 0.009.
    system, train, test = active_run
    score = train_score(
        system, train, ScoreNetConfig.small(k=12, **NETWORK), TRAINING.replace(n_steps=1000), progress=False
    )
    learned, identity, naive = epr_estimates(system, score, test)
    ratio = ratio_estimate(learned, identity, 10, "learned/identity", 0.02)
    assert abs(ratio.value - 1) <= 0.025 + 5 * ratio.stderr, ratio
    naive_ratio = ratio_estimate(naive, identity, 10, "naive/identity", None)
    assert abs(naive_ratio.value - 1) > 0.15 + 5 * naive_ratio.stderr  # it can tell a score that ignores interactions


@pytest.mark.slow
def test_active_epr_with_the_implicit_loss(active_run):
    # No smoothing at all; about 3× slower per step than DSM (four forward-mode passes through the network).
    system, train, test = active_run
    score = train_score(
        system, train, ScoreNetConfig.small(k=12, **NETWORK), TRAINING.replace(loss="implicit"), progress=False
    )
    learned, identity, _ = epr_estimates(system, score, test)
    # Measured 0.986 ± 0.004 (paired, 10 batches), of it ≈ −1.5 % the identity's dt drift (active_run): a systematic
    # 1.5 % plus 5 standard errors would be 3.5 %, looser than the 3 % kept here on the value.
    ratio = ratio_estimate(learned, identity, 10, "learned/identity", 0.0)
    assert abs(ratio.value - 1) <= 0.03, ratio
