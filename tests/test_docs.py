"""The documentation site builds from the repository with warnings as errors (what CI does), and its pages
reach every workflow, the physics, the API reference and the benchmarks."""

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
        "benchmarks",
        "tutorials/simulate",
        "tutorials/learn",
        "tutorials/sweeps",
        "tutorials/transfer",
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
    assert "M particle-steps/s" in (out / "benchmarks.html").read_text()
