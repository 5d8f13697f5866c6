"""Training from data sets larger than memory: windows of frames streamed from the shards, bounded memory,
a schedule fixed by (seed, step), exact resume from a checkpoint."""

import jax
import numpy as np
import pytest

from activescore.io.dataset import SnapshotDataset
from activescore.learning import TrainConfig, stream, train_score
from activescore.learning import loop as train_module
from activescore.learning.defaults import NEIGHBOUR_SAMPLE_FRAMES
from activescore.simulation.dataset import DatasetPlan, build_dataset
from test_score_training import TINY, assert_same_params, system

FRAMES, BUDGET = 12, 4  # windows of BUDGET // 2 = 2 frames
TRAINING_FRAMES = 10  # the last 10 % (at least two frames) are held out for the validation
TRAIN = TrainConfig(loss="dsm", sigmas=(0.05,), n_steps=8, batch_particles=32, learning_rate=3e-3)
RUN = dict(progress=False, log_every=2, checkpoint_every=2, frames_in_memory=BUDGET, steps_per_window=3)


def fit(data, *, seed=3, n_steps=8, **run):
    """``train_score`` with TRAIN (its seed and steps changed) and RUN (changed by ``run``)."""
    return train_score(system(), data, TINY, TRAIN.replace(seed=seed, n_steps=n_steps), **{**RUN, **run})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    plan = DatasetPlan(n_frames=FRAMES, spacing=2, burn_in=10, dt=0.05, seed=1, shard_frames=5)
    return build_dataset(system(), plan, tmp_path_factory.mktemp("data") / "ds", progress=False, n_threads=1)


@pytest.fixture(scope="module")
def unbroken(dataset):
    return fit(dataset)


def test_schedule_is_a_pure_function_of_seed_and_window():
    plan = stream.WindowPlan(n_frames=10, window_frames=4, steps_per_window=3, seed=7)
    again = stream.WindowPlan(n_frames=10, window_frames=4, steps_per_window=3, seed=7)
    windows = [plan.frames(w) for w in range(5)]  # 20 positions: two epochs of 10 frames
    for w in (3, 0, 4):
        np.testing.assert_array_equal(again.frames(w), windows[w])
    positions = np.concatenate([plan.epoch_order(0), plan.epoch_order(1)])
    assert sorted(positions[:10]) == sorted(positions[10:]) == list(range(10))  # each frame once per epoch
    np.testing.assert_array_equal(windows[2], np.sort(positions[8:12]))  # straddles the two epochs
    assert plan.window_of(5) == 1 and plan.first_step(2) == 6
    other = stream.WindowPlan(n_frames=10, window_frames=4, steps_per_window=3, seed=8)
    assert any(not np.array_equal(other.frames(w), windows[w]) for w in range(5))


def test_window_size_and_default_steps():
    assert stream.plan_windows(12, 24, 12, None, 32, seed=0) is None  # fits: loaded whole
    plan = stream.plan_windows(100, 24, 40, None, 8, seed=0)
    assert plan.window_frames == 20 and plan.steps_per_window == 60  # each particle drawn about once per window


def test_wiring_streamed_training_runs_through_its_windows(dataset):
    # A wiring test: 30 steps of 32 particles cannot show learning (the minibatch losses scatter by ~1 around a
    # drift of ~0.4 over the run, measured), so it checks that the run goes through, logs every 10 steps with
    # finite losses and records its windows; learning itself is checked on in-memory data (test_score_gaussian).
    score = fit(dataset, seed=0, n_steps=30, log_every=10)
    assert [step for step, _ in score.info["history"]] == [10, 20, 30]
    assert np.all(np.isfinite([loss for _, loss in score.info["history"]]))
    assert score.info["windows"] == dict(
        n_frames=TRAINING_FRAMES, window_frames=BUDGET // 2, steps_per_window=3, seed=0
    )
    assert score.info["n_frames"] == TRAINING_FRAMES and score.info["heldout_frames"] == FRAMES - TRAINING_FRAMES


class Killed(Exception):
    pass


def test_a_killed_streamed_run_resumes_to_the_same_result(dataset, unbroken, tmp_path):
    checkpoint = tmp_path / "run.ckpt"

    def kill(step, loss):
        if step == 4:  # inside the second window (steps 3-5): the resume starts mid-window
            raise Killed

    with pytest.raises(Killed):
        fit(dataset, checkpoint=checkpoint, callback=kill)
    resumed = fit(str(dataset.path), checkpoint=checkpoint)
    assert_same_params(resumed, unbroken)
    assert resumed.info["history"] == unbroken.info["history"]


def test_a_checkpoint_of_another_window_plan_is_refused(dataset, tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    fit(dataset, checkpoint=checkpoint, n_steps=2)
    with pytest.raises(ValueError, match="another run"):
        fit(dataset, checkpoint=checkpoint, n_steps=2, steps_per_window=2)


class CountingDataset(SnapshotDataset):
    """Records every read of frames (the only way training gets frames from the shards)."""

    def __init__(self, path):
        super().__init__(path)
        self.reads = []

    def load(self, frames=None):
        assert frames is not None, "the whole data set was loaded"
        self.reads.append(list(frames))
        return super().load(frames)


def test_memory_holds_at_most_frames_in_memory_and_the_step_is_compiled_once(dataset, monkeypatch):
    counting = CountingDataset(dataset.path)
    steps = RUN["steps_per_window"]
    window_frames = BUDGET // 2
    compiled = []
    uncached = train_module.make_train_step.__wrapped__

    def fresh_step(*args):  # a freshly compiled step, whose traces we can count
        compiled.append(uncached(*args))
        return compiled[-1]

    def check(step, loss):  # called after every step
        window_reads = counting.reads[2:]  # first the sample for the network checks, then the held-out frames
        current_window = (step - 1) // steps
        # Read so far: the windows trained on and at most one ahead; the finished ones were released.
        assert len(window_reads) <= current_window + 2
        device_windows = [a for a in jax.live_arrays() if a.shape == (window_frames, 24, TINY.k)]
        assert len(device_windows) <= 1

    monkeypatch.setattr(train_module, "make_train_step", fresh_step)
    n_steps = 5 * steps  # 5 windows of 2 frames: one epoch of the 10 training frames
    fit(counting, seed=1, n_steps=n_steps, log_every=1, callback=check)
    sample, held_out, *windows = counting.reads
    assert len(sample) == min(TRAINING_FRAMES, NEIGHBOUR_SAMPLE_FRAMES)
    assert list(held_out) == list(range(TRAINING_FRAMES, FRAMES))  # the last frames, read once for validation
    assert len(windows) == 5 and all(len(w) == window_frames for w in windows)
    assert sorted(f for w in windows for f in w) == list(range(TRAINING_FRAMES))  # every frame once per epoch
    assert compiled[0]._cache_size() == 1  # the same shapes in every window: traced once


def test_a_data_set_that_fits_trains_as_its_frames_in_memory(dataset):
    settings = {"frames_in_memory": FRAMES, "steps_per_window": None}
    whole = fit(dataset, seed=2, **settings)
    assert "windows" not in whole.info
    assert_same_params(whole, fit(dataset.load(), seed=2, **settings))


@pytest.mark.parametrize(
    "name, value",
    [
        ("frames_in_memory", 1),
        ("frames_in_memory", 0),
        ("frames_in_memory", -4),
        ("frames_in_memory", 2.5),
        ("frames_in_memory", True),
        ("steps_per_window", 0),
    ],
)
def test_invalid_window_settings_are_refused(dataset, name, value):
    with pytest.raises(ValueError, match=name):
        fit(dataset, **{name: value})


def test_data_set_fingerprint_reads_no_frame_and_follows_the_data(dataset, tmp_path):
    fingerprint = dataset.fingerprint()
    assert SnapshotDataset(dataset.path).fingerprint() == fingerprint
    other = build_dataset(
        system(),
        DatasetPlan(n_frames=FRAMES, spacing=2, burn_in=10, dt=0.05, seed=2, shard_frames=5),
        tmp_path / "other",
        progress=False,
        n_threads=1,
    )
    assert other.fingerprint() != fingerprint
