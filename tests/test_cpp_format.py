"""The C++ core keeps the repository's clang-format style (.clang-format; clang-format is pinned in the test
extras, so every machine formats alike)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for ext in ("*.cpp", "*.hpp", "*.cu", "*.cuh") for p in (ROOT / "cpp").rglob(ext))


@pytest.mark.skipif(
    shutil.which("clang-format") is None, reason="clang-format is not installed (pip install '.[test]')"
)
def test_cpp_sources_are_formatted():
    assert (ROOT / ".clang-format").is_file() and SOURCES
    result = subprocess.run(
        ["clang-format", "--dry-run", "--Werror", *map(str, SOURCES)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, "run clang-format -i on cpp/:\n" + result.stderr[-3000:]
