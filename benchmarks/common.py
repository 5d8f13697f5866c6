"""Shared by the benchmark scripts: the machine description and writing results (JSON + the table on the
documentation page that shows it)."""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
#: The documentation pages that hold tables generated from the JSON in results/ (between
#: ``<!-- marker:start -->`` and ``<!-- marker:end -->``): the simulator's throughput and the paper's-regime study.
PERFORMANCE_PAGE = ROOT / "docs" / "performance.md"
PAPER_REGIME_PAGE = ROOT / "docs" / "studies" / "paper_regime.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    try:
        import subprocess

        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    import numpy

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu_model(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    from importlib import metadata

    for name, distribution in (("numba", "numba"), ("jax", "jax"), ("jax_md", "jax-md")):
        try:
            info[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            pass
    return info


def machine_label(info: dict) -> str:
    cores = f"{info['cores']} cores"
    return f"{info['gpu']}, {info['cpu']} ({cores})" if info.get("gpu") else f"{info['cpu']} ({cores})"


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _marked(marker: str) -> re.Pattern:
    return re.compile(rf"(<!-- {marker}:start -->\n)(.*?)(<!-- {marker}:end -->)", re.S)


def marked_text(page: Path, marker: str) -> str | None:
    """The text between <!-- marker:start --> and <!-- marker:end --> on a page (None without the markers)."""
    found = _marked(marker).search(Path(page).read_text(encoding="utf-8"))
    return found.group(2) if found else None


def update_page(page: Path, marker: str, markdown: str) -> bool:
    """Replace the text between <!-- marker:start --> and <!-- marker:end --> on a page (a Markdown file of the
    documentation, for example PERFORMANCE_PAGE); False, and nothing written, when the page lacks the markers."""
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    pattern = _marked(marker)
    if not pattern.search(text):
        return False
    page.write_text(pattern.sub(lambda m: m.group(1) + markdown.rstrip() + "\n" + m.group(3), text), encoding="utf-8")
    return True
