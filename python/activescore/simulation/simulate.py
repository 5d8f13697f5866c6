"""``simulate``: the front door to every backend, with frame sinks that resume, progress and blow-up reports."""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validate as check
from .. import backends
from ..backends.spec import RunSpec
from ..io.frames import FrameHeader, FrameSink, MemorySink, SavedFrames
from ..io.gsd import GSDSink
from ..io.progress import progress_bar
from ..systems import ParticleSystem, check_system
from . import initial
from .memory import check_memory, simulation_bytes
from .trajectory import State, Trajectory

# Particle-steps per call into a backend between progress updates (calls are cheap on the CPU; on the GPU each
# call ends in a synchronisation, so its calls are made much longer).
_PROGRESS_GRAIN = {"cuda": 500_000_000}
_DEFAULT_PROGRESS_GRAIN = 4_000_000


class SimulationError(RuntimeError):
    """A run blew up: a non-finite state, or (interacting particles) a particle moving more than half the
    interaction range in one step, where the explicit step can pass through a contact without resolving it.

    ``step`` is the global step that failed; ``trajectory`` holds every frame saved before it (also on disk when
    the run streamed to a file), and its ``final_state`` is the last good state."""

    def __init__(self, message: str, step: int, trajectory: Trajectory):
        super().__init__(message)
        self.step = step
        self.trajectory = trajectory


def _initial_state(system, init, seed: int):
    """(x, q, step) to start from."""
    n = system.n_particles
    if isinstance(init, State):
        if type(init.system) is not type(system) or init.system.n_particles != n:
            raise ValueError(
                f"init: the saved state is a {init.system.model.upper()} state of "
                f"{init.system.n_particles} particles, the system a {system.model.upper()} of {n}"
            )
        x = check.array("init.x", init.x, (n, 2))
        q = check.array("init.q", init.q, (n, system.propulsion_components))
        return x, q, int(init.step)
    if not isinstance(init, str) or init not in ("uniform", "cluster"):
        what = repr(init) if isinstance(init, str) else f"a {type(init).__name__}"
        raise ValueError(f"init must be 'uniform', 'cluster' or a State (e.g. a trajectory's final_state), got {what}")
    z = initial.draw(system, seed)
    x = initial.uniform_positions(system, z) if init == "uniform" else initial.cluster_positions(system)
    return x, initial.propulsion(system, z), 0


def as_sink(out) -> FrameSink:
    """The frame sink that ``out`` names: a sink itself, or a path (a GSD file)."""
    if isinstance(out, FrameSink):
        return out
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        if path.is_dir() or path.name in ("", ".", ".."):
            raise ValueError(
                f"out: {str(out)!r} is a folder; give the name of a .gsd file to write, e.g. {'run.gsd'!r}"
            )
        if not path.parent.is_dir():
            raise ValueError(f"out: {str(out)!r}: the folder {str(path.parent)!r} does not exist (create it first)")
        return GSDSink(path)
    raise ValueError(f"out must be a path (a .gsd file) or a frame sink (GSDSink, ShardSink), got {type(out).__name__}")


def _trajectory(system, memory: MemorySink | None, header: FrameHeader, final_state: State) -> Trajectory:
    n, c = system.n_particles, system.propulsion_components
    if memory is None or not memory.x:
        x, q, step = np.empty((0, n, 2)), np.empty((0, n, c)), np.zeros(0, dtype=np.int64)
    else:
        x, q, step = memory.read()
    return Trajectory(system, x, q, step, header.dt, header.seed, final_state, header.backend)


def _label(sink) -> str:
    """How messages name a sink: its file or folder."""
    return str(getattr(sink, "path", repr(sink)))


def _resume_point(sinks, saved: list, header: FrameHeader, log) -> SavedFrames | None:
    """The frames the run continues from: what the resumed sinks hold (they must agree); sinks starting afresh
    that can take earlier frames (memory) are given them."""
    held = [(sink, s) for sink, s in zip(sinks, saved, strict=True) if s is not None]
    if not held:
        return None
    source, point = held[0]
    where = _label(source)
    for sink, s in held[1:]:
        if (s.n_frames, s.step) != (point.n_frames, point.step):
            raise ValueError(
                f"out: {where} and {_label(sink)} hold different frames ({point.n_frames} and "
                f"{s.n_frames}); resume them separately"
            )
    if point.n_frames > header.n_frames:
        raise ValueError(
            f"out: {where} holds {point.n_frames} frames, more than the {header.n_frames} this run "
            "saves; raise n_steps or choose another output"
        )
    expected = header.step_of(point.n_frames - 1)
    if point.step != expected:
        raise ValueError(
            f"out: {where} holds frames up to step {point.step}, but frame {point.n_frames - 1} of "
            f"this run is at step {expected} (other burn_in, save_every or init?)"
        )
    for sink, s in zip(sinks, saved, strict=True):
        if s is None:
            if not hasattr(sink, "extend"):
                raise ValueError(f"out: {where} holds frames that {_label(sink)} does not; resume them separately")
            sink.extend(*source.read())
    if log is not None:
        held_frames = "frame 0" if point.n_frames == 1 else f"frames 0-{point.n_frames - 1}"
        log(
            f"resuming {where}: {held_frames} on disk (up to step {point.step}), "
            f"{header.n_frames - point.n_frames} to go"
        )
    return point


@dataclass(frozen=True)
class _Settings:
    """The checked arguments of a run (``save_every`` and ``seed`` filled in, ``backend`` resolved)."""

    system: ParticleSystem
    n_steps: int
    dt: float
    seed: int
    save_every: int
    burn_in: int
    dtype: str
    n_threads: int
    backend: str


def _check_settings(
    system, n_steps, dt, seed, save_every, burn_in, init, dtype, n_threads, backend, n_memory_sinks, stacklevel
) -> _Settings:
    """Check :func:`simulate_into`'s arguments, warn of unsaved last steps (``stacklevel``: the user's call, as
    :func:`simulate_into` counts it) and refuse a run that would not fit in memory."""
    system = check_system(system)
    n_steps = check.integer("n_steps", n_steps, low=0)
    dt = check.real("dt", dt, low=0.0, low_open=True)
    burn_in = check.integer("burn_in", burn_in, low=0)
    save_every_given = save_every is not None
    save_every = max(1, n_steps // 100) if save_every is None else check.integer("save_every", save_every, low=1)
    dtype = check.choice("dtype", dtype, {"float64", "float32"})
    n_threads = check.integer("n_threads", n_threads, low=0)
    if seed is None:
        seed = init.seed if isinstance(init, State) else secrets.randbits(63)
    seed = check.integer("seed", seed, low=0, high=2**64 - 1)
    if system.trap * dt >= 2.0:  # the explicit trap step x <- (1 - A dt) x diverges from A dt = 2 on
        raise ValueError(
            f"dt: the explicit step is unstable in the trap when trap·dt >= 2 (trap = {system.trap:g}, "
            f"dt = {dt:g}); use dt < {2.0 / system.trap:g}"
        )
    if save_every_given and n_steps % save_every:
        warnings.warn(
            f"simulate: n_steps={n_steps} is not a multiple of save_every={save_every}: the last "
            f"{n_steps % save_every} steps are run (final_state holds them) but saved in no frame",
            stacklevel=stacklevel + 1,
        )
    frames_in_memory = (n_steps // save_every + 1) * n_memory_sinks
    check_memory(
        simulation_bytes(system.n_particles, system.propulsion_components, frames_in_memory, dtype),
        f"a simulation of {system.n_particles} particles"
        + (f" keeping {frames_in_memory} frames in memory" if frames_in_memory else ""),
        "simulate fewer particles"
        + (", or save fewer frames (a larger save_every, or out=)" if frames_in_memory else ""),
    )
    backend = backends.resolve(backend)
    return _Settings(system, n_steps, dt, seed, save_every, burn_in, dtype, n_threads, backend)


def _header(run: _Settings, init, step0: int) -> FrameHeader:
    """The header every sink of the run records (and checks a resumed output against)."""
    return FrameHeader(
        system=json.loads(json.dumps(run.system.to_dict())),
        dt=run.dt,
        seed=run.seed,
        burn_in=run.burn_in,
        save_every=run.save_every,
        n_frames=run.n_steps // run.save_every + 1,
        first_step=step0,
        init=str(init),
        dtype=run.dtype,
        backend=run.backend,
    )


class _Stepper:
    """A backend's simulator driven in progress-sized calls, handing saved frames to the sinks."""

    def __init__(self, run: _Settings, header: FrameHeader, targets: list[FrameSink], x0, q0, step0: int):
        self.run, self.header, self.targets, self.step0 = run, header, targets, step0
        self.memory = next((sink for sink in targets if isinstance(sink, MemorySink)), None)
        self.sim = backends.get(run.backend).make_simulator(
            run.system.spec(),
            RunSpec(run.dt, run.seed, step0, run.n_threads),
            run.dtype == "float64",
            x0,
            q0,
            run.system.radius,
        )
        self.grain = max(1, _PROGRESS_GRAIN.get(run.backend, _DEFAULT_PROGRESS_GRAIN) // run.system.n_particles)

    def state(self) -> State:
        """The simulator's current state, in float64."""
        x, q = self.sim.read_state()
        run = self.run
        return State(run.system, np.asarray(x, np.float64), np.asarray(q, np.float64), self.sim.step, run.seed, run.dt)

    def advance(self, n: int, bar) -> None:
        """Take ``n`` steps; raise :class:`SimulationError` (with the frames saved so far) on a blow-up."""
        while n > 0:
            chunk = min(n, self.grain)
            done = self.sim.advance(chunk)
            bar.update(done)
            if done < chunk:
                last_good = self.state()
                trajectory = _trajectory(self.run.system, self.memory, self.header, last_good)
                raise SimulationError(self.sim.error, self.sim.step, trajectory)
            n -= chunk

    def save(self) -> None:
        """Hand the current state to every sink as a frame."""
        x, q = self.sim.read_state()
        x, q = np.array(x), np.array(q)
        for sink in self.targets:
            sink.append(x, q, self.sim.step)


def _run_frames(stepper: _Stepper, point: SavedFrames | None, progress: bool | None, desc: str | None) -> None:
    """Step through the burn-in (unless resuming) and every frame still to save, then the unsaved last steps."""
    run, header = stepper.run, stepper.header
    total = run.burn_in + run.n_steps
    show = progress if progress is not None else total * run.system.n_particles >= 5e7
    done_steps = stepper.step0 - header.first_step
    with progress_bar(
        show, total, initial=done_steps, unit="step", desc=desc or f"simulate N={run.system.n_particles}"
    ) as bar:
        if point is None:
            stepper.advance(run.burn_in, bar)
            stepper.save()
        for _ in range(header.n_frames - (1 if point is None else point.n_frames)):
            stepper.advance(run.save_every, bar)
            stepper.save()
        stepper.advance(run.n_steps % run.save_every, bar)


def simulate_into(
    sinks: Sequence[FrameSink | str | os.PathLike],
    system: ParticleSystem,
    n_steps: int,
    dt: float,
    *,
    seed: int | None = None,
    save_every: int | None = None,
    burn_in: int = 0,
    init="uniform",
    backend: str = "auto",
    dtype: str = "float64",
    progress: bool | None = None,
    n_threads: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    desc: str | None = None,
    log: Callable[[str], None] | None = None,
    _caller_depth: int = 0,
) -> State:
    """Run :func:`simulate` and hand every saved frame to each of ``sinks``, without keeping them in memory.

    Parameters
    ----------
    sinks
        Where the frames go (:mod:`activescore.io.frames`): :class:`~activescore.io.frames.MemorySink`,
        :class:`~activescore.io.gsd.GSDSink` (or a path, a GSD file), :class:`~activescore.io.dataset.ShardSink`.
    system, n_steps, dt, seed, save_every, burn_in, init, backend, dtype, progress, n_threads
        As for :func:`simulate`.
    resume
        Sinks on disk that hold frames of this same run (system, dt, seed, burn-in, spacing, init, dtype) keep
        them, and the run continues after the last one, bit for bit as the unbroken run.
    overwrite
        Sinks on disk holding anything start afresh. With neither flag, an existing output is an error.
    desc
        Label of the progress bar.
    log
        Called with one line saying where a resumed run continues.

    Returns
    -------
    State
        The state after the last step (x (N, 2), q (N, c)), to continue from.
    """
    run = _check_settings(
        system,
        n_steps,
        dt,
        seed,
        save_every,
        burn_in,
        init,
        dtype,
        n_threads,
        backend,
        n_memory_sinks=sum(isinstance(sink, MemorySink) for sink in sinks),
        stacklevel=2 + _caller_depth,  # the user's call (through simulate: one level up)
    )
    if resume and overwrite:
        raise ValueError("resume and overwrite: pass at most one (resume continues an output, overwrite replaces it)")
    targets = [as_sink(sink) for sink in sinks]

    x0, q0, step0 = _initial_state(run.system, init, run.seed)
    header = _header(run, init, step0)
    opened = []
    try:
        saved = []
        for sink in targets:
            saved.append(sink.open(header, resume=resume, overwrite=overwrite))
            opened.append(sink)
        point = _resume_point(targets, saved, header, log)
        if point is not None:
            x0, q0, step0 = point.x, point.q, point.step
        stepper = _Stepper(run, header, targets, x0, q0, step0)
        _run_frames(stepper, point, progress, desc)
        return stepper.state()
    finally:
        for sink in opened:
            sink.close()


def simulate(
    system,
    n_steps: int,
    dt: float,
    *,
    seed: int | None = None,
    save_every: int | None = None,
    burn_in: int = 0,
    init="uniform",
    backend: str = "auto",
    dtype: str = "float64",
    progress: bool | None = None,
    out=None,
    overwrite: bool = False,
    resume: bool = False,
    n_threads: int = 0,
) -> Trajectory:
    """Simulate ``system`` for ``burn_in + n_steps`` steps of size ``dt`` and return the saved frames.

    Frames are saved after the burn-in and then every ``save_every`` steps (default: about 100 frames).
    ``seed`` fixes the trajectory on every backend and thread count (default: the seed of ``init`` when it is a
    saved :class:`State`, else a fresh random seed, recorded in the result). ``init`` is ``"uniform"``,
    ``"cluster"`` (a dense disk, a head start for MIPS) or a :class:`State` such as ``traj.final_state``, from
    which the run continues exactly as an unbroken one would. ``backend``: ``"auto"`` (fastest available),
    ``"cpp"``, ``"cuda"`` or ``"numba"``.

    ``out``: a ``.gsd`` path (or a frame sink) to stream frames to as they are saved. An existing file is
    replaced only with ``overwrite=True``; with ``resume=True`` the run continues the frames it holds (a run of
    the same system, dt, seed, burn-in and spacing, cut short) and the result holds them all.
    Raises :class:`SimulationError` on a blow-up, keeping what was saved.
    """
    memory = MemorySink()
    sinks: list[FrameSink | str | os.PathLike] = [memory] + ([] if out is None else [out])
    final = simulate_into(
        sinks,
        system,
        n_steps,
        dt,
        seed=seed,
        save_every=save_every,
        burn_in=burn_in,
        init=init,
        backend=backend,
        dtype=dtype,
        progress=progress,
        n_threads=n_threads,
        resume=resume,
        overwrite=overwrite,
        _caller_depth=1,
    )
    return _trajectory(final.system, memory, memory.header, final)
