"""Training mechanics: reproducibility, exact resume from a checkpoint, data parallelism, persistence."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import activescore
from activescore.learning import Score, ScoreNetConfig, TrainConfig, train_score

N, FRAMES, BOX = 24, 6, 10.0
TINY = ScoreNetConfig.small(
    k=8,
    width=16,
    depth=1,
    heads=2,
    ff_width=16,
    embed_hidden=16,
    readout_hidden=16,
    predict_x=True,
    cutoff=1.0,
    cutoff_width=0.3,
    readout_skip=True,
)
TRAIN = TrainConfig(loss="dsm", sigmas=(0.05,), n_steps=6, batch_particles=32, learning_rate=3e-3)
RUN = dict(progress=False, log_every=3, checkpoint_every=3)


def fit(samples, network=None, *, seed=3, checkpoint=None, callback=None, **training):
    """``train_score`` on this module's system with TRAIN changed by ``training``."""
    return train_score(
        system(),
        samples,
        TINY if network is None else network,
        TRAIN.replace(seed=seed, **training),
        checkpoint=checkpoint,
        callback=callback,
        **RUN,
    )


def system():
    return activescore.AOUP(N, box_length=BOX, v0=0.5, gamma=1.0, eps=0.2, k=1.0, beta=None)


def samples(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-BOX / 2, BOX / 2, (FRAMES, N, 2)), rng.normal(size=(FRAMES, N, 2))


def leaves(score):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(score.params)]


def assert_same_params(a, b, **tolerance):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        if tolerance:
            np.testing.assert_allclose(x, y, **tolerance)
        else:
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def unbroken():
    return fit(samples())


def test_same_seed_same_run_and_another_seed_another(unbroken):
    assert_same_params(fit(samples()), unbroken)
    other = fit(samples(), seed=4)
    assert not np.array_equal(leaves(other)[0], leaves(unbroken)[0])


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_the_same_result(unbroken, tmp_path):
    checkpoint = tmp_path / "run.ckpt"

    def kill_at_half(step, loss):
        if step == TRAIN.n_steps // 2:
            raise Killed

    with pytest.raises(Killed):
        fit(samples(), checkpoint=checkpoint, callback=kill_at_half)
    assert checkpoint.exists() and not list(tmp_path.glob("*.tmp"))  # written atomically, no leftovers
    resumed = fit(samples(), checkpoint=checkpoint)
    # Step t's randomness is a function of (seed, t) and the state is restored bit for bit: identical weights.
    assert_same_params(resumed, unbroken)
    assert resumed.info["history"] == unbroken.info["history"]


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    fit(samples(), checkpoint=checkpoint, n_steps=3)
    with pytest.raises(ValueError, match="another run"):
        fit(samples(), seed=5, checkpoint=checkpoint, n_steps=3)


def test_save_load_round_trip(unbroken, tmp_path):
    path = tmp_path / "score.msgpack"
    unbroken.save(path)
    loaded = Score.load(path)
    assert loaded.system == unbroken.system and loaded.config == unbroken.config
    assert loaded.sigmas == unbroken.sigmas == (0.05,)
    x, g = samples(1)
    for a, b in zip(loaded(x[0], g[0]), unbroken(x[0], g[0]), strict=False):
        np.testing.assert_array_equal(a, b)


def test_evaluation_is_chunked_and_accepts_any_particle_count(unbroken):
    x, g = samples(2)
    full = unbroken(x[0], g[0])
    chunked = Score(unbroken.system, unbroken.config, unbroken.params, chunk_size=5)(x[0], g[0])
    for a, b in zip(full, chunked, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    s_x, s_g = unbroken(x[0, :3], g[0, :3])  # fewer particles than k: all of them are tokens
    assert s_x.shape == s_g.shape == (3, 2)
    div_x, div_g = unbroken.divergence(x[0], g[0])
    assert div_x.shape == div_g.shape == (N,) and np.all(np.isfinite(div_x))
    np.testing.assert_array_equal(unbroken.divergence_g(x[0], g[0]), div_g)


def test_one_snapshot_is_prepared_once_and_a_changed_one_again(unbroken, monkeypatch):
    """estimate asks for the score and both divergences of a snapshot in turn: its kNN lists are built once, the
    divergence pass runs once, and any change to the snapshot (even in place) is seen."""
    from activescore.learning import score as score_module

    built = []
    make = score_module.make_snapshots
    monkeypatch.setattr(score_module, "make_snapshots", lambda *a, **k: built.append(1) or make(*a, **k))
    score = Score(unbroken.system, unbroken.config, unbroken.params)
    x, g = samples(4)
    x, g = x[0].copy(), g[0].copy()
    s_x, s_g = score(x, g)
    div_x = score.divergence_x(x, g)
    div_g = score.divergence_g(x, g)
    assert len(built) == 1
    div_g[:] = 0.0  # the caller's copy: the cached one is untouched
    np.testing.assert_array_equal(score.divergence_g(x, g), score.divergence(x, g)[1])
    assert np.all(score.divergence_g(x, g) != 0.0) and len(built) == 1
    g[0, 0] += 0.5  # in place: still a new snapshot
    moved = score.divergence_x(x, g)
    assert len(built) == 2 and not np.array_equal(moved, div_x)
    fresh = Score(unbroken.system, unbroken.config, unbroken.params)
    np.testing.assert_array_equal(score(x, g)[1], fresh(x, g)[1])
    assert not np.array_equal(score(x, g)[1], s_g) and s_x.shape == (N, 2)


def test_several_noise_levels_train_one_conditioned_network():
    config = TINY.replace(sigma_conditioning=True)
    score = fit(samples(), config, seed=0, sigmas=(0.05, 0.2))
    x, g = samples(3)
    assert score.sigmas == (0.05, 0.2)
    low, high = score(x[0], g[0], sigma=0.05)[1], score(x[0], g[0], sigma=0.2)[1]
    np.testing.assert_array_equal(score(x[0], g[0])[1], low)  # default: the smallest σ
    assert not np.allclose(low, high)
    with pytest.raises(ValueError, match="sigma-conditioned"):
        fit(samples(), sigmas=(0.05, 0.2))


def test_x_head_with_truncated_neighbours_needs_a_cutoff():
    with pytest.raises(ValueError, match="cutoff"):
        fit(samples(), TINY.replace(cutoff=None))


def test_data_parallel_training_matches_one_device(unbroken, tmp_path):
    # Two virtual CPU devices in a fresh process: the minibatch is split between them and the gradients are
    # averaged by the compiler. Only the summation order differs from one device; after 6 Adam-type steps
    # float32 rounding differences stay below 1e-4 relative.
    script = textwrap.dedent(f"""
        import sys, jax
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_score_training as t
        assert len(jax.devices()) == 2, jax.devices()
        score = t.fit(t.samples())
        score.save({str(tmp_path / "parallel.msgpack")!r})
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    parallel = Score.load(tmp_path / "parallel.msgpack")
    assert_same_params(parallel, unbroken, rtol=1e-4, atol=1e-6)
