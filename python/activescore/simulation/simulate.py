"""``simulate``: the front door to every backend, with resumable runs, progress and blow-up reports."""

from __future__ import annotations

import contextlib
import secrets

import numpy as np

from .. import _validate as check
from .. import backends
from ..systems import check_system
from ..backends.spec import RunSpec
from . import initial
from .trajectory import State, Trajectory

# Particle-steps per call into a backend between progress updates (calls are cheap on the CPU; on the GPU each
# call ends in a synchronisation, so its calls are made much longer).
_PROGRESS_GRAIN = {"cuda": 500_000_000}
_DEFAULT_PROGRESS_GRAIN = 4_000_000


class SimulationError(RuntimeError):
    """A run blew up (non-finite state or a particle jumping more than half the interaction range in one step).

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
            raise ValueError(f"init: the saved state is a {init.system.model.upper()} state of "
                             f"{init.system.n_particles} particles, the system a {system.model.upper()} of {n}")
        x = check.array("init.x", init.x, (n, 2))
        q = check.array("init.q", init.q, (n, system.propulsion_components))
        return x, q, int(init.step)
    check.choice("init", init, {"uniform", "cluster"})
    z = initial.draw(system, seed)
    x = initial.uniform_positions(system, z) if init == "uniform" else initial.cluster_positions(system)
    return x, initial.propulsion(system, z), 0


class _Recorder:
    """Collects saved frames in memory and, when asked, streams them to a GSD file."""

    def __init__(self, system, dt, seed, backend, out):
        self.system, self.dt, self.seed, self.backend = system, dt, seed, backend
        self.x, self.q, self.step = [], [], []
        self.writer = None
        if out is not None:
            from ..io.gsd import GSDWriter

            self.writer = GSDWriter(out, system, dt=dt, seed=seed, backend=backend)

    def record(self, x, q, step):
        self.x.append(x)
        self.q.append(q)
        self.step.append(step)
        if self.writer is not None:
            self.writer.append(x, q, step)

    def trajectory(self, final_state: State) -> Trajectory:
        n, c = self.system.n_particles, self.system.propulsion_components
        x = np.stack(self.x) if self.x else np.empty((0, n, 2))
        q = np.stack(self.q) if self.q else np.empty((0, n, c))
        return Trajectory(self.system, x, q, np.asarray(self.step, dtype=np.int64), self.dt, self.seed,
                          final_state, self.backend)

    def close(self):
        if self.writer is not None:
            self.writer.close()


def simulate(system, n_steps: int, dt: float, *, seed: int | None = None, save_every: int | None = None,
             burn_in: int = 0, init="uniform", backend: str = "auto", dtype: str = "float64",
             progress: bool | None = None, out=None, n_threads: int = 0) -> Trajectory:
    """Simulate ``system`` for ``burn_in + n_steps`` steps of size ``dt`` and return the saved frames.

    Frames are saved after the burn-in and then every ``save_every`` steps (default: about 100 frames).
    ``seed`` fixes the trajectory on every backend and thread count (default: the seed of ``init`` when it is a
    saved :class:`State`, else a fresh random seed, recorded in the result). ``init`` is ``"uniform"``,
    ``"cluster"`` (a dense disk, a head start for MIPS) or a :class:`State` such as ``traj.final_state``, from
    which the run continues exactly as an unbroken one would. ``backend``: ``"auto"`` (fastest available),
    ``"cpp"``, ``"cuda"`` or ``"numba"``. ``out``: a ``.gsd`` path to stream frames to as they are saved.
    Raises :class:`SimulationError` on a blow-up, keeping what was saved.
    """
    system = check_system(system)
    n_steps = check.integer("n_steps", n_steps, low=0)
    dt = check.real("dt", dt, low=0.0, low_open=True)
    burn_in = check.integer("burn_in", burn_in, low=0)
    save_every = max(1, n_steps // 100) if save_every is None else check.integer("save_every", save_every, low=1)
    dtype = check.choice("dtype", dtype, {"float64", "float32"})
    n_threads = check.integer("n_threads", n_threads, low=0)
    if seed is None:
        seed = init.seed if isinstance(init, State) else secrets.randbits(63)
    seed = check.integer("seed", seed, low=0, high=2**64 - 1)
    backend = backends.resolve(backend)

    x0, q0, step0 = _initial_state(system, init, seed)
    spec = system.spec()
    sim = backends.get(backend).make_simulator(spec, RunSpec(dt, seed, step0, n_threads), dtype == "float64", x0, q0,
                                  system.radius)
    recorder = _Recorder(system, dt, seed, backend, out)
    total = burn_in + n_steps
    show = progress if progress is not None else total * system.n_particles >= 5e7
    grain = max(1, _PROGRESS_GRAIN.get(backend, _DEFAULT_PROGRESS_GRAIN) // system.n_particles)

    def state() -> State:
        x, q = sim.read_state()
        return State(system, np.asarray(x, np.float64), np.asarray(q, np.float64), sim.step, seed, dt)

    def advance(n: int, bar) -> None:
        while n > 0:
            chunk = min(n, grain)
            done = sim.advance(chunk)
            if bar is not None:
                bar.update(done)
            if done < chunk:
                last_good = state()
                raise SimulationError(sim.error, sim.step, recorder.trajectory(last_good))
            n -= chunk

    def save() -> None:
        x, q = sim.read_state()
        recorder.record(np.array(x), np.array(q), sim.step)

    try:
        with _progress_bar(show, total, system) as bar:
            advance(burn_in, bar)
            save()
            for _ in range(n_steps // save_every):
                advance(save_every, bar)
                save()
            advance(n_steps % save_every, bar)
    finally:
        recorder.close()
    return recorder.trajectory(state())


@contextlib.contextmanager
def _progress_bar(show: bool, total: int, system):
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="step", desc=f"simulate N={system.n_particles}", dynamic_ncols=True) as bar:
        yield bar
