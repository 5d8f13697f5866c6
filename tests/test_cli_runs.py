"""An output folder belongs to one run: a lock held for the whole run (two real processes), one command's record
per folder, "already done" only for the file the configuration describes, and exit status 2 leaving nothing."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import activescore as a
from cli_helpers import TINY, run_cli

TINY_RUN = [*TINY, "--set", "simulation.n_steps=40", "--set", "simulation.save_every=10"]
PYTHON = Path(a.__file__).resolve().parents[1]  # the package's folder, for the child processes


def snapshot(folder: Path) -> dict:
    """Every file of a folder with its bytes (but the lock file, which says who holds the folder now)."""
    return {
        p.relative_to(folder): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".activescore.lock"
    }


def test_two_simulate_processes_into_one_folder(tmp_path):
    """The second command stops at once naming the holder; the first finishes with every frame."""
    out = tmp_path / "run"
    # A quarter of a second of simulation on an idle machine, so that the lock is seen held; once the first command is
    # stopped, the second runs while it holds the folder however long either takes.
    args = [*TINY_RUN, "--set", "simulation.n_steps=50000", "--set", "simulation.save_every=1250", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PYTHON), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "activescore", "simulate", *args]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = out / ".activescore.lock"
        deadline = time.monotonic() + 120
        while not (lock.exists() and str(first.pid) in lock.read_text()):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first command never took the folder"
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # holding the lock, mid-run, for as long as the second one takes
        try:
            second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        finally:
            first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr.strip().splitlines() == [
        f"activescore simulate: error: --out {out}: in use by `activescore simulate` (process {first.pid} on "
        + second.stderr.split(f"(process {first.pid} on ", 1)[1].strip()
    ]
    assert "wait for it to finish or choose another folder" in second.stderr
    assert first.returncode == 0, stderr
    assert "wrote 41 frames" in stdout
    assert len(a.load_trajectory(out / "trajectory.gsd")) == 41
    assert json.loads((out / "run.json").read_text())["status"] == "done"


def test_a_folder_holds_the_outputs_of_one_command(tmp_path, capsys):
    out = tmp_path / "sim"
    assert run_cli(capsys, "simulate", *TINY_RUN, "--out", out)[0] == 0
    before = snapshot(out)
    status, line, _ = run_cli(capsys, "dataset", *TINY_RUN[:10], "--set", "dataset.n_frames=2", "--out", out)
    assert status == 2 and f"--out {out}: holds the outputs of `activescore simulate`" in line
    assert snapshot(out) == before  # config.toml and run.json untouched
    status, line, _ = run_cli(capsys, "sweep", "--over", "phi=0.3", "--out", out)
    assert status == 2 and f"--out {out}: holds the outputs of another activescore command" in line
    assert snapshot(out) == before
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("{}")  # what a sweep writes first
    status, line, _ = run_cli(capsys, "simulate", *TINY_RUN, "--out", tmp_path / "sweep")
    assert status == 2 and "holds the outputs of `activescore sweep`" in line
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["sweep.json"]
    # The same command with another configuration is refused too, naming what differs.
    status, line, _ = run_cli(capsys, "simulate", *TINY_RUN, "--set", "system.n_particles=32", "--out", out)
    assert status == 2 and "system.n_particles: 24 -> 32" in line
    assert snapshot(out) == before


def test_a_folder_of_an_earlier_version_reruns(tmp_path, capsys):
    # A run recorded before a [system] key existed (cutoff_tol, a model parameter added since): at its default the
    # key is no other configuration; set off it, it is.
    out = tmp_path / "sim"
    assert run_cli(capsys, "simulate", *TINY_RUN, "--out", out)[0] == 0
    record = json.loads((out / "run.json").read_text())
    del record["config"]["system"]["cutoff_tol"]
    (out / "run.json").write_text(json.dumps(record))
    assert "already done" in run_cli(capsys, "simulate", *TINY_RUN, "--out", out)[2]
    (out / "run.json").write_text(json.dumps(record))
    status, line, _ = run_cli(capsys, "simulate", *TINY_RUN, "--set", "system.cutoff_tol=1e-8", "--out", out)
    assert status == 2 and "system.cutoff_tol: None -> 1e-08" in line


def test_already_done_only_when_the_file_is_the_configurations(tmp_path, capsys):
    out, other = tmp_path / "sim", tmp_path / "other"
    assert run_cli(capsys, "simulate", *TINY_RUN, "--out", out)[0] == 0
    assert run_cli(capsys, "simulate", *TINY_RUN, "--set", "system.n_particles=32", "--out", other)[0] == 0
    assert "already done" in run_cli(capsys, "simulate", *TINY_RUN, "--out", out)[2]
    shutil.copy(other / "trajectory.gsd", out / "trajectory.gsd")  # the record says done; the file is another's
    record = (out / "run.json").read_bytes()
    status, line, stdout = run_cli(capsys, "simulate", *TINY_RUN, "--out", out)
    assert status == 2 and "already done" not in stdout
    assert "trajectory.gsd holds AOUP(n_particles=32" in line and "remove trajectory.gsd" in line
    assert (out / "run.json").read_bytes() == record
    (out / "trajectory.gsd").unlink()  # a missing file is simulated again
    status, _, stdout = run_cli(capsys, "simulate", *TINY_RUN, "--out", out)
    assert status == 0 and "simulate: redone: trajectory.gsd is missing" in stdout
    assert len(a.load_trajectory(out / "trajectory.gsd")) == 5


def test_a_usage_error_inside_a_run_takes_back_what_it_wrote(tmp_path, capsys, monkeypatch):
    from activescore.cli import pipeline

    def refused(*args, **kwargs):
        raise ValueError("a check that only the stage can make")

    monkeypatch.setattr(pipeline, "simulate", refused)
    status, line, _ = run_cli(capsys, "simulate", *TINY_RUN, "--out", tmp_path / "new")
    assert status == 2 and "only the stage" in line and not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("mine")
    status, _, _ = run_cli(capsys, "simulate", *TINY_RUN, "--out", tmp_path / "old")
    assert status == 2 and sorted(p.name for p in (tmp_path / "old").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--set", "simulation.backend=cuda"], "simulation.backend: backend 'cuda' is not available"),
        (["--set", "system.n_particles=2000000000"], "needs about"),
    ],
)
def test_exit_2_leaves_no_output_folder(tmp_path, capsys, monkeypatch, extra, words):
    from activescore import backends

    # As on a machine without a GPU, also where one is visible.
    monkeypatch.setattr(backends.CudaBackend, "unavailable_reason", lambda self: "no CUDA GPU is visible")
    status, line, _ = run_cli(capsys, "simulate", *TINY_RUN, *extra, "--out", tmp_path / "o")
    assert status == 2 and words in line and "--debug" not in line
    assert not (tmp_path / "o").exists()


def test_checks_that_need_the_inputs_run_before_the_folder_is_made(tmp_path, capsys):
    from activescore.learning.linear import LinearScore

    gsd = tmp_path / "t.gsd"
    soft = a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5, eps=0.1)
    a.simulate(soft, 20, 0.02, seed=1, save_every=10, out=gsd, progress=False, n_threads=1)
    # network = linear on eps > 0
    status, line, _ = run_cli(capsys, "train", "--set", "train.network=linear", "--data", gsd, "--out", tmp_path / "t")
    assert status == 2 and "train.network = 'linear'" in line and "eps = 0" in line
    # a score of another size: the remedy is one the command line has
    score = tmp_path / "score.json"
    LinearScore(a.AOUP(32, packing_fraction=0.3, v0=0.5, gamma=0.5), [0.0, 0.0, 0.0], 1).save(score)
    status, line, _ = run_cli(capsys, "estimate", "--score", score, "--data", gsd, "--out", tmp_path / "e")
    assert status == 2 and "n_particles=32" in line and "activescore train --data" in line
    assert "transfer" not in line
    assert not (tmp_path / "t").exists() and not (tmp_path / "e").exists()


def test_remedies_are_the_command_lines(tmp_path, capsys):
    """A file left by another run is named with what the command line can do about it, not an API argument."""
    out = tmp_path / "o"
    out.mkdir()
    other = a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5)
    a.simulate(other, 40, 0.1, seed=5, save_every=10, out=out / "trajectory.gsd", progress=False, n_threads=1)
    (out / "trajectory.gsd").rename(out / "trajectory.gsd.partial")  # as an interrupted run with seed 5 leaves it
    status, line, _ = run_cli(capsys, "simulate", *TINY_RUN, "--out", out)
    assert status == 2 and "holds a run with other settings (seed differ)" in line
    assert "remove it or choose another --out" in line and "=True" not in line
    assert sorted(p.name for p in out.iterdir()) == ["trajectory.gsd.partial"]


def test_a_finished_training_is_kept_only_for_its_own_data(tmp_path, capsys):
    from activescore.learning.linear import LinearScore

    system = a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5)
    gsd = tmp_path / "t.gsd"
    a.simulate(system, 60, 0.05, seed=1, save_every=10, out=gsd, progress=False, n_threads=1)
    train = ["train", "--set", "train.network=linear", "--data", gsd, "--out", tmp_path / "t"]
    assert run_cli(capsys, *train)[0] == 0
    assert "train: already done" in run_cli(capsys, *train)[2]
    LinearScore(a.AOUP(32, packing_fraction=0.3, v0=0.5, gamma=0.5), [0.0, 0.0, 0.0], 1).save(
        tmp_path / "t" / "score.json"
    )  # the record says done; the file is another system's
    status, line, out = run_cli(capsys, *train)
    assert status == 2 and "already done" not in out
    assert "score.json is the score of AOUP(n_particles=32" in line and "remove score.json" in line
