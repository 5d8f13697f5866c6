"""Every setting applies or is refused, sizes are checked before allocation, and the smaller mistakes of issue 26
(file permissions, output names, image formats, list values, plotting the whole result) end in one clear line."""

import os
import stat
import subprocess
import sys
import types
import warnings

import pytest

import activescore as a
from activescore import cli
from activescore import config as cfg
from cli_helpers import run_cli


@pytest.fixture(scope="module")
def gsd_24(tmp_path_factory):
    """A 3-frame trajectory of 24 AOUPs."""
    path = tmp_path_factory.mktemp("traj") / "t.gsd"
    system = a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5)
    a.simulate(system, 20, 0.05, seed=1, save_every=10, out=path, progress=False, n_threads=1)
    return path


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["system.model=abp", "system.gamma=0.5"], "system.gamma: is a parameter of the AOUP model"),
        (["system.rotational_diffusion=3"], "system.rotational_diffusion: is a parameter of the ABP model"),
        (["system.box_length=40", "system.packing_fraction=0.4"], "give one of them, the other 0"),
    ],
)
def test_keys_that_would_be_ignored_are_refused(capsys, overrides, words):
    status, line, out = run_cli(capsys, "config", *[x for o in overrides for x in ("--set", o)])
    assert status == 2 and words in line and out == ""


def test_a_box_length_alone_sizes_the_box_and_the_resolved_file_reruns(tmp_path, capsys):
    status, _, out = run_cli(capsys, "config", "--set", "system.box_length=40")
    assert status == 0 and "box_length = 40.0" in out and "packing_fraction = 0.0" in out
    (tmp_path / "c.toml").write_text(out)
    assert cfg.make_system(cfg.resolve(tmp_path / "c.toml")["system"]).box_length == 40.0
    # The other model's key at its default (as every resolved config.toml holds it) is no setting.
    abp = cfg.resolve(overrides=["system.model=abp", f"system.gamma={cfg.DEFAULTS['system']['gamma']}"])
    assert abp["system"]["model"] == "abp"


def test_keys_a_command_does_not_use_are_refused(tmp_path, capsys, gsd_24):
    status, line, _ = run_cli(capsys, "train", "--set", "system.n_particles=999", "--data", gsd_24, "--out", tmp_path)
    assert status == 2 and "system.n_particles = 999" in line and "n_particles = 24" in line
    status, line, _ = run_cli(capsys, "train", "--set", "simulation.dt=0.1", "--data", gsd_24, "--out", tmp_path / "t")
    assert status == 2 and "does not use [simulation]" in line
    status, line, _ = run_cli(capsys, "dataset", "--set", "simulation.n_steps=10", "--out", tmp_path / "d")
    assert status == 2 and "simulation.n_steps=10" in line and "dataset.n_frames" in line
    status, line, _ = run_cli(capsys, "demo", "--set", "simulation.save_every=10", "--out", tmp_path / "m")
    assert status == 2 and "`activescore demo` does not use it (dataset.spacing sets it)" in line
    status, line, _ = run_cli(capsys, "simulate", "--set", "train.loss=dsm", "--out", tmp_path / "s")
    assert status == 2 and "does not use [train]" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--threads", "--workers"])
def test_thread_counts_are_checked_alike(tmp_path, capsys, option):
    status, line, _ = run_cli(capsys, "sweep", "--over", "phi=0.3", option, "-1", "--out", tmp_path / "sw")
    assert status == 2 and f"{option} must be in [0, inf], got -1" in line and not (tmp_path / "sw").exists()
    status, line, _ = run_cli(capsys, "config", "--set", "simulation.n_threads=-1")
    assert status == 2 and "simulation.n_threads must be in [0, inf], got -1" in line


def test_plot_writes_the_format_its_suffix_names(tmp_path, capsys, gsd_24):
    assert run_cli(capsys, "plot", "--gsd", gsd_24, "--out", tmp_path / "p.jpg")[0] == 0
    assert (tmp_path / "p.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    status, line, _ = run_cli(capsys, "plot", "--gsd", gsd_24, "--out", tmp_path / "p.xyz")
    assert status == 2 and "cannot write .xyz images" in line and not (tmp_path / "p.xyz").exists()


def test_a_list_value_on_the_command_line(capsys):
    status, _, out = run_cli(capsys, "config", "--set", "train.sigma=0.01,0.1")
    assert status == 0 and cfg.tomllib.loads(out)["train"]["sigma"] == [0.01, 0.1]


def test_config_of_a_system_too_large_for_memory_allocates_nothing(capsys):
    # Through a real process, so that a kill for memory would show (exit 137) instead of the one line.
    result = subprocess.run(
        [sys.executable, "-m", "activescore", "config", "--set", "system.n_particles=2000000000"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(a.__file__))])},
    )
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "system.n_particles = 2000000000" in line and "TB of memory" in line and "available here" in line


def test_the_api_checks_sizes_and_says_what_it_drops(tmp_path, monkeypatch):
    from activescore.simulation import memory

    system = a.AOUP(24, packing_fraction=0.3, v0=0.5, gamma=0.5)
    monkeypatch.setattr(memory, "available_memory", lambda: 10**5)
    with pytest.raises(ValueError, match=r"24 particles keeping 1001 frames in memory needs about .* MB of memory"):
        a.simulate(system, 1000, 0.01, save_every=1, progress=False)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="the last 5 steps are run .* but saved in no frame") as said:
        traj = a.simulate(system, 25, 0.01, save_every=10, seed=1, progress=False, n_threads=1)
    assert said[0].filename == __file__  # the warning points at the user's call
    assert traj.final_state.step == 25 and list(traj.step) == [0, 10, 20]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a.simulate(system, 20, 0.01, save_every=10, seed=1, progress=False, n_threads=1)  # no tail, no word


def test_output_names_that_are_no_file(tmp_path, monkeypatch):
    system = a.AOUP(24, packing_fraction=0.3)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"out: '\.' is a folder; give the name of a \.gsd file"):
        a.simulate(system, 10, 0.01, out=".", progress=False)
    with pytest.raises(ValueError, match=r"the folder 'nofolder' does not exist") as info:
        a.simulate(system, 10, 0.01, out="nofolder/x.gsd", progress=False)
    assert "partial" not in str(info.value) and not isinstance(info.value, FileNotFoundError)


def test_gsd_files_get_the_permissions_of_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        a.simulate(a.AOUP(24, packing_fraction=0.3), 10, 0.01, save_every=5, out=tmp_path / "t.gsd", progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.gsd").stat().st_mode) == 0o644


def test_plotting_the_whole_result_draws_its_map_or_says_what_it_takes():
    from activescore import plotting

    no_map = types.SimpleNamespace(map=None, radial=None)
    with pytest.raises(ValueError, match=r"field_map: this SimpleNamespace has no SpatialMap \(result.map is None\)"):
        plotting.plot_epr_map(no_map)
    with pytest.raises(ValueError, match=r"profile: this SimpleNamespace has no RadialProfile"):
        plotting.plot_radial_profile(no_map)
    with pytest.raises(ValueError, match=r"field_map: expected a SpatialMap \(e.g. result.map of an estimate\)"):
        plotting.plot_current(object())


def test_the_sweep_figures_give_the_epr_its_unit():
    from activescore.sweeps import figures

    labels = [label for column, label in figures._QUANTITIES if "epr" in column]
    assert labels and all(label.endswith("[k_B / time]") for label in labels)


def test_help_and_the_readme_name_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["plot", "--help"])
    assert "Draw one frame" in capsys.readouterr().out
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    for command in (
        "demo",
        "simulate",
        "dataset",
        "train",
        "estimate",
        "plot",
        "config",
        "physics",
        "sweep",
        "model-free",
    ):
        assert f"`activescore {command}" in table, command
