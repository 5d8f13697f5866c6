"""Scores through the defaults: ``train_score(system, samples)`` with no network, learning rate, k or σ chosen here.

- Non-interacting trapped AOUPs (exact Gaussian samples, physics.md §5): relative Fisher error E|s − s*|²/E|s*|²
  ≤ 2 % against the exact score; the learned EPR's learning bias (paired against the exact score on the same
  frames) ≤ 6 % plus 5 standard errors, and the exact score's EPR on those frames within 5 standard errors.
- The implicit-loss lower bound on the EPR, against the exact Gaussian case.
- The validation block: an undertrained score is flagged, a good one is not; it survives save/load.
- Interacting soft disks: at equilibrium s_x against b_x/ε within 2 % (slow; a fast version on less data with a
  looser bar); active ones with ε > 0, the learned EPR within 5 % of the learning-free identity (slow).
- Refusals: every set-up that cannot learn the requested score is a ValueError saying what to change.
- The network defaults: self-only tokens without interactions, a cutoff and a measured neighbour count with them.
"""

import warnings

import numpy as np
import pytest

import activescore as a
from activescore.estimation.statistics import ratio_estimate
from activescore.exact import GaussianScore, gaussian_epr, gaussian_samples, trapped_aoup_covariance
from activescore.learning import Score, ScoreNetConfig, TrainConfig, train_score
from activescore.learning.defaults import default_network, most_within
from activescore.learning.settings import default_steps
from activescore.learning.stopping import should_stop as _stopped
from activescore.learning.validation import implicit_lower_bound
from score_helpers import relative_fisher_error, score_on_frames, stationary_frames

#: The issue's bars: relative Fisher error and learned EPR against the exact one (both mostly systematic: the
#: learning error of a finite training run). Where a run's error has been measured, a tighter systematic bar is
#: passed and the Fisher error's upper confidence limit (N_SE standard errors over the fresh frames) must be below it.
FISHER_BAR = 0.02
#: The learned EPR's learning bias through the defaults (the worst of three training seeds, 5.2 %, rounded up).
EPR_BIAS_BAR = 0.06
N_SE = 5


def trapped(eps, *, n=64, v0=1.5, gamma=2.0, trap=1.0, box_length=400.0):
    return a.AOUP(n, box_length=box_length, k=0.0, trap=trap, eps=eps, gamma=gamma, v0=v0)


def fisher_error_and_epr(system, score, seed=2, frames=50):
    """(relative Fisher error of (s_x, s_g) or s_g, learned EPR per particle) on fresh exact samples, each an
    Estimate with its standard error over the frames (the Fisher error as a ratio of per-frame sums, delta method)."""
    x, g = gaussian_samples(system, frames, seed=seed)
    s_x, s_g = score_on_frames(score, x, g)
    exact = GaussianScore(system)
    pairs = [exact(xf, gf) for xf, gf in zip(x, g, strict=True)]
    exact_x, exact_g = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    learned, truth = (s_g[None], exact_g[None]) if s_x is None else (np.stack([s_x, s_g]), np.stack([exact_x, exact_g]))
    per_frame = np.sum((learned - truth) ** 2, axis=(0, 2, 3)), np.sum(truth**2, axis=(0, 2, 3))
    error = ratio_estimate(*per_frame, frames, "relative Fisher error", None)  # frames are independent: one each
    assert error.value == pytest.approx(relative_fisher_error(learned, truth), rel=1e-12)
    result = a.estimate(score, (x, g), system=system, progress=False)
    reference = a.estimate(exact, (x, g), system=system, progress=False)
    return error, result, reference


def check_gaussian_through_the_defaults(system, frames=1000, fisher_bar=None):
    x, g = gaussian_samples(system, frames, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = train_score(system, (x, g), progress=False)
    # Nothing to warn about settings nobody chose, and a consistent score (warnings of other libraries aside).
    ours = [w for w in caught if "activescore" in w.filename or w.filename == __file__]
    assert not ours, [str(w.message) for w in ours]
    error, result, reference = fisher_error_and_epr(system, score)
    exact = gaussian_epr(system)
    assert error.value <= FISHER_BAR, (error, score.config)
    if fisher_bar is not None:
        assert error.value + N_SE * error.stderr <= fisher_bar, (error, score.config)
    # The learned EPR in two parts. Its learning bias, paired against the exact score on the same 50 frames (so the
    # frames' draw cancels): measured −3.6 %, −5.2 %, −4.3 % at ε = 0 and +0.5 %, +1.0 %, +0.8 % at ε = 0.5 for
    # training seeds 0, 1, 2, a systematic bar of EPR_BIAS_BAR, plus N_SE standard errors of the paired ratio. The
    # frames' own statistical error: the exact score's EPR on them within N_SE standard errors of the exact value.
    learned, truth = result.totals["quadratic"], reference.totals["quadratic"]
    bias = ratio_estimate(learned, truth, len(learned), "learned/exact on the same frames", None)
    assert abs(bias.value - 1) <= EPR_BIAS_BAR + N_SE * bias.stderr, bias
    sampled = reference.epr_per_particle["quadratic"]
    assert abs(sampled.value - exact) <= N_SE * sampled.stderr, (sampled, exact)
    assert score.validation.consistent
    return score


@pytest.mark.parametrize("eps", [0.5, 0.0])
def test_trapped_gaussian_through_the_defaults(eps):
    # 500 frames (1688 default steps) keep this in the default run; the slow versions below take 1000.
    # Measured relative Fisher error over training seeds 0 (the default), 1, 2: 0.81 %, 1.02 %, 0.76 % (ε = 0.5),
    # 0.69 %, 0.98 %, 0.74 % (ε = 0), each ± 0.02 % over the fresh frames: a systematic bar of 1.5 %.
    check_gaussian_through_the_defaults(trapped(eps), frames=500, fisher_bar=0.015)


@pytest.mark.slow
@pytest.mark.parametrize(
    "eps, v0, gamma, trap, n, box_length",
    [
        (0.2, 0.5, 1.0, 0.5, 64, 400.0),  # weakly active
        (1.0, 3.0, 0.5, 2.0, 64, 400.0),  # strongly active, stiff trap
        (0.0, 1.0, 0.5, 0.5, 64, 400.0),  # hypoelliptic, slow propulsion
        (0.1, 1.0, 5.0, 0.2, 256, 200.0),  # overlapping cloud: 256 particles in a few units
        (0.0, 2.0, 1.0, 3.0, 256, 100.0),  # hypoelliptic, dense overlapping cloud
    ],
)
def test_trapped_gaussian_over_a_range_of_parameters(eps, v0, gamma, trap, n, box_length):
    # 64 000 (frame, particle) samples whatever n (3375 default steps): 1000 frames of 64, 250 of 256.
    system = trapped(eps, n=n, v0=v0, gamma=gamma, trap=trap, box_length=box_length)
    check_gaussian_through_the_defaults(system, frames=64_000 // n)


# ------------------------------------------------------------------------------------------- network defaults
def test_without_interactions_the_tokens_are_the_particle_alone():
    system = trapped(0.5)
    x, _ = gaussian_samples(system, 4, seed=0)
    config = default_network(system, x)
    assert config.k == 1 and config.cutoff is None and config.predict_x and config.absolute_position
    # The cloud's width sets the input scale: positions of order one.
    assert config.length_scale == pytest.approx(np.sqrt(np.mean(x**2)))
    assert not default_network(trapped(0.0), x).predict_x


def test_with_interactions_the_neighbour_count_is_measured_on_the_data():
    system = a.AOUP(200, packing_fraction=0.5, eps=0.1, v0=0.5, gamma=1.0, beta=None)
    x = a.simulate(system, 400, 0.01, seed=3, save_every=100, progress=False).x
    config = default_network(system, x, sigmas=(0.01,))
    reach = config.cutoff + 4 * 0.01
    most = most_within(x, system.box_length, reach)
    assert config.cutoff == pytest.approx(system.interaction_range + 0.5)
    assert most + 1 < config.k <= most + 1 + max(2, int(np.ceil(0.25 * most)))  # headroom over the sample
    # A denser system needs more tokens; none is ever a fixed 8.
    dense = a.AOUP(200, packing_fraction=0.8, eps=0.1, v0=0.5, gamma=1.0, beta=None)
    x_dense = a.simulate(dense, 400, 0.002, seed=3, save_every=100, progress=False).x
    assert default_network(dense, x_dense).k > config.k


def test_default_steps_grow_with_the_data():
    assert default_steps(1_000, 256) == 1_000
    assert default_steps(256_000, 256) == 15_000 > default_steps(128_000, 256) == 7_500  # 15 draws of each sample
    assert default_steps(10**9, 256) == 50_000


# -------------------------------------------------------------------------------------------------- refusals
def frames_of(system, n_frames=4, seed=0):
    rng = np.random.default_rng(seed)
    half = system.box_length / 2
    return rng.uniform(-half, half, (n_frames, system.n_particles, 2)), rng.normal(
        size=(n_frames, system.n_particles, 2)
    )


REFUSED = [
    # (system, network, training, what the message must name)
    (trapped(0.5), ScoreNetConfig.small(k=8, predict_x=True, absolute_position=True), None, "k=1"),
    (trapped(0.5), ScoreNetConfig.small(k=1, predict_x=True), None, "absolute_position=True"),
    (trapped(0.5), ScoreNetConfig.small(k=1, absolute_position=True), None, "predict_x=True"),
    (trapped(0.0), ScoreNetConfig.small(k=1, predict_x=True, absolute_position=True), None, "predict_x=False"),
    (
        a.AOUP(64, packing_fraction=0.6, eps=0.1, beta=None),
        ScoreNetConfig.small(k=2, predict_x=True, cutoff=2.5, cutoff_width=0.5),
        None,
        "use k >= ",
    ),
    (
        a.AOUP(64, packing_fraction=0.6, eps=0.1, beta=None),
        ScoreNetConfig.small(k=8, predict_x=True),
        None,
        "needs a cutoff",
    ),
    (a.AOUP(300, packing_fraction=0.6, eps=0.1, beta=None), None, TrainConfig(sigmas=(30.0,)), "lower sigma"),
    (a.AOUP(64, packing_fraction=0.3, eps=0.1, beta=None), None, TrainConfig(sigmas=(0.05, 0.1)), None),
    (
        a.AOUP(64, packing_fraction=0.3, eps=0.1, beta=None),
        ScoreNetConfig.small(k=64, predict_x=True),
        TrainConfig(sigmas=(0.05, 0.1)),
        "sigma_conditioning=True",
    ),
]


@pytest.mark.parametrize("system, network, training, names", REFUSED)
def test_set_ups_that_cannot_learn_the_score_are_refused_saying_what_to_change(system, network, training, names):
    samples = gaussian_samples(system, 4, seed=0) if system.k == 0 else frames_of(system)
    if names is None:  # the defaults themselves are fine here (several σ: a conditioned network)
        assert default_network(system, samples[0], sigmas=training.sigmas).sigma_conditioning
        return
    with pytest.raises(ValueError, match=names.replace("(", r"\(")):
        train_score(system, samples, network, training, progress=False)


def test_samples_of_another_system_are_an_error():
    system = a.mips(64, 0.5)
    x, g = frames_of(a.mips(128, 0.5))
    with pytest.raises(ValueError, match="samples: frames of 128 particles"):
        train_score(system, (x, g), progress=False)
    traj = a.simulate(a.AOUP(16, packing_fraction=0.3, eps=0.1), 4, 0.01, seed=1, save_every=1, progress=False)
    with pytest.raises(ValueError, match="samples: they belong to"):
        train_score(a.AOUP(16, packing_fraction=0.3, eps=0.2), traj, progress=False)


# -------------------------------------------------------------------------------------- the lower bound
class Scaled:
    """The score c·s* of another score (its divergences scaled alike)."""

    def __init__(self, score, c):
        self.score, self.c = score, c

    def __call__(self, x, g):
        s_x, s_g = self.score(x, g)
        return (None if s_x is None else self.c * s_x), self.c * s_g

    def divergence_x(self, x, g):
        return self.c * self.score.divergence_x(x, g)

    def divergence_g(self, x, g):
        return self.c * self.score.divergence_g(x, g)


@pytest.mark.parametrize("eps", [0.5, 0.0])
def test_the_implicit_loss_bound_is_tight_for_the_exact_score_and_below_it_otherwise(eps):
    # −J_b(c s*) = (2c − c²) E|s*_b|², so the bound of c s* falls short of the EPR by (1 − c)² (ε F_x + γ F_g)
    # per particle, F_b = d P_bb (P the per-dimension precision of (x, g)).
    system = trapped(eps)
    x, g = gaussian_samples(system, 400, seed=5)
    exact = GaussianScore(system)
    value, stderr = implicit_lower_bound(system, exact, x, g)
    assert abs(value - gaussian_epr(system)) <= 4 * stderr
    precision = np.linalg.inv(trapped_aoup_covariance(system))
    fisher_x, fisher_g = 2 * precision[0, 0], 2 * precision[1, 1]
    c = 0.7
    shortfall = (1 - c) ** 2 * ((system.eps * fisher_x if eps > 0 else 0.0) + system.gamma * fisher_g)
    scaled, scaled_stderr = implicit_lower_bound(system, Scaled(exact, c), x, g)
    assert abs((value - scaled) - shortfall) <= 4 * (stderr + scaled_stderr) + 1e-9
    assert scaled < value


# -------------------------------------------------------------------------------------- the validation block
def test_the_validation_flags_an_undertrained_score_and_survives_save_and_load(tmp_path):
    system = trapped(0.5, n=32)
    x, g = gaussian_samples(system, 100, seed=1)
    with pytest.warns(UserWarning, match=r"inconsistent with the learning-free identity: learned/identity = "):
        bad = train_score(
            system,
            (x, g),
            train=TrainConfig(n_steps=3),
            progress=False,
            checkpoint=tmp_path / "run.ckpt",
            checkpoint_every=2,
        )
    (report,) = bad.info["checkpoint_validations"]  # every checkpoint before the end is validated too
    assert report["step"] == 2 and report["consistent"] is False and np.isfinite(report["ratio"])
    assert bad.validation.consistent is False and bad.validation["frames"] == 10
    assert bad.validation["loss_name"] == "implicit"  # the default held-out loss draws no noise
    assert abs(bad.validation.ratio()[0] - 1) > 0.05
    bad.save(tmp_path / "bad.msgpack")
    loaded = Score.load(tmp_path / "bad.msgpack")
    assert loaded.validation.to_dict() == bad.validation.to_dict()
    text = str(loaded.validation)
    assert "held-out frames" in text and "INCONSISTENT" in text and "lower bound" in text


def test_a_good_score_is_judged_consistent():
    # The exact score on the held-out frames of exact samples passes the same test the validation block applies.
    from activescore.learning.validation import epr_check

    system = trapped(0.5, n=32)
    x, g = gaussian_samples(system, 250, seed=4)  # 250 frames: 5 s.e. is ≈ 7 %, under the former fixed 10 %
    check = epr_check(system, GaussianScore(system), x, g)
    ratio, ratio_stderr = check["ratio"]["quadratic"]
    assert check["consistent"] and abs(ratio - 1) <= 5 * ratio_stderr
    # For the exact score the bound is the EPR (within both estimates' standard errors, combined as independent).
    (bound, bound_stderr), (epr, epr_stderr) = check["lower_bound"], check["epr"]["quadratic"]
    assert abs(bound - epr) <= 5 * np.hypot(bound_stderr, epr_stderr)


def test_holdout_zero_turns_the_validation_off_and_early_stopping_rule():
    system = trapped(0.5, n=8)
    x, g = gaussian_samples(system, 6, seed=1)
    score = train_score(system, (x, g), train=TrainConfig(n_steps=2, holdout=0.0), progress=False)
    assert score.validation is None and score.info["heldout_frames"] == 0
    assert not _stopped([(1, 3.0), (2, 2.0), (3, 2.5)], patience=2)  # the best came within the last two
    with pytest.raises(ValueError, match="heldout_loss='dsm' needs loss='dsm'"):
        TrainConfig(loss="implicit", heldout_loss="dsm")
    with pytest.raises(ValueError, match="heldout_loss must be one of"):
        TrainConfig(heldout_loss="mse")
    # A noisy plateau does not stop a run (the learning rate still decays there); a loss that clearly rose does.
    plateau = [5.0, 3.0, 2.0, 1.0, 1.02, 0.99, 1.01, 1.0, 1.03, 0.98, 1.02, 1.01, 1.0]
    assert not _stopped(list(enumerate(plateau)), patience=3)
    rise = [5.0, 3.0, 2.0, 1.0, 1.01, 0.99, 1.0, 1.2, 1.3, 1.4]
    assert _stopped(list(enumerate(rise)), patience=3) and not _stopped(list(enumerate(rise[:-1])), patience=3)


def test_the_keywords_of_earlier_versions_warn_and_forward():
    system = trapped(0.5, n=8)
    x, g = gaussian_samples(system, 6, seed=1)
    with pytest.warns(DeprecationWarning, match="train=TrainConfig"):
        old = train_score(system, (x, g), loss="dsm", sigma=0.05, n_steps=2, seed=4, progress=False)
    assert old.info["training"]["sigmas"] == [0.05] and old.info["n_steps"] == 2 and old.info["seed"] == 4
    with pytest.raises(TypeError, match="unexpected keyword"):
        train_score(system, (x, g), n_step=2, progress=False)


# ------------------------------------------------------------------------------------- interacting soft disks
def soft_disk_frames(v0, packing_fraction, dt, seed, duration, every, n=128):
    """Stationary frames of ``n`` harmonic soft disks (ε = 0.1, γ = 1) every ``every`` time units after a burn-in
    of 50 (≫ the overlap relaxation time 1/k and the persistence time 1/γ)."""
    system = a.AOUP(n, packing_fraction=packing_fraction, v0=v0, gamma=1.0, eps=0.1, k=1.0, beta=None)
    return system, stationary_frames(system, dt, duration, every, seed)


def equilibrium_fisher_errors(n, duration, train=None):
    """Relative Fisher errors of (s_x, s_g) learned through the defaults from ``duration / 0.5`` frames of ``n``
    equilibrium soft disks at φ = 0.4, on fresh frames, as Estimates with their standard errors over those frames
    (spaced 5 time units, ≫ the relaxation times 1/k = 1/γ = 1: independent). v0 = 0: the exact score is
    s_x = k ΣF/ε, s_g = −g (physics.md §5)."""
    system, frames = soft_disk_frames(0.0, 0.4, 0.01, seed=1, duration=duration, every=0.5, n=n)
    _, test = soft_disk_frames(0.0, 0.4, 0.01, seed=2, duration=200, every=5, n=n)
    score = train_score(system, frames, progress=False, **({} if train is None else dict(train=train)))
    s_x, s_g = score_on_frames(score, test.x, test.g)
    exact_x = np.stack([a.forces(system, x) for x in test.x]) / system.eps
    errors = []
    for learned, truth in ((s_x, exact_x), (s_g, -test.g)):
        per_frame = np.sum((learned - truth) ** 2, axis=(1, 2)), np.sum(truth**2, axis=(1, 2))
        errors.append(ratio_estimate(*per_frame, len(test.x), "relative Fisher error", None))
        assert errors[-1].value == pytest.approx(relative_fisher_error(learned, truth), rel=1e-12)
    return errors


@pytest.mark.slow
def test_equilibrium_soft_disks_through_the_defaults():
    # 128 disks, 900 training frames, 6750 default steps: s_x ≈ 1.7 %, s_g ≈ 0.3 % (seed 1 of the training:
    # 1.8 %, 0.4 %).
    error_x, error_g = equilibrium_fisher_errors(128, 500)
    assert error_x.value <= FISHER_BAR and error_g.value <= FISHER_BAR, (error_x, error_g)


def test_equilibrium_soft_disks_through_the_defaults_fast():
    # The same on 180 training frames of 64 disks (1000 default steps, the minimum): 14 times fewer samples.
    # Measured (training seed 0, the default; seed 1): s_x 17.8 % ± 0.6 %, 22.4 % ± 0.8 %; s_g 3.74 % ± 0.09 %,
    # 3.52 % ± 0.07 %. s_x's error moves by more than its standard error from seed to seed (a training error, not
    # noise), so its systematic bar stays 25 % (s_x = 0 is 100 %); s_g's upper limit at 5 standard errors must stay
    # below 5 % (formerly 6 % on the value).
    error_x, error_g = equilibrium_fisher_errors(64, 100)
    assert error_x.value <= 0.25 and error_g.value + N_SE * error_g.stderr <= 0.05, (error_x, error_g)


@pytest.mark.slow
def test_active_soft_disks_through_the_defaults_match_the_identity():
    # v0 = 0.5 at φ = 0.5: interactions lower the EPR ≈ 15 % below the free 2 v0²/ε; dt = 0.005 keeps the
    # identity's own time-step drift near 1.5 %. Bar 5 %; at the former 1800 default steps this run was ≈ −1.7 % on
    # fresh frames (≈ +0.7 % on the held-out ones of its validation); it passes at today's 6750.
    system, train = soft_disk_frames(0.5, 0.5, 0.005, seed=1, duration=500, every=0.5)
    _, test = soft_disk_frames(0.5, 0.5, 0.005, seed=2, duration=200, every=1)
    score = train_score(system, train, progress=False)
    result = a.estimate(score, test, progress=False)
    # Measured learned/identity 0.981 ± 0.004 on the fresh frames (paired, batch means), 0.999 ± 0.005 on the
    # validation's held-out ones. Bars (formerly a fixed 5 % each): systematic 2.5 % (the identity's dt drift
    # ≈ 1.5 % and the learning error) and 2 % plus 5 standard errors, ≈ 4.3 % and 4.7 % in all.
    ratio = result.ratio["quadratic"]
    assert abs(ratio.value - 1) <= 0.025 + 5 * ratio.stderr, ratio
    held_out, held_out_stderr = score.validation.ratio()
    assert score.validation.consistent and abs(held_out - 1) <= 0.02 + 5 * held_out_stderr
    bound, stderr = score.validation["lower_bound"]
    assert bound <= result.identity.per_particle.value + 3 * stderr
