"""Two versions of the package timed in turn, for speed-ups measured on a shared, noisy machine.

Each version runs in its own worker process (the benchmark script started with ``--worker`` and the version's
``python/`` on ``PYTHONPATH``). The workers are asked in turn, alternating which goes first, to time the same case,
so each round's ratio is taken under the same load; a speed-up is the median of the rounds' ratios.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def short_revision(revision: str) -> str:
    return subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    ).stdout.strip()


def uncommitted() -> bool:
    """Whether the checkout has changes to tracked files."""
    status = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], capture_output=True)
    return bool(status.stdout.strip())


def unpack(revision: str, directory: str, paths: list[str]) -> str:
    """``paths`` of git revision ``revision`` unpacked under ``directory``; returns ``directory``."""
    archive = subprocess.run(["git", "-C", REPO, "archive", revision, *paths], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def copy_worktree(directory: str, paths: list[str]) -> str:
    """``paths`` of this checkout as they are on disk (uncommitted changes included, build outputs and caches left
    out) copied under ``directory``; returns ``directory``, as :func:`unpack` does for a revision."""
    for path in paths:
        source, target = os.path.join(REPO, path), os.path.join(directory, path)
        if os.path.isdir(source):
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(source, target)
    return directory


def build_extension(source: str, build: str) -> None:
    """The compiled core of the tree at ``source`` built by its own CMakeLists (Release, CPU only: what
    ``pip install .`` builds there) and copied into ``source/python/activescore``."""
    import pybind11

    subprocess.run(
        [
            "cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DACTIVESCORE_CUDA=OFF",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPython_EXECUTABLE={sys.executable}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 1)], check=True, capture_output=True)
    for extension in glob.glob(os.path.join(build, "_core*.so")):
        shutil.copy(extension, os.path.join(source, "python", "activescore"))


def start_worker(script: str, python_path: str, cpus: set[int] | None = None):
    """``script --worker`` on the package at ``python_path``, confined to the cores ``cpus`` (None: all); it prints
    ``ready`` once set up."""
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(script), "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": python_path},
        # Pinned before Python starts, so that thread pools are sized to the cores the worker may use.
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError(f"a benchmark worker of {script} failed to start")
    return process


def ask(process, request: str) -> dict:
    """One request line to a worker; its answer is one line of JSON."""
    process.stdin.write(request + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def requests():
    """A worker's request lines until end of input."""
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def stop(workers: dict) -> None:
    for process in workers.values():
        process.stdin.close()
        process.wait()


def in_turn(workers: dict, request: str, rounds: int) -> dict:
    """``request`` answered ``rounds`` times by each of ``workers`` ({"reference": ..., "candidate": ...}), in
    turn, alternating which goes first; answers carry "wall" and "cpu" seconds. Returns every answer and the
    candidate's speed-up (reference time / candidate time) round by round, summarised by median, min and max."""
    times = {"candidate": [], "reference": []}
    for round_index in range(rounds):
        order = ("candidate", "reference") if round_index % 2 == 0 else ("reference", "candidate")
        for version in order:
            times[version].append(ask(workers[version], request))
    pairs = list(zip(times["candidate"], times["reference"], strict=True))
    summary = {}
    for clock in ("wall", "cpu"):
        ratios = [r[clock] / c[clock] for c, r in pairs]
        summary[f"speedup_{clock}"] = {"median": float(np.median(ratios)), "min": min(ratios), "max": max(ratios)}
    return {**summary, "rounds": times}
