"""``activescore model-free``: a trackpy CSV and a GSD trajectory through the command's defaults, and its input
errors as one line with exit status 2 and no --out left behind."""

import json

import numpy as np
import pytest

import activescore as a
from activescore import cli


@pytest.fixture(scope="module")
def free_abps(tmp_path_factory):
    """Free ABPs (EPR = v0²/ε per particle, physics.md §5) written as a GSD file and as a trackpy-style CSV."""
    system = a.ABP(64, packing_fraction=0.1, k=0.0, v0=1.5, eps=0.25, rotational_diffusion=1.0)
    folder = tmp_path_factory.mktemp("tracks")
    traj = a.simulate(system, 300, 0.005, seed=9, save_every=1, burn_in=200, out=folder / "free.gsd", progress=False)
    n_frames, n = traj.x.shape[:2]
    frame, particle = np.meshgrid(np.arange(n_frames), np.arange(n), indexing="ij")
    rows = np.column_stack([frame.ravel(), particle.ravel(), traj.x[..., 0].ravel(), traj.x[..., 1].ravel()])
    rows = np.column_stack([rows, traj.theta.ravel()])
    csv = folder / "tracks.csv"
    np.savetxt(csv, rows, delimiter=",", header="frame,particle,x,y,angle", comments="")
    return system, folder / "free.gsd", csv


def exact_within_errors(record: dict, exact: float) -> None:
    per = record["epr_per_particle"]
    assert abs(per["value"] - exact) <= 4 * per["stderr"] + 0.03 * exact  # the chain's O(dt) bias: physics.md §8


def test_model_free_from_a_csv_and_a_gsd_file(free_abps, tmp_path, capsys):
    system, gsd, csv = free_abps
    exact = system.v0**2 / system.eps
    status = cli.main(
        ["model-free", "--tracks", str(csv), "--frame-interval", "0.005", "--box-length", str(system.box_length)]
        + ["--out", str(tmp_path / "csv")]
    )
    assert status == 0
    exact_within_errors(json.loads((tmp_path / "csv" / "model_free.json").read_text()), exact)
    assert "Model-free entropy production" in (tmp_path / "csv" / "model_free.txt").read_text()
    assert cli.main(["model-free", "--tracks", str(gsd), "--out", str(tmp_path / "gsd")]) == 0
    exact_within_errors(json.loads((tmp_path / "gsd" / "model_free.json").read_text()), exact)
    assert json.loads((tmp_path / "gsd" / "run.json").read_text())["status"] == "done"
    assert cli.main(["model-free", "--tracks", str(gsd), "--positions-only", "--out", str(tmp_path / "tur")]) == 0
    record = json.loads((tmp_path / "tur" / "model_free.json").read_text())
    assert record["kind"].startswith("TUR lower bound") and "LOWER BOUND" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, names",
    [
        (["--tracks", "missing.csv"], "missing.csv"),
        (["--tracks", "{csv}"], "--frame-interval"),
        (["--tracks", "{gsd}", "--frame-interval", "0.1"], "--frame-interval"),
        (["--tracks", "{csv}", "--frame-interval", "-1"], "frame_interval"),
        (["--tracks", "{csv}", "--frame-interval", "0.005", "--field-of-view", "0,1,2"], "field_of_view"),
        (["--tracks", "{gsd}", "--diffusion", "large"], "--diffusion"),
        (["--tracks", "{gsd}", "--lag", "0"], "lag"),
        (["--tracks", "{gsd}", "--velocity", "mlp"], "--velocity"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(free_abps, tmp_path, capsys, args, names):
    _, gsd, csv = free_abps
    out = tmp_path / "out"
    args = [arg.format(csv=csv, gsd=gsd) for arg in args]
    assert cli.main(["model-free", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and names in err and err.startswith("activescore model-free: error:")
    assert not out.exists()
