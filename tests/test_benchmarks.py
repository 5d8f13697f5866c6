"""The machinery of benchmarks/: the ratios of two versions timed in turn (side_by_side), and the tables the
scripts write to the documentation pages from the JSON in benchmarks/results/."""

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


def test_update_page_replaces_only_the_marked_text(tmp_path):
    import common

    page = tmp_path / "page.md"
    page.write_text("# Page\n\n<!-- t:start -->\nold\n<!-- t:end -->\n\nafter\n")
    assert common.update_page(page, "t", "| a |\n|---|\n")
    assert page.read_text() == "# Page\n\n<!-- t:start -->\n| a |\n|---|\n<!-- t:end -->\n\nafter\n"
    assert common.marked_text(page, "t") == "| a |\n|---|\n"
    assert not common.update_page(page, "missing", "x") and common.marked_text(page, "missing") is None


def test_the_pages_tables_are_the_ones_the_scripts_draw_from_the_committed_json():
    """The generated tables on docs/performance.md and docs/studies/paper_regime.md, redrawn from
    benchmarks/results/ without rerunning anything (what --from-json writes), are the committed ones."""
    import json

    import bench_simulate
    import common
    import study_function_class
    import study_paper_regime

    results = common.RESULTS
    for name in ("simulate_vm.json", "simulate_vm_lammps.json"):
        marker, table = bench_simulate.table_of(json.loads((results / name).read_text()))
        assert common.marked_text(common.PERFORMANCE_PAGE, marker) == table + "\n", marker
    runs = [json.loads(path.read_text()) for path in study_paper_regime.STUDY_JSON]
    dt_study = json.loads(study_paper_regime.RESULTS_DT.read_text())
    function_class = json.loads((results / "function_class_n1024.json").read_text())
    for marker, table in (
        ("paper-regime", study_paper_regime.study_table(runs)),
        ("paper-regime-dt", study_paper_regime.time_step_table(dt_study)),
        ("function-class", study_function_class.table(function_class)),
    ):
        assert common.marked_text(common.PAPER_REGIME_PAGE, marker) == table + "\n", marker
