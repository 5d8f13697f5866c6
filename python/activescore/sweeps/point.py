"""One point of a sweep, run where a Dask worker (or the calling process) puts it.

The point simulates in segments to its burn-in and then through its measured frames, checkpointing as it goes in
its own folder (``points/<id>/``): the burn-in's latest state in ``checkpoint.gsd`` (replaced atomically), the
measured frames streamed to ``frames.gsd`` (through ``frames.gsd.partial`` while running). A point killed at any
moment continues from its last checkpoint when the sweep is rerun and, the random stream being counter-based,
ends with the same numbers as an unbroken run. Its result, a row of the sweep's table, is written atomically to
``result.json`` last; a failing point (a blow-up, a bad parameter) writes its error there instead.
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..estimation import estimate, learning_free_epr
from ..estimation.statistics import mean_stderr
from ..io.files import atomic_write
from ..io.gsd import GSDWriter
from ..simulation.simulate import SimulationError, simulate
from ..simulation.trajectory import State, Trajectory, load_state, load_trajectory
from . import structure
from .grid import Measures, Point, finite_or_none

RESULT = "result.json"
RUNNING = "running.json"
CHECKPOINT = "checkpoint.gsd"
FRAMES = "frames.gsd"
FINAL = "final.gsd"
KEEP = ("final", "frames", "none")


def read_result(folder: Path) -> dict | None:
    path = Path(folder) / RESULT
    if not path.exists():
        return None
    return json.loads(path.read_text())


def stationarity_z(series: np.ndarray) -> float:
    """(mean of the second half − mean of the first half) / its standard error: |z| ≳ 3 says the measured frames
    still drift, i.e. the burn-in was too short."""
    half = len(series) // 2
    if half < 2:
        return math.nan
    a, sa = mean_stderr(series[:half])
    b, sb = mean_stderr(series[half:])
    se = math.hypot(sa, sb)
    return (b - a) / se if se > 0 else (0.0 if a == b else math.copysign(math.inf, b - a))


@functools.lru_cache(maxsize=4)
def _load_score(path: str):
    from ..learning import Score

    return Score.load(path)


def _save_state(path: Path, state: State, system) -> None:
    """One-frame GSD of ``state`` (the writer publishes it by renaming at close: atomic)."""
    with GSDWriter(path, system, dt=state.dt, seed=state.seed) as writer:
        writer.append(state.x, state.q, state.step)


class _Run:
    """The segments of one point's simulation, resumable from its folder."""

    def __init__(self, point: Point, system, folder: Path, n_threads: int, checkpoint_every: int):
        self.point, self.system, self.folder = point, system, folder
        sim = point.simulation
        self.dt, self.seed = sim["dt"], point.seed
        self.burn_in, self.n_steps, self.save_every = sim["burn_in"], sim["n_steps"], sim["save_every"]
        self.kw = dict(backend=sim["backend"], dtype=sim["dtype"], n_threads=n_threads, progress=False)
        self.checkpoint_every = checkpoint_every or self.save_every
        self.resumed_from = 0  # the step a rerun continued from (0: started afresh)

    def _advance(self, state: State | None, n: int) -> State:
        init = state if state is not None else self.point.simulation["init"]
        traj = simulate(self.system, n, self.dt, seed=self.seed, init=init, save_every=max(1, n), **self.kw)
        assert traj.final_state is not None  # simulate always ends with its final state
        return traj.final_state

    def trajectory(self) -> Trajectory:
        frames_path = self.folder / FRAMES
        partial = frames_path.with_name(FRAMES + ".partial")
        if frames_path.exists() and not partial.exists():
            frames_path.rename(partial)  # a writer closed by an exception published its frames: continue them
        state: State | None = None
        frames = 0
        if partial.exists():
            try:
                done = load_trajectory(partial)
                state, frames = done.state(-1), len(done)
                self.resumed_from = state.step
            except (ValueError, OSError, KeyError, RuntimeError):
                partial.unlink()  # killed before its first frame was complete: start the frames again
        if state is None:
            checkpoint = self.folder / CHECKPOINT
            state = load_state(checkpoint) if checkpoint.exists() else None
            if state is not None and state.step > self.burn_in:
                state = None  # not from this plan: start again
            self.resumed_from = state.step if state is not None else 0
            while (state.step if state is not None else 0) < self.burn_in:
                start = state.step if state is not None else 0
                state = self._advance(state, min(self.checkpoint_every, self.burn_in - start))
                if state.step < self.burn_in:
                    _save_state(checkpoint, state, self.system)
            if state is None:
                state = self._advance(None, 0)
        total = self.n_steps // self.save_every + 1
        with GSDWriter(
            self.folder / FRAMES, self.system, dt=self.dt, seed=self.seed, backend=self.kw["backend"], append=True
        ) as writer:
            if frames == 0:
                writer.append(state.x, state.q, state.step)
                frames = 1
            while frames < total:
                state = self._advance(state, self.save_every)
                writer.append(state.x, state.q, state.step)
                frames += 1
        (self.folder / CHECKPOINT).unlink(missing_ok=True)
        return load_trajectory(self.folder / FRAMES)


def parameter_columns(point: Point, system=None) -> dict:
    """Every parameter of the point as a column (system, simulation, seed); with its system, the packing fraction
    and box length it actually has."""
    row = {"point_id": point.point_id, "seed": point.seed, **point.system}
    if system is not None:
        row.update(packing_fraction=system.packing_fraction, box_length=system.box_length)
    row.update({k: v for k, v in point.simulation.items() if k not in ("seed", "n_threads")})
    row.update(point.values)
    return row


def _transfer(row: dict, score, traj: Trajectory, n_threads: int) -> None:
    try:
        if isinstance(score, (str, Path)):
            score = _load_score(str(score))
        result = estimate(score, traj, transfer=True, keep_fields=False, progress=False, n_threads=n_threads)
    except ValueError as err:
        row["transfer_note"] = f"not available: {err}"
        return
    per = result.epr_per_particle["quadratic"]
    row.update(
        transfer_epr_per_particle=finite_or_none(per.value),
        transfer_epr_per_particle_stderr=finite_or_none(per.stderr),
        transfer_form="quadratic",
        transfer_sigma=finite_or_none(result.sigma) if result.sigma is not None else None,
        transfer_ratio=finite_or_none(result.ratio["quadratic"].value),
        transfer_ratio_stderr=finite_or_none(result.ratio["quadratic"].stderr),
        transfer_note="",
    )
    ceiling = result.finite_dt
    if ceiling is not None:  # ε = 0: the score's share of what the time step allows, and the corrected EPR
        of_ceiling, corrected = ceiling.of_ceiling["quadratic"], ceiling.corrected["quadratic"]
        row.update(
            transfer_of_ceiling=finite_or_none(of_ceiling.value),
            transfer_of_ceiling_stderr=finite_or_none(of_ceiling.stderr),
            transfer_corrected_per_particle=finite_or_none(corrected.value),
            transfer_corrected_per_particle_stderr=finite_or_none(corrected.stderr),
        )


def measure(point: Point, system, traj: Trajectory, measures: Measures, n_threads: int) -> tuple[dict, list]:
    """The numbers of one point from its measured frames: learning-free EPR, structure, optional transfer EPR."""
    row: dict[str, Any] = {}
    try:
        identity = learning_free_epr(system, traj, progress=False, n_threads=n_threads)
    except ValueError as err:  # a model the estimators do not cover
        row["epr_note"] = f"learning-free EPR not available: {err}"
    else:
        row.update(
            epr=identity.total.value,
            epr_stderr=finite_or_none(identity.total.stderr),
            epr_per_particle=identity.per_particle.value,
            epr_per_particle_stderr=finite_or_none(identity.per_particle.stderr),
            epr_form="identity",
            epr_n_batches=identity.n_batches,
            stationarity_z=finite_or_none(stationarity_z(identity.per_snapshot)),
            epr_note="",
        )
        if identity.finite_dt is not None:  # ε = 0: what a perfect score of these frames would reach
            ceiling = identity.finite_dt.ceiling
            row.update(ceiling=finite_or_none(ceiling.value), ceiling_stderr=finite_or_none(ceiling.stderr))
        work = identity.active_work_per_particle
        if work is not None:  # ε > 0: the active-work form beside the identity
            row.update(active_work_per_particle=work.value, active_work_per_particle_stderr=finite_or_none(work.stderr))
    structure.set_threads(n_threads)
    cutoff = measures.cluster_cutoff or structure.default_cluster_cutoff(system)
    largest = structure.largest_cluster_fractions(system, traj.x, cutoff)
    mean, se = mean_stderr(largest)
    radius = measures.density_radius or structure.default_density_radius(system)
    local = structure.local_packing_fractions(system, traj.x, radius)
    row.update(
        largest_cluster_fraction=mean,
        largest_cluster_fraction_stderr=finite_or_none(se),
        cluster_cutoff=cutoff,
        density_radius=radius,
        local_packing_fraction_mean=float(local.mean()),
        local_packing_fraction_std=float(local.std()),
    )
    if measures.score is not None:
        _transfer(row, measures.score, traj, n_threads)
    hist = structure.histogram(local, measures.density_edges).tolist()
    return row, hist


def run_point(
    point: Point, out: str, measures: Measures, *, n_threads: int = 1, keep: str = "final", checkpoint_every: int = 0
) -> dict:
    """Run ``point`` in ``out/points/<id>/`` (or return its finished result) and return its result record:
    ``{"row": {...}, "density_histogram": [...], "status": "done" | "failed", ...}``. Never raises for a failing
    point: the error is recorded."""
    folder = Path(out) / "points" / point.point_id
    folder.mkdir(parents=True, exist_ok=True)
    finished = read_result(folder)
    if finished is not None:
        return {**finished, "computed": False}
    start = time.time()
    atomic_write(folder / RUNNING, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": start}))
    record = {
        "point_id": point.point_id,
        "values": point.values,
        "seed": point.seed,
        "version": __version__,
        "host": socket.gethostname(),
        "n_threads": n_threads,
    }
    row = parameter_columns(point)
    try:
        system = point.make_system()
        row = parameter_columns(point, system)
        run = _Run(point, system, folder, n_threads, checkpoint_every)
        traj = run.trajectory()
        numbers, hist = measure(point, system, traj, measures, n_threads)
        row.update(numbers)
        row.update(n_frames=len(traj), resumed_from_step=run.resumed_from)
        record.update(status="done", density_histogram=hist, density_edges=list(measures.density_edges))
        if keep in ("final", "frames"):
            _save_state(folder / FINAL, traj.state(-1), system)
        if keep != "frames":
            (folder / FRAMES).unlink(missing_ok=True)
    except (SimulationError, ValueError, FloatingPointError, ArithmeticError) as err:
        # A SimulationError's message says "blow-up at step ...", a bad parameter's names the parameter.
        error = str(err) if isinstance(err, SimulationError) else f"{type(err).__name__}: {err}"
        record.update(status="failed", error=error, traceback=traceback.format_exc(limit=4))
        for name in (CHECKPOINT, FRAMES, FRAMES + ".partial"):
            (folder / name).unlink(missing_ok=True)
    row.update(status=record["status"], error=record.get("error", ""), seconds=round(time.time() - start, 3))
    record["row"] = row
    atomic_write(folder / RESULT, json.dumps(record, indent=1, default=_json_default) + "\n")
    (folder / RUNNING).unlink(missing_ok=True)
    return {**record, "computed": True}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
