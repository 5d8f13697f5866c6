"""Token tiers (learning/tiers.py): a minibatch computed in tiers of fewer tokens has the plain step's loss.

- The tokens each particle needs, against a brute-force float64 count under the minimum image.
- The plan: sizes sum to the batch (multiples of the devices), tokens within [1, k], a population that needs few
  tokens gets few, one that needs all gets the plain step.
- The tiered step against the plain one in float64, both losses, including a plan too small for the batch (the
  step falls back to the whole computation): the same losses and weights after a few steps (dsm with a plan that
  fits in the default run, the rest slow).
- Inference: a Score evaluated in token tiers gives the plain evaluation's score and divergences, and with nothing
  chosen switches to tiers once it has evaluated enough particles.
"""

import jax
import numpy as np
import pytest

import activescore as a
from activescore.learning import ScoreNetConfig, TrainConfig
from activescore.learning.data import make_snapshots, neighbour_lists, neighbours_and_needed
from activescore.learning.step import device_mesh, init_state, make_train_step, replicated
from activescore.learning.tiers import COMPILE_COST_STEPS, check_tiers, is_plain, plan_token_tiers

N, PACKING = 96, 0.5


def frames(n_frames=3, seed=0):
    """Random positions at φ = 0.5 (clusters and gaps alike: the tokens needed vary from 1 to ~15)."""
    system = a.AOUP(N, packing_fraction=PACKING, v0=0.025, gamma=1e-2, eps=0.0)
    rng = np.random.default_rng(seed)
    box = float(system.box_length)
    x = rng.uniform(-box / 2, box / 2, (n_frames, N, 2))
    return system, x, rng.normal(size=x.shape)


def tiny_network(**overrides) -> ScoreNetConfig:
    """A float64 network with a cutoff, small enough to compile quickly."""
    fields = dict(
        k=24,
        width=16,
        depth=1,
        ff_width=16,
        embed_hidden=16,
        embed_layers=1,
        readout_hidden=16,
        readout_layers=1,
        cutoff=3.0,
        cutoff_width=0.5,
        readout_skip=True,
        dtype="float64",
    )
    return ScoreNetConfig.small(**{**fields, **overrides})


def test_tokens_needed_against_brute_force():
    system, x, _ = frames()
    box, reach, k = float(system.box_length), 3.3, 24
    index, needed = neighbours_and_needed(x, box, k, reach)
    np.testing.assert_array_equal(index, neighbour_lists(x, box, k))
    difference = x[:, :, None, :] - x[:, None, :, :]
    difference -= box * np.round(difference / box)
    within = np.sum(np.sum(difference**2, axis=-1) <= reach**2, axis=-1)  # self included
    assert needed.shape == (len(x), N) and needed.dtype == np.int32
    np.testing.assert_array_equal(needed, np.minimum(within, k))
    assert needed.min() < needed.max() < k  # the test covers a spread of counts


def test_plan_covers_the_batch():
    rng = np.random.default_rng(1)
    needed = rng.integers(1, 9, 5000)  # at most 8 tokens needed, of k = 32
    tiers = plan_token_tiers(needed, 256, 32, n_devices=4)
    check_tiers(tiers, 256, 32)
    assert not is_plain(tiers, 256, 32)
    assert all(size % 4 == 0 for size, _ in tiers)
    assert max(tokens for _, tokens in tiers) <= 8
    assert [tokens for _, tokens in tiers] == sorted(tokens for _, tokens in tiers)
    assert plan_token_tiers(np.full(100, 5), 64, 32) == ((64, 5),)  # all alike: one tier of what they need
    assert is_plain(plan_token_tiers(np.full(100, 40), 64, 32), 64, 32)  # all need every token: plain
    # A run too short to pay back the tiers' compilation stays plain; a long one gets them.
    assert is_plain(plan_token_tiers(needed, 256, 32, steps=COMPILE_COST_STEPS), 256, 32)
    assert plan_token_tiers(needed, 256, 32, steps=10 * COMPILE_COST_STEPS) == plan_token_tiers(needed, 256, 32)
    with pytest.raises(ValueError, match="sum to the batch"):
        check_tiers(((100, 3),), 256, 32)
    with pytest.raises(ValueError, match="tokens in"):
        check_tiers(((128, 3), (128, 33)), 256, 32)


@pytest.mark.parametrize(
    "loss, plan",
    [
        ("dsm", "fitting"),
        pytest.param("dsm", "too small", marks=pytest.mark.slow),
        pytest.param("implicit", "fitting", marks=pytest.mark.slow),
        pytest.param("implicit", "too small", marks=pytest.mark.slow),
    ],
)
def test_tiered_step_is_the_plain_step(loss, plan):
    with jax.enable_x64(True):
        system, x, g = frames()
        box = float(system.box_length)
        config = tiny_network()  # three compilations of the step per loss
        snapshots = jax.device_put(make_snapshots(x, g, box, config.k, np.float64, reach=config.cutoff))
        train = TrainConfig(loss=loss, sigmas=(0.05,), n_steps=100, batch_particles=64)
        most = int(np.max(snapshots.needed))
        assert most < config.k
        fitting = ((16, most), (48, most))  # every batch fits: the tiered branch itself
        too_small = ((32, 1), (32, 2))  # every batch falls back to the whole computation
        runs = {}
        plans = {"plain": None, plan: {"fitting": fitting, "too small": too_small}[plan]}
        mesh = device_mesh(None)
        for name, tiers in plans.items():
            step = make_train_step(config, train, box, mesh, tiers)
            state = jax.device_put(init_state(config, train), replicated(mesh))  # as train_score places it
            losses = []
            for _ in range(2):
                state, value = step(state, snapshots)
                losses.append(float(value))
            runs[name] = (np.array(losses), jax.tree_util.tree_leaves(state.params))
        plain_losses, plain_params = runs.pop("plain")
        for name, (losses, params) in runs.items():
            np.testing.assert_allclose(losses, plain_losses, rtol=1e-12, err_msg=name)
            for ours, theirs in zip(params, plain_params, strict=True):
                np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, err_msg=name)


def test_tiered_inference_is_plain_inference():
    """A Score of a network with a cutoff evaluates particles sorted by the tokens they need, in pieces of fewer
    tokens (the last wrapping around): the score and both divergences are those of every particle at k."""
    chunk_size = 40  # pieces of 10 particles: 9 and a last one wrapping around the 96
    from activescore.learning import Score, init_params
    from activescore.learning.score import _token_pieces

    with jax.enable_x64(True):
        system, x, g = frames(1, seed=3)
        system = a.AOUP(N, box_length=system.box_length, v0=0.025, gamma=1e-2, eps=0.1)
        config = tiny_network(predict_x=True)
        params = init_params(config, jax.random.PRNGKey(1))
        needed = neighbours_and_needed(x, float(system.box_length), config.k, config.cutoff)[1][0]
        pieces, order = _token_pieces(needed, config.k, chunk_size // 4)
        assert len(pieces) == 10
        assert np.all(np.diff(needed[order]) >= 0)
        assert len({tokens for *_, tokens in pieces}) > 1  # several token counts: the tiers are exercised
        tiered = Score(system, config, params, chunk_size=chunk_size, token_tiers=True)
        plain = Score(system, config, params, chunk_size=chunk_size, token_tiers=False)
        for ours, theirs in zip(tiered(x[0], g[0]), plain(x[0], g[0]), strict=True):
            assert np.abs(theirs).max() > 1e-3  # a score that is not trivially zero
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
        for ours, theirs in zip(tiered.divergence(x[0], g[0]), plain.divergence(x[0], g[0]), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_score_switches_to_tiers_by_default_after_enough_particles():
    """With nothing chosen, a Score evaluates plainly until it has evaluated TIERS_AFTER_PARTICLES particles (no
    extra compilation for a few snapshots), then in token tiers, with the same numbers."""
    from activescore.learning import Score, init_params
    from activescore.learning.score import TIERS_AFTER_PARTICLES

    with jax.enable_x64(True):
        system, x, g = frames(1, seed=4)
        config = tiny_network()
        score = Score(system, config, init_params(config, jax.random.PRNGKey(2)))
        assert not score._tiered()
        before = score(x[0], g[0])[1]
        n_big = TIERS_AFTER_PARTICLES  # one large snapshot at the same density
        big_box = float(system.box_length) * np.sqrt(n_big / N)
        rng = np.random.default_rng(5)
        score(rng.uniform(-big_box / 2, big_box / 2, (n_big, 2)), rng.normal(size=(n_big, 2)), box_length=big_box)
        assert score._tiered()
        np.testing.assert_allclose(score(x[0], g[0])[1], before, rtol=1e-12, atol=1e-14)
        assert score._last_snapshot._entry[3].needed is not None  # that last evaluation was in tiers
