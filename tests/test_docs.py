"""The documentation site builds from the repository with warnings as errors (what CI does), and its pages
reach every workflow, the studies, the physics, the API reference and the performance tables; the pages hold their
own text (the README is a front page that leads here, not a source the pages include)."""

import re
import subprocess
import sys
from pathlib import Path

# The [test] extra installs the site's dependencies: a missing one is a failure, not a skip.
import myst_parser  # noqa: F401
import sphinx  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-q",
            str(ROOT / "docs"),
            str(out),
            "-d",
            str(tmp_path / "doctrees"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-6000:]}"
    for page in (
        "index",
        "installation",
        "commands",
        "physics",
        "api",
        "performance",
        "studies/mips",
        "studies/paper_regime",
        "tutorials/simulate",
        "tutorials/learn",
        "tutorials/estimate",
        "tutorials/sweeps",
        "tutorials/transfer",
        "tutorials/model_free",
    ):
        assert (out / f"{page}.html").exists(), page
    api = (out / "api.html").read_text()
    # The reference is generated from the docstrings, not written by hand.
    for name in (
        "activescore.simulation.simulate.simulate",
        "activescore.systems.AOUP",
        "activescore.estimation.learning_free_epr",
        "activescore.sweeps.api.sweep",
    ):
        assert f'id="{name}"' in api, name
    assert "Learning-free identities" in (out / "physics.html").read_text()
    assert "M particle-steps/s" in (out / "performance.html").read_text()
    assert "learned/ceiling" in (out / "studies" / "paper_regime.html").read_text()  # the dt study's table


def test_pages_hold_their_own_text():
    """No page includes the README: the front page is short, and what it left behind lives on the pages."""
    for page in (ROOT / "docs").rglob("*.md"):
        if "_build" not in page.parts:
            assert not re.search(r"\{include\}\s*\S*README\.md", page.read_text(encoding="utf-8")), page


def test_generated_tables_sit_on_the_pages_that_the_benchmarks_write():
    """Each marker the benchmark scripts write to is on the page they write it to, once."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import common

    for page, markers in (
        (common.PERFORMANCE_PAGE, ("bench-simulate-cpu", "bench-simulate-gpu", "bench-simulate-lammps")),
        (common.PAPER_REGIME_PAGE, ("paper-regime", "paper-regime-dt")),
    ):
        text = page.read_text(encoding="utf-8")
        for marker in markers:
            assert text.count(f"<!-- {marker}:start -->") == text.count(f"<!-- {marker}:end -->") == 1, marker
