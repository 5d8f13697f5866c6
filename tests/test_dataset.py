"""Snapshot data sets: layout, lazy reading, exact resumption after an interruption."""

import json

import numpy as np
import pytest

import activescore as a
from activescore.io.dataset import SnapshotDataset
from activescore.simulation.dataset import DatasetPlan, build_dataset


def small():
    return a.AOUP(30, packing_fraction=0.3, v0=0.5, gamma=1.0, eps=0.05)


def test_dataset_frames_match_one_simulation(tmp_path):
    s = small()
    plan = DatasetPlan(n_frames=7, spacing=5, burn_in=20, dt=0.05, seed=3, shard_frames=3)
    ds = build_dataset(s, plan, tmp_path / "ds", progress=False, n_threads=1)
    assert len(ds) == 7 and ds.metadata["shards"] == 3
    ref = a.simulate(s, 30, 0.05, seed=3, burn_in=20, save_every=5, progress=False, n_threads=1)
    np.testing.assert_array_equal(ds.step, ref.step)
    x, g = ds.load()
    np.testing.assert_array_equal(x, ref.x)
    np.testing.assert_array_equal(g, ref.g)
    np.testing.assert_array_equal(ds.x[4], ref.x[4])
    np.testing.assert_array_equal(np.asarray(ds.g), ref.g)
    assert ds.system == s


def test_interrupted_build_resumes_exactly(tmp_path, monkeypatch):
    s = small()
    plan = DatasetPlan(n_frames=6, spacing=4, burn_in=8, dt=0.05, seed=9, shard_frames=2)
    whole = build_dataset(s, plan, tmp_path / "whole", progress=False, n_threads=1)

    import activescore.io.dataset as dataset_module

    calls = {"n": 0}
    real_save = dataset_module._save_json

    def dying_save(path, payload):  # the run is killed after writing the second shard's manifest
        real_save(path, payload)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(dataset_module, "_save_json", dying_save)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(s, plan, tmp_path / "cut", progress=False, n_threads=1)
    monkeypatch.setattr(dataset_module, "_save_json", real_save)
    assert json.loads((tmp_path / "cut" / "manifest.json").read_text())["n_frames"] == 4
    assert not list((tmp_path / "cut").glob("*.partial*"))
    resumed = build_dataset(s, plan, tmp_path / "cut", progress=False, n_threads=1)
    np.testing.assert_array_equal(resumed.load()[0], whole.load()[0])
    np.testing.assert_array_equal(resumed.step, whole.step)


def test_other_settings_in_the_folder_are_refused(tmp_path):
    s = small()
    build_dataset(s, DatasetPlan(2, 2, 0, 0.05, 1), tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="path"):
        build_dataset(s, DatasetPlan(2, 3, 0, 0.05, 1), tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="nothing: no such data set folder"):
        SnapshotDataset(tmp_path / "nothing")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_frames=0), "n_frames"),
        (dict(spacing=0), "spacing"),
        (dict(dt=-1.0), "dt"),
        (dict(burn_in=-1), "burn_in"),
    ],
)
def test_plan_validation(kwargs, name):
    args = dict(n_frames=2, spacing=2, burn_in=0, dt=0.1, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        DatasetPlan(**args)
