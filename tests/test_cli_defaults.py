"""Every public command once through its defaults, with no setting chosen by the test: `config` and `physics` as
they are, the others small through the documented size knob ACTIVESCORE_QUICK=1 (README, Command line), which
only layers its own values (config.QUICK) on the defaults. `dataset`, `train`, `estimate` and `plot` run through
their defaults in tests/test_cli.py::test_dataset_train_estimate_plot_pipeline."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import activescore as a
from activescore import cli
from activescore import config as cfg


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("ACTIVESCORE_QUICK", "1")


def test_config_prints_the_embedded_defaults(capsys, monkeypatch):
    monkeypatch.delenv("ACTIVESCORE_QUICK", raising=False)
    assert cli.main(["config"]) == 0
    printed = cfg.tomllib.loads(capsys.readouterr().out)
    # The README's defaults: the paper's MIPS system at N = 512 on a laptop-sized run.
    mips = {
        "model": "aoup",
        "n_particles": 512,
        "packing_fraction": 0.5,
        "box_length": 0.0,
        "v0": 0.025,
        "gamma": 1e-4,
        "rotational_diffusion": 1.0,
        "eps": 0.0,
        "k": 1.0,
        "trap": 0.0,
        "beta": 7.5,
        "radius": 1.0,
        "cutoff_tol": 1e-6,
    }
    assert {key: printed["system"][key] for key in mips} == mips
    # Every other key is a model parameter added since, at its model's default (tests/test_config.py).
    assert printed["system"] == cfg.DEFAULTS["system"]
    assert printed["simulation"]["dt"] == 0.1 and printed["simulation"]["n_steps"] == 20000
    assert printed["dataset"]["n_frames"] == 64 and printed["train"]["loss"] == "dsm"
    assert list(printed) == ["system", "simulation", "dataset", "train", "estimate"]


def test_the_size_knob_changes_only_its_own_values(capsys, quick, monkeypatch):
    assert cli.main(["config"]) == 0
    printed = cfg.tomllib.loads(capsys.readouterr().out)
    assert printed["system"]["n_particles"] == 64 and printed["simulation"]["n_steps"] == 2000
    assert printed["train"]["n_steps"] == 20 and printed["dataset"]["n_frames"] == 12
    assert printed["system"]["v0"] == 0.025 and printed["simulation"]["dt"] == 0.1  # the rest as without it
    monkeypatch.setenv("ACTIVESCORE_QUICK", "yes")
    assert cli.main(["config"]) == 2
    assert "ACTIVESCORE_QUICK='yes': expected 1" in capsys.readouterr().err


def test_physics_prints_the_reference(capsys):
    assert cli.main(["physics"]) == 0
    text = capsys.readouterr().out
    assert cli.main(["physics", "--path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "physics.md" and text == path.read_text(encoding="utf-8") and len(text) > 1000


def test_simulate_through_its_defaults(tmp_path, capsys, quick):
    assert cli.main(["simulate", "--out", str(tmp_path / "s")]) == 0
    traj = a.load_trajectory(tmp_path / "s" / "trajectory.gsd")
    assert len(traj) == 2000 // 200 + 1 and traj.system == a.mips(64, 0.5)
    assert traj.dt == 0.1 and traj.seed == 1 and math.isfinite(float(traj.x.sum()))
    assert json.loads((tmp_path / "s" / "run.json").read_text())["status"] == "done"


def test_sweep_through_its_defaults(tmp_path, quick):
    # One point (the sweep needs a swept key); the scheduler, threads, seeds and run lengths are the defaults'.
    out = tmp_path / "sw"
    result = subprocess.run(
        [sys.executable, "-m", "activescore", "sweep", "--over", "phi=0.4", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(a.__file__).resolve().parents[1])},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = a.sweeps.load_table(out)
    assert len(table) == 1 and table["status"].tolist() == ["done"] and table["n_particles"].tolist() == [64]
    assert table["epr_per_particle"].iloc[0] > 0 and (out / "phase_diagram.png").stat().st_size > 0


@pytest.mark.slow
def test_demo_through_its_defaults(tmp_path, monkeypatch, quick):
    """The whole demo, small: its training alone compiles for about a minute, too long for the default run."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo"]) == 0
    out = tmp_path / "demo_output"  # the default --out
    for name in ("summary.txt", "epr.png", "configuration.png", "paper_regime.txt", "score.msgpack"):
        assert (out / name).stat().st_size > 0, name
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "done" and set(record["stages"]) == {"dataset", "train", "estimate", "paper_regime"}
    assert "LEARNING-FREE CHECK" in (out / "summary.txt").read_text()
