"""Backend registry: the compiled core ("cpp", "cuda") and the Numba fallback ("numba") behind one interface.

A backend simulator has ``advance(n) -> steps done``, ``step``, ``error`` and ``read_state() -> (x, q)``;
a backend also provides ``forces`` and ``drift_divergence`` of a configuration.
"""

from __future__ import annotations

import dataclasses
import functools

from .spec import RunSpec, SystemSpec

BACKENDS = ("cpp", "cuda", "numba")


@functools.cache
def _core():
    try:
        from .. import _core as core
    except ImportError:
        return None
    return core


def _numba():
    from . import numba_backend

    return numba_backend


def is_available(name: str) -> bool:
    core = _core()
    if name == "cpp":
        return core is not None
    if name == "cuda":
        return core is not None and bool(core.cuda_available())
    if name == "numba":
        try:
            import numba  # noqa: F401
        except ImportError:
            return False
        return True
    return False


def resolve(name: str) -> str:
    """'auto' becomes the fastest available backend (cuda, then cpp, then numba); others are checked."""
    if name == "auto":
        for candidate in ("cuda", "cpp", "numba"):
            if is_available(candidate):
                return candidate
        raise RuntimeError("no backend available: the compiled core is missing and numba is not installed")
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {['auto', *BACKENDS]}, got {name!r}")
    if not is_available(name):
        why = {
            "cuda": "activescore was built without CUDA or no GPU is visible"
            if _core() is None or not _core().built_with_cuda else "no CUDA GPU is visible",
            "cpp": "the compiled extension activescore._core did not import",
            "numba": "numba is not installed",
        }[name]
        raise RuntimeError(f"backend {name!r} is not available: {why}")
    return name


def _core_spec(spec: SystemSpec):
    core = _core()
    s = core.SystemSpec()
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        setattr(s, item.name, core.Model.__members__[value.upper()] if item.name == "model" else value)
    return s


def _core_run(run: RunSpec):
    r = _core().RunSpec()
    r.dt, r.seed, r.step, r.n_threads = run.dt, run.seed, run.step, run.n_threads
    return r


class _CoreSimulator:
    """Adapter giving the compiled simulator the backend interface."""

    def __init__(self, device: str, spec: SystemSpec, run: RunSpec, double_precision: bool, x, q, radius):
        self._q_components = spec.propulsion_components
        self._sim = _core().make_simulator(_core_spec(spec), _core_run(run), double_precision, x, q, radius, device)

    def advance(self, n_steps: int) -> int:
        return self._sim.advance(n_steps)

    @property
    def step(self) -> int:
        return self._sim.step

    @property
    def error(self) -> str:
        return self._sim.error

    def read_state(self):
        return _core().read_state(self._sim, self._q_components)


def make_simulator(backend: str, spec: SystemSpec, run: RunSpec, double_precision: bool, x, q, radius):
    if backend == "numba":
        return _numba().NumbaSimulator(spec, run, double_precision, x, q, radius)
    return _CoreSimulator("cuda" if backend == "cuda" else "cpu", spec, run, double_precision, x, q, radius)


def forces(backend: str, spec: SystemSpec, x, radius, n_threads: int = 0):
    if backend == "numba":
        return _numba().forces(spec, x, radius, n_threads)
    if backend == "cuda":
        return _core().cuda_forces(_core_spec(spec), x, radius, n_threads)
    return _core().forces(_core_spec(spec), x, radius, n_threads)


def drift_divergence(backend: str, spec: SystemSpec, x, radius, n_threads: int = 0):
    if backend == "numba":
        return _numba().drift_divergence(spec, x, radius, n_threads)
    if backend == "cuda":
        return _core().cuda_drift_divergence(_core_spec(spec), x, radius, n_threads)
    return _core().drift_divergence(_core_spec(spec), x, radius, n_threads)
