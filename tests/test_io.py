"""Frame sinks (memory, GSD, shards) and their resumption; atomic files; progress bars; every file kind read is
checked on opening; ``as_samples`` normalises every kind of samples."""

import json
import os
import stat

import gsd.hoomd
import numpy as np
import pytest

import activescore as a
from activescore.io import gsd as gsd_io
from activescore.io.dataset import ShardSink, SnapshotDataset
from activescore.io.files import MissingFileError, atomic_write
from activescore.io.frames import MemorySink
from activescore.io.gsd import GSDSink
from activescore.io.progress import SilentBar, progress_bar
from activescore.samples import ArraySamples, Samples, as_samples
from activescore.simulation.dataset import DatasetPlan, build_dataset
from activescore.simulation.simulate import simulate_into

RUN = dict(seed=4, save_every=5, burn_in=7, progress=False, n_threads=1)


def aoup():
    return a.AOUP(20, packing_fraction=0.3, v0=0.5, gamma=1.0, eps=0.05)


def abp():
    return a.ABP(20, packing_fraction=0.3, v0=0.5, rotational_diffusion=0.5, eps=0.05)


def assert_same_trajectory(t, u, final_state=True):
    np.testing.assert_array_equal(t.step, u.step)
    np.testing.assert_array_equal(t.x, u.x)
    np.testing.assert_array_equal(t.q, u.q)
    if not final_state:  # a trajectory read from a file ends at its last frame
        return
    np.testing.assert_array_equal(t.final_state.x, u.final_state.x)
    np.testing.assert_array_equal(t.final_state.q, u.final_state.q)
    assert t.final_state.step == u.final_state.step


def interrupt_after(monkeypatch, cls, method, calls):
    """Make ``cls.method`` raise KeyboardInterrupt right after its ``calls``-th call (Ctrl-C in a run)."""
    real = getattr(cls, method)
    count = {"n": 0}

    def dying(self, *args, **kwargs):
        real(self, *args, **kwargs)
        count["n"] += 1
        if count["n"] == calls:
            raise KeyboardInterrupt

    monkeypatch.setattr(cls, method, dying)
    return lambda: monkeypatch.setattr(cls, method, real)


# ---------------------------------------------------------------------------------------------------- sinks


@pytest.mark.parametrize("make_system", [aoup, abp])
@pytest.mark.filterwarnings("ignore:simulate. n_steps=42 is not a multiple:UserWarning")  # said once, below
def test_gsd_sink_resumes_bit_for_bit(tmp_path, monkeypatch, make_system):
    s = make_system()
    with pytest.warns(UserWarning, match=r"the last 2 steps are run \(final_state holds them\) but saved in no frame"):
        whole = a.simulate(s, 42, 0.05, **RUN)  # a remainder of 2 steps after the last frame
    path = tmp_path / "run.gsd"
    restore = interrupt_after(monkeypatch, gsd_io.GSDWriter, "append", 4)
    with pytest.raises(KeyboardInterrupt):
        a.simulate(s, 42, 0.05, out=path, **RUN)
    restore()
    assert len(a.load_trajectory(path)) == 4  # Ctrl-C keeps the frames written, under the final name
    log = []
    resumed = simulate_into([MemorySink(), GSDSink(path)], s, 42, 0.05, resume=True, log=log.append, **RUN)
    assert log == [f"resuming {path}: frames 0-3 on disk (up to step 22), 5 to go"]
    np.testing.assert_array_equal(resumed.x, whole.final_state.x)
    assert_same_trajectory(a.load_trajectory(path), whole, final_state=False)
    # The API returns every frame, those read back from the file included; a finished file resumes to itself.
    again = a.simulate(s, 42, 0.05, out=path, resume=True, **RUN)
    assert_same_trajectory(again, whole)
    assert not (tmp_path / "run.gsd.partial").exists()


def test_shard_sink_resumes_bit_for_bit_and_matches_memory(tmp_path, monkeypatch):
    s = abp()
    whole = a.simulate(s, 40, 0.05, **RUN)
    restore = interrupt_after(monkeypatch, ShardSink, "_write_shard", 1)
    with pytest.raises(KeyboardInterrupt):
        a.simulate(s, 40, 0.05, out=ShardSink(tmp_path / "ds", shard_frames=4), **RUN)
    restore()
    assert len(SnapshotDataset(tmp_path / "ds")) == 4  # only whole shards count
    resumed = a.simulate(s, 40, 0.05, out=ShardSink(tmp_path / "ds", shard_frames=4), resume=True, **RUN)
    assert_same_trajectory(resumed, whole)
    ds = SnapshotDataset(tmp_path / "ds")
    assert ds.metadata["shards"] == 3 and ds.system == s
    x, q, step = ds.read()
    np.testing.assert_array_equal(q, whole.q)
    np.testing.assert_array_equal(step, whole.step)
    np.testing.assert_array_equal(ds.load()[1], whole.g)


def test_build_dataset_is_simulate_into_shards(tmp_path):
    s = aoup()
    plan = DatasetPlan(n_frames=5, spacing=3, burn_in=4, dt=0.05, seed=2, shard_frames=2)
    ds = build_dataset(s, plan, tmp_path / "ds", progress=False, n_threads=1)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert {
        "format",
        "version",
        "system",
        "dt",
        "seed",
        "burn_in",
        "spacing",
        "n_frames_planned",
        "shard_frames",
        "init",
        "shards",
        "n_frames",
        "state",
    } == set(manifest)
    ref = a.simulate(s, 12, 0.05, seed=2, burn_in=4, save_every=3, progress=False)
    np.testing.assert_array_equal(ds.load()[0], ref.x)
    assert manifest["state"]["step"] == ref.step[-1]
    np.testing.assert_array_equal(np.asarray(manifest["state"]["x"]), ref.x[-1])
    with pytest.raises(ValueError, match="overwrite=True"):
        a.simulate(s, 12, 0.05, seed=2, burn_in=4, save_every=3, out=ShardSink(tmp_path / "ds", 2), progress=False)
    again = build_dataset(s, plan, tmp_path / "ds", progress=False, overwrite=True)
    np.testing.assert_array_equal(again.load()[0], ref.x)


def test_existing_output_needs_overwrite_or_resume(tmp_path):
    s = aoup()
    path = tmp_path / "run.gsd"
    first = a.simulate(s, 10, 0.05, out=path, **RUN)
    with pytest.raises(ValueError, match="run.gsd exists; pass overwrite=True"):
        a.simulate(s, 10, 0.05, out=path, **RUN)
    other = a.simulate(s, 10, 0.05, out=path, overwrite=True, **{**RUN, "seed": 5})
    assert a.load_trajectory(path).seed == 5
    np.testing.assert_array_equal(a.load_trajectory(path).x, other.x)
    assert not np.array_equal(other.x, first.x)
    with pytest.raises(ValueError, match=r"other settings \(dt differ\)"):
        a.simulate(s, 10, 0.1, out=path, resume=True, **{**RUN, "seed": 5})
    with pytest.raises(ValueError, match="pass at most one"):
        a.simulate(s, 10, 0.05, out=path, resume=True, overwrite=True, **RUN)
    with pytest.raises(ValueError, match="more than the 2 this run saves"):
        a.simulate(s, 5, 0.05, out=path, resume=True, **{**RUN, "seed": 5})


def test_resume_extends_a_finished_run(tmp_path):
    s = aoup()
    path = tmp_path / "run.gsd"
    a.simulate(s, 20, 0.05, out=path, **RUN)
    longer = a.simulate(s, 40, 0.05, out=path, resume=True, **RUN)
    assert_same_trajectory(longer, a.simulate(s, 40, 0.05, **RUN))


# ---------------------------------------------------------------------------------------------------- files


def test_created_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.txt", "text")
        a.simulate(aoup(), 5, 0.05, out=tmp_path / "b.gsd", **RUN)
        build_dataset(aoup(), DatasetPlan(2, 2, 0, 0.05, 1), tmp_path / "ds", progress=False)
    finally:
        os.umask(old)
    for path in (
        tmp_path / "a.txt",
        tmp_path / "b.gsd",
        tmp_path / "ds" / "manifest.json",
        tmp_path / "ds" / "x_00000.npy",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path


def test_atomic_write_keeps_the_old_file_on_an_error(tmp_path):
    from activescore.io.files import atomic_file

    path = tmp_path / "f.bin"
    atomic_write(path, b"old")
    with pytest.raises(RuntimeError), atomic_file(path) as f:
        f.write(b"half")
        raise RuntimeError
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_progress_bar_prints_nothing_without_work(capsys):
    for bar in (
        progress_bar(True, 10, initial=10, desc="d", unit="step"),
        progress_bar(False, 10, desc="d", unit="step"),
        progress_bar(True, 0, desc="d", unit="step"),
    ):
        assert isinstance(bar, SilentBar)
        with bar:
            bar.update(3)
            bar.set_postfix(loss=1)
    shown = progress_bar(True, 4, desc="shown", unit="step")
    with shown:
        shown.update(4)
    err = capsys.readouterr().err
    assert err.count("shown") >= 1 and "d:" not in err


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """Files activescore did not write: text, a plain GSD, a truncated activescore GSD, an empty file."""
    root = tmp_path_factory.mktemp("foreign")
    (root / "text.gsd").write_text("hello\n")
    (root / "empty").write_bytes(b"")
    with gsd.hoomd.open(str(root / "plain.gsd"), "w") as f:
        frame = gsd.hoomd.Frame()
        frame.particles.N = 2
        frame.particles.position = np.zeros((2, 3), np.float32)
        f.append(frame)
    a.simulate(aoup(), 20, 0.05, out=root / "ok.gsd", **RUN)
    data = (root / "ok.gsd").read_bytes()
    (root / "truncated.gsd").write_bytes(data[: len(data) // 2])
    return root


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.gsd", "missing.gsd: no such GSD file"),
        ("text.gsd", "text.gsd is not a GSD file"),
        ("empty", "empty is not a GSD file .it is empty"),
        ("plain.gsd", "plain.gsd is a GSD file without activescore metadata: written by another program?"),
        ("truncated.gsd", "truncated.gsd is not a readable GSD file .truncated or corrupt"),
    ],
)
def test_gsd_files_are_checked_on_opening(foreign, name, message):
    for read in (a.load_trajectory, a.load_state):
        with pytest.raises(ValueError, match=message):
            read(foreign / name)
    if name == "missing.gsd":
        with pytest.raises(FileNotFoundError):
            a.load_trajectory(foreign / name)


def test_gsd_frame_out_of_range(foreign):
    with pytest.raises(ValueError, match=r"frame 99: .*ok.gsd has 5 frames"):
        a.load_state(foreign / "ok.gsd", 99)


@pytest.fixture
def dataset(tmp_path):
    build_dataset(aoup(), DatasetPlan(4, 2, 0, 0.05, 1, shard_frames=2), tmp_path / "ds", progress=False)
    return tmp_path / "ds"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "manifest.json").write_text('{"format": 1, "sys'), r"manifest.json is corrupt \(not JSON"),
        (lambda p: (p / "manifest.json").write_text('{"hello": 1}'), "not an activescore data set manifest"),
        (lambda p: (p / "manifest.json").unlink(), "is not an activescore data set .no manifest.json"),
        (lambda p: (p / "q_00001.npy").unlink(), r"q_00001.npy: no such q shard \(the manifest names 2 shards\)"),
        (
            lambda p: (p / "x_00000.npy").write_bytes((p / "x_00000.npy").read_bytes()[:60]),
            "x_00000.npy is not a readable .npy shard",
        ),
        (lambda p: np.save(p / "x_00001.npy", np.zeros((2, 3, 2))), "shard 1 has shapes"),
    ],
)
def test_data_set_files_are_checked_on_opening(dataset, damage, message):
    damage(dataset)
    with pytest.raises(ValueError, match=message):
        SnapshotDataset(dataset)


def test_a_file_is_not_a_data_set(foreign):
    with pytest.raises(ValueError, match="ok.gsd is a file, not a data set folder .it is a GSD trajectory"):
        SnapshotDataset(foreign / "ok.gsd")
    with pytest.raises(MissingFileError, match="nothing: no such data set folder"):
        SnapshotDataset(foreign / "nothing")


def test_config_files_are_checked(tmp_path, foreign):
    from activescore import config

    with pytest.raises(ValueError, match="ok.gsd is not a TOML file .not UTF-8 text. .it is a GSD trajectory"):
        config.resolve(foreign / "ok.gsd")
    with pytest.raises(ValueError, match="is a folder, not a TOML file"):
        config.resolve(tmp_path)
    (tmp_path / "cut.toml").write_text("[system]\nn_particles = ")
    with pytest.raises(ValueError, match="cut.toml is not valid TOML"):
        config.resolve(tmp_path / "cut.toml")
    with pytest.raises(ValueError, match="does not exist"):
        config.resolve(tmp_path / "none.toml")


# ---------------------------------------------------------------------------------------------------- samples


def test_as_samples_reads_every_kind(tmp_path, dataset):
    s = aoup()
    traj = a.simulate(s, 20, 0.05, out=tmp_path / "t.gsd", **RUN)
    for given in (traj, (traj.x, traj.g), tmp_path / "t.gsd", str(tmp_path / "t.gsd")):
        samples = as_samples(given, s)
        assert isinstance(samples, Samples) and samples.in_memory and samples.system == s
        assert len(samples) == 5 and samples.n_particles == 20
        x, g = samples.load()
        np.testing.assert_array_equal(x, traj.x)
        np.testing.assert_array_equal(g, traj.g)
        np.testing.assert_array_equal(samples.load([1, 3])[1], traj.g[[1, 3]])
    assert as_samples((traj.x, traj.g)).system is None  # bare arrays without a system
    assert as_samples((traj.x[0], traj.g[0])).load()[0].shape == (1, 20, 2)  # one snapshot is one frame
    ds = SnapshotDataset(dataset)
    for given in (ds, dataset, str(dataset)):
        samples = as_samples(given)
        assert isinstance(samples, SnapshotDataset) and not samples.in_memory and isinstance(samples, Samples)
        np.testing.assert_array_equal(samples.load()[0], ds.load()[0])
    assert as_samples((traj.x, traj.g)).fingerprint() == ArraySamples(traj.x, traj.g).fingerprint()
    assert as_samples(traj).fingerprint() != as_samples((traj.x, -traj.g)).fingerprint()


@pytest.mark.parametrize(
    "given, message",
    [
        ((np.zeros((2, 5, 2)), np.zeros((2, 5, 3))), "equal shape"),
        ((np.zeros((0, 5, 2)), np.zeros((0, 5, 2))), "no snapshots"),
        ((np.full((1, 5, 2), np.nan), np.zeros((1, 5, 2))), "finite"),
        ((np.zeros((1, 5, 2)),), "a tuple must be"),
        (42, "must be a Trajectory, a tuple"),
    ],
)
def test_as_samples_rejects_bad_arrays(given, message):
    with pytest.raises(ValueError, match=message):
        as_samples(given)


def test_as_samples_checks_files_and_systems(tmp_path, foreign):
    with pytest.raises(MissingFileError, match="no such GSD trajectory or data set folder"):
        as_samples(tmp_path / "none")
    (tmp_path / "notes.txt").write_text("{}")
    with pytest.raises(ValueError, match="notes.txt is neither a GSD trajectory nor a data set folder .it is JSON"):
        as_samples(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="plain.gsd is a GSD file without activescore metadata"):
        as_samples(foreign / "plain.gsd")
    with pytest.raises(ValueError, match="system: .* differs from samples.system"):
        as_samples(foreign / "ok.gsd", abp())
