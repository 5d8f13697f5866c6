"""The command line's mistakes: each ends with one line `activescore CMD: error: ...` naming the file, key or value,
a non-zero exit status, no traceback, and nothing half-written; run.json says how a run ended."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import activescore as a
from activescore import cli
from activescore import config as cfg
from cli_helpers import TINY


def run_cli(capsys, *args):
    """(exit status, the stderr lines that are not progress bars, stdout)."""
    status = cli.main([str(x) for x in args])
    out, err = capsys.readouterr()
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("activescore")]
    assert "Traceback" not in err
    return status, lines, out


def one_error(capsys, command, *args):
    """Run a command that must fail: the single error line (asserted to be the only one, in the right form)."""
    status, lines, out = run_cli(capsys, command, *args)
    assert status != 0
    assert len(lines) == 1 and lines[0].startswith(f"activescore {command}: error: "), lines
    assert not (command == "config" and out)  # no configuration printed
    return status, lines[0]


@pytest.fixture(scope="module")
def gsd_21(tmp_path_factory):
    """A 21-frame trajectory written by activescore."""
    path = tmp_path_factory.mktemp("traj") / "t.gsd"
    a.simulate(
        a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5),
        200,
        0.05,
        seed=1,
        save_every=10,
        out=path,
        progress=False,
        n_threads=1,
    )
    return path


def test_simulate_blow_up_is_one_line_and_recorded_as_failed(tmp_path, capsys):
    out = tmp_path / "blow"
    status, line = one_error(
        capsys,
        "simulate",
        *TINY,
        "--set",
        "simulation.dt=50",
        "--set",
        "system.v0=5",
        "--set",
        "simulation.n_steps=200",
        "--set",
        "simulation.save_every=50",
        "--out",
        out,
    )
    assert status == 1 and "blow-up at step" in line and "simulation.dt" in line
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "blow-up at step" in record["error"]
    assert not (out / "trajectory.gsd.partial").exists()


def test_successful_and_interrupted_runs_are_recorded(tmp_path, capsys, monkeypatch):
    args = ["simulate", *TINY, "--set", "simulation.n_steps=100", "--set", "simulation.save_every=20"]
    status, _, _ = run_cli(capsys, *args, "--out", tmp_path / "ok")
    assert status == 0 and json.loads((tmp_path / "ok" / "run.json").read_text())["status"] == "done"

    from activescore.io import gsd as gsd_io

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gsd_io.GSDWriter, "append", interrupted)
    status, line = one_error(capsys, *args, "--out", tmp_path / "cut")
    assert status == 130 and "resume" in line
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "interrupted"


def test_no_empty_progress_bar_without_burn_in(tmp_path, capsys):
    status = cli.main(
        [
            "simulate",
            *TINY,
            "--set",
            "simulation.n_steps=40",
            "--set",
            "simulation.save_every=20",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert status == 0 and len(a.load_trajectory(tmp_path / "o" / "trajectory.gsd")) == 3
    err = capsys.readouterr().err
    assert "simulate: 100%" in err  # the frame bar is shown
    # Only the frame bar, which has work to show: no empty "0step" bar (a rate such as "70step/s" is fine).
    assert not re.search(r"\b0step\b", err) and "simulate N=" not in err


def test_plot_of_a_missing_file(tmp_path, capsys):
    status, line = one_error(capsys, "plot", "--gsd", tmp_path / "nope.gsd", "--out", tmp_path / "p.png")
    assert status == 2 and f"--gsd {tmp_path / 'nope.gsd'}: no such GSD trajectory" in line
    assert list(tmp_path.iterdir()) == []


def test_plot_frame_out_of_range(tmp_path, capsys, gsd_21):
    status, line = one_error(capsys, "plot", "--gsd", gsd_21, "--frame", 99, "--out", tmp_path / "p.png")
    assert status == 2 and "--frame 99" in line and "21 frames" in line and "[0, 20]" in line
    assert not (tmp_path / "p.png").exists()


def test_plot_into_a_missing_folder(tmp_path, capsys, gsd_21):
    status, line = one_error(capsys, "plot", "--gsd", gsd_21, "--out", tmp_path / "missing" / "p.png")
    assert status == 2 and "missing" in line and "does not exist" in line
    assert not (tmp_path / "missing").exists()


def test_plot_reads_well(tmp_path, capsys, gsd_21):
    status, _, _ = run_cli(capsys, "plot", "--gsd", gsd_21, "--frame", -1, "--out", tmp_path / "p.png")
    assert status == 0 and (tmp_path / "p.png").stat().st_size > 0


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "o").write_text("keep me")
    status, line = one_error(capsys, "simulate", *TINY, "--out", tmp_path / "o")
    assert status == 2 and f"--out {tmp_path / 'o'}: is a file" in line
    assert (tmp_path / "o").read_text() == "keep me"


def test_estimate_with_a_missing_score_creates_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    status, line = one_error(
        capsys, "estimate", "--score", tmp_path / "nope.msgpack", "--data", data, "--out", tmp_path / "e"
    )
    assert status == 2 and f"--score {tmp_path / 'nope.msgpack'}: no such saved Score" in line
    assert not (tmp_path / "e").exists()


def test_estimate_of_an_abp_data_set_with_an_aoup_score_names_both(tmp_path, capsys):
    import jax  # a required dependency: its absence is a failure, not a skip

    from activescore.learning import Score, ScoreNetConfig
    from activescore.learning.network import init_params
    from activescore.simulation.dataset import DatasetPlan, build_dataset

    build_dataset(
        a.ABP(24, packing_fraction=0.3),
        DatasetPlan(n_frames=2, spacing=5, burn_in=5, dt=0.01, seed=1),
        tmp_path / "ds",
        progress=False,
        n_threads=1,
    )
    config = ScoreNetConfig.small(k=1)
    Score(a.AOUP(24, packing_fraction=0.3), config, init_params(config, jax.random.PRNGKey(0))).save(
        tmp_path / "score.msgpack"
    )
    status, line = one_error(
        capsys, "estimate", "--score", tmp_path / "score.msgpack", "--data", tmp_path / "ds", "--out", tmp_path / "e"
    )
    assert status == 2 and "score of an AOUP system" in line and "ABP data set" in line
    assert not (tmp_path / "e").exists()


def test_foreign_and_corrupt_inputs_name_the_file(tmp_path, capsys):
    import gsd.hoomd

    foreign = tmp_path / "other.gsd"
    with gsd.hoomd.open(foreign, "w") as f:
        frame = gsd.hoomd.Frame()
        frame.particles.N = 2
        frame.particles.position = np.zeros((2, 3), dtype=np.float32)
        frame.configuration.box = [10, 10, 0, 0, 0, 0]
        f.append(frame)
    status, line = one_error(capsys, "plot", "--gsd", foreign, "--out", tmp_path / "p.png")
    assert status == 2 and str(foreign) in line

    from activescore.simulation.dataset import DatasetPlan, build_dataset

    build_dataset(
        a.AOUP(24, packing_fraction=0.3),
        DatasetPlan(n_frames=2, spacing=5, burn_in=5, dt=0.01, seed=1),
        tmp_path / "ds",
        progress=False,
        n_threads=1,
    )
    garbage = tmp_path / "score.msgpack"
    garbage.write_bytes(b"\x93not a score at all" * 10)
    status, line = one_error(capsys, "estimate", "--score", garbage, "--data", tmp_path / "ds", "--out", tmp_path / "e")
    assert status == 2 and str(garbage) in line
    assert not (tmp_path / "e").exists() and not (tmp_path / "p.png").exists()


def test_train_with_a_missing_data_set_creates_nothing(tmp_path, capsys):
    status, line = one_error(capsys, "train", "--data", tmp_path / "nodata", "--out", tmp_path / "t")
    assert status == 2 and "--data" in line and "nodata" in line
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize(
    "override, key, allowed",
    [
        ("simulation.dt=nan", "simulation.dt", "finite number in (0, inf)"),
        ("simulation.dt=-1", "simulation.dt", "(0, inf)"),
        ("simulation.save_every=0", "simulation.save_every", "[1, inf]"),
        ("simulation.n_steps=150", "simulation.n_steps", "multiple of simulation.save_every"),
        ("train.loss=foo", "[train]: loss", "('dsm', 'implicit')"),
        ("train.network=huge", "train.network", "'small', 'paper' or 'linear'"),
        ("train.sigma=[0.1, -1]", "[train]: dsm needs positive noise levels", "sigma=(0.1, -1.0)"),
        ("system.model=xyz", "system.model", "['abp', 'aoup']"),
        ("system.n_particles=2", "config key system.packing_fraction: ", "packing_fraction <="),
        ("simulation.backend=gpu", "simulation.backend", "['auto', 'cpp', 'cuda', 'numba']"),
        ("estimate.bins=-1", "estimate.bins", "[0, inf]"),
        ("train.ema_decay=1.5", "[train]: ema_decay must be in [0, 1), got 1.5", "ema_decay"),
    ],
)
def test_config_rejects_bad_values(capsys, override, key, allowed):
    status, line = one_error(capsys, "config", "--set", override)
    assert status == 2 and key in line and allowed in line


def test_config_rejects_bad_values_in_a_toml_file(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[system]\npacking_fraction = -0.5\n")
    status, line = one_error(capsys, "config", path)
    assert status == 2 and "system.packing_fraction" in line and "(0, inf)" in line


def test_simulate_with_a_bad_value_creates_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    status, line = one_error(capsys, "simulate", "--set", "simulation.dt=nan", "--out", out)
    assert status == 2 and "simulation.dt" in line
    assert not out.exists()


def test_validate_accepts_the_defaults_and_checks_each_section():
    cfg.validate(cfg.resolve())
    config = cfg.resolve(overrides=["dataset.spacing=0"])
    with pytest.raises(ValueError, match=r"dataset.spacing must be in \[1, inf\]"):
        cfg.validate(config)
    cfg.validate({"train": config["train"]})  # only the sections given are checked


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="nope.gsd"):
        cli.main(["plot", "--debug", "--gsd", str(tmp_path / "nope.gsd"), "--out", str(tmp_path / "p.png")])


def test_the_installed_entry_point_prints_one_line(tmp_path):
    """Through a real process: exit status and stderr as a user sees them."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "activescore",
            "plot",
            "--gsd",
            str(tmp_path / "nope.gsd"),
            "--out",
            str(tmp_path / "p.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    expected = f"activescore plot: error: --gsd {tmp_path / 'nope.gsd'}: no such GSD trajectory"
    assert result.stderr.strip().splitlines() == [expected]


def test_train_says_when_it_resumes(tmp_path, capsys, monkeypatch):
    from flax import serialization

    import activescore.learning as learning
    from activescore.learning.checkpoint import save_tree
    from activescore.learning.step import TrainState
    from activescore.simulation.dataset import DatasetPlan, build_dataset

    build_dataset(
        a.AOUP(24, packing_fraction=0.3),
        DatasetPlan(n_frames=2, spacing=5, burn_in=5, dt=0.01, seed=1),
        tmp_path / "ds",
        progress=False,
        n_threads=1,
    )
    # The step is where training keeps it in a checkpoint: the "step" entry of the TrainState.
    state = TrainState(step=np.array(7), params={}, opt_state=(), ema_params={})
    assert serialization.to_state_dict(state)["step"] == 7
    (tmp_path / "t").mkdir()
    save_tree(tmp_path / "t" / "checkpoint.msgpack", state, {})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands in for the training itself, which the line must precede

    monkeypatch.setattr(learning, "train_score", killed)
    status, _, out = run_cli(
        capsys, "train", "--set", "train.n_steps=20", "--data", tmp_path / "ds", "--out", tmp_path / "t"
    )
    assert status == 130 and f"train: resuming from step 7 of 20 ({tmp_path / 't' / 'checkpoint.msgpack'})" in out
    (tmp_path / "t" / "checkpoint.msgpack").unlink()
    status, _, out = run_cli(
        capsys, "train", "--set", "train.n_steps=20", "--data", tmp_path / "ds", "--out", tmp_path / "t"
    )
    assert status == 130 and "resuming" not in out
