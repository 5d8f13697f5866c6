"""The side-by-side machinery of benchmarks/ (two versions timed in turn): the ratios it reports."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import side_by_side  # noqa: E402

# A worker that answers every request with fixed times: wall = cpu = the seconds given on its command line, times
# how many requests it has answered (so that the rounds differ).
FAKE_WORKER = """
import json, sys
seconds = float(sys.argv[1])
print("ready", flush=True)
for k, line in enumerate(sys.stdin, start=1):
    assert line.strip() == "case 7"
    print(json.dumps({"wall": seconds * k, "cpu": 2 * seconds * k}), flush=True)
"""


def test_in_turn_reports_reference_over_candidate_round_by_round(tmp_path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    workers = {}
    for version, seconds in (("reference", 3.0), ("candidate", 1.0)):
        # Started by hand: start_worker passes `--worker`, and the fake takes its seconds there instead.
        process = side_by_side.subprocess.Popen(
            [sys.executable, str(script), str(seconds)],
            stdin=side_by_side.subprocess.PIPE,
            stdout=side_by_side.subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "ready"
        workers[version] = process
    row = side_by_side.in_turn(workers, "case 7", rounds=3)
    side_by_side.stop(workers)
    assert [t["wall"] for t in row["rounds"]["reference"]] == [3.0, 6.0, 9.0]
    assert [t["wall"] for t in row["rounds"]["candidate"]] == [1.0, 2.0, 3.0]
    for clock in ("wall", "cpu"):
        assert row[f"speedup_{clock}"] == {"median": pytest.approx(3.0), "min": 3.0, "max": 3.0}


def test_start_worker_refuses_a_worker_that_does_not_start(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import sys; sys.exit(1)\n")
    with pytest.raises(RuntimeError, match="failed to start"):
        side_by_side.start_worker(str(script), str(tmp_path))


def test_copy_worktree_copies_the_named_paths_without_build_outputs(tmp_path):
    out = side_by_side.copy_worktree(str(tmp_path / "tree"), ["CMakeLists.txt", "python"])
    package = Path(out) / "python" / "activescore"
    assert (Path(out) / "CMakeLists.txt").read_text() == (Path(side_by_side.REPO) / "CMakeLists.txt").read_text()
    assert (package / "__init__.py").is_file()
    assert not list(package.glob("_core*.so")) and not list(package.rglob("__pycache__"))
    assert not (Path(out) / "cpp").exists()
