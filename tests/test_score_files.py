"""Score files and training checkpoints are checked on opening; training reads samples from a GSD trajectory."""

import jax
import numpy as np
import pytest

import activescore as a
from activescore.learning import Score, ScoreNetConfig, TrainConfig, train_score
from activescore.learning.network import init_params

TINY = ScoreNetConfig.small(k=4, width=8, depth=1, heads=2, ff_width=8, embed_hidden=8, readout_hidden=8)
SETTINGS = dict(
    train=TrainConfig(loss="dsm", sigmas=(0.05,), n_steps=2, batch_particles=8),
    progress=False,
    log_every=1,
    checkpoint_every=1,
)


def system():
    return a.AOUP(12, packing_fraction=0.3, v0=0.5, gamma=1.0, k=1.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("score_files")
    score = Score(system(), TINY, init_params(TINY, jax.random.PRNGKey(0)), sigmas=(0.05,))
    score.save(root / "score.msgpack")
    data = (root / "score.msgpack").read_bytes()
    (root / "truncated.msgpack").write_bytes(data[: len(data) // 2])
    (root / "garbage.msgpack").write_bytes(b"\x01\x02 not msgpack at all")
    (root / "empty.msgpack").write_bytes(b"")
    a.simulate(system(), 20, 0.05, seed=1, save_every=5, out=root / "run.gsd", progress=False)
    train_score(system(), root / "run.gsd", TINY, checkpoint=root / "checkpoint.msgpack", **SETTINGS)
    return root


def test_a_saved_score_loads(files):
    score = Score.load(files / "score.msgpack")
    assert score.system == system() and score.sigmas == (0.05,)


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.msgpack", "missing.msgpack: no such saved Score"),
        ("truncated.msgpack", "truncated.msgpack is not a saved Score: it ends early .truncated"),
        ("garbage.msgpack", "garbage.msgpack is not a saved Score: unreadable msgpack"),
        ("empty.msgpack", r"empty.msgpack is not a saved Score \(it is empty\)"),
        ("run.gsd", r"run.gsd is not a saved Score \(it is a GSD trajectory\)"),
        ("checkpoint.msgpack", r"checkpoint.msgpack is not a saved Score \(it is a training checkpoint\)"),
        (".", "is a folder, not a saved Score"),
    ],
)
def test_score_files_are_checked_on_opening(files, name, message):
    with pytest.raises(ValueError, match=message):
        Score.load(files / name)


@pytest.mark.parametrize(
    "name, message",
    [
        ("garbage.msgpack", "garbage.msgpack is not a training checkpoint: unreadable msgpack"),
        ("truncated.msgpack", "truncated.msgpack is not a training checkpoint: it ends early"),
        ("score.msgpack", "score.msgpack belongs to another run"),
    ],
)
def test_checkpoints_are_checked_on_opening(files, name, message):
    with pytest.raises(ValueError, match=message):
        train_score(system(), files / "run.gsd", TINY, checkpoint=files / name, **SETTINGS)


def test_training_reads_a_gsd_trajectory_like_its_frames(files):
    """A GSD file is read whole: the same run as on its frames in memory, resumed from its checkpoint."""
    traj = a.load_trajectory(files / "run.gsd")
    from_frames = train_score(system(), traj, TINY, **SETTINGS)
    from_file = train_score(system(), files / "run.gsd", TINY, checkpoint=files / "checkpoint.msgpack", **SETTINGS)
    for p, q in zip(
        jax.tree_util.tree_leaves(from_frames.params), jax.tree_util.tree_leaves(from_file.params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    assert from_file.info["n_frames"] + from_file.info["heldout_frames"] == len(traj) == 5
