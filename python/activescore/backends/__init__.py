"""The compute backends behind one interface: the compiled core on the CPU ("cpp") and on a GPU ("cuda"), and
the Numba fallback ("numba").

A :class:`Backend` makes simulators (``advance(n) -> steps done``, ``step``, ``error``, ``read_state() -> (x, q)``)
and evaluates the observables of one configuration (``forces``, ``drift_divergence``) and the k nearest
neighbours (``knn``). All of them consume the same :class:`~.spec.SystemSpec` and the same random stream, so a
seed gives the same trajectory on each.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .spec import RunSpec, SystemSpec

__all__ = ["BACKENDS", "Backend", "RunSpec", "SystemSpec", "get", "is_available", "resolve"]


@functools.cache
def _core():
    try:
        from .. import _core as core
    except ImportError:
        return None
    return core


def _core_spec(spec: SystemSpec):
    """The C++ SystemSpec of ``spec``, field for field; the model crosses as its index in ``_core.models`` and
    the C++ counts the propulsion components from the model's policy itself."""
    core = _core()
    s = core.SystemSpec()
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        if item.name == "model":
            s.model = core.models.index(value)
        elif item.name != "propulsion_components":
            setattr(s, item.name, value)
    return s


def _core_run(run: RunSpec):
    r = _core().RunSpec()
    r.dt, r.seed, r.step, r.n_threads = run.dt, run.seed, run.step, run.n_threads
    return r


class Backend:
    """What every backend provides. ``name`` is what users pass as ``backend=``."""

    name = ""

    def unavailable_reason(self) -> str | None:
        """None when the backend can run here, else why not."""
        raise NotImplementedError

    def make_simulator(self, spec: SystemSpec, run: RunSpec, double_precision: bool, x, q, radius):
        raise NotImplementedError

    def forces(self, spec: SystemSpec, x, radius, n_threads: int = 0) -> np.ndarray:
        raise NotImplementedError

    def drift_divergence(self, spec: SystemSpec, x, radius, n_threads: int = 0) -> np.ndarray:
        raise NotImplementedError

    def knn(self, x, box_length: float, k: int, n_threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class _CoreSimulator:
    """The compiled simulator with the backend interface."""

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


class CppBackend(Backend):
    """The compiled core on the CPU (C++17 + OpenMP)."""

    name = "cpp"
    _device = "cpu"

    def unavailable_reason(self) -> str | None:
        return None if _core() is not None else "the compiled extension activescore._core did not import"

    def make_simulator(self, spec, run, double_precision, x, q, radius):
        return _CoreSimulator(self._device, spec, run, double_precision, x, q, radius)

    def forces(self, spec, x, radius, n_threads=0):
        return _core().forces(_core_spec(spec), x, radius, n_threads)

    def drift_divergence(self, spec, x, radius, n_threads=0):
        return _core().drift_divergence(_core_spec(spec), x, radius, n_threads)

    def knn(self, x, box_length, k, n_threads=0):
        return _core().knn(x, float(box_length), int(k), int(n_threads))


class CudaBackend(CppBackend):
    """The compiled core on an NVIDIA GPU; k nearest neighbours stay on the CPU."""

    name = "cuda"
    _device = "cuda"

    def unavailable_reason(self) -> str | None:
        core = _core()
        if core is None or not core.built_with_cuda:
            return "activescore was built without CUDA or no GPU is visible"
        return None if core.cuda_available() else "no CUDA GPU is visible"

    def forces(self, spec, x, radius, n_threads=0):
        return _core().cuda_forces(_core_spec(spec), x, radius, n_threads)

    def drift_divergence(self, spec, x, radius, n_threads=0):
        return _core().cuda_drift_divergence(_core_spec(spec), x, radius, n_threads)


class NumbaBackend(Backend):
    """The pure-Python fallback, compiled by Numba: the same numbers as the C++ CPU core."""

    name = "numba"

    def unavailable_reason(self) -> str | None:
        try:
            import numba  # noqa: F401
        except ImportError:
            return "numba is not installed"
        return None

    def make_simulator(self, spec, run, double_precision, x, q, radius):
        from . import numba_backend

        return numba_backend.NumbaSimulator(spec, run, double_precision, x, q, radius)

    def forces(self, spec, x, radius, n_threads=0):
        from . import numba_backend

        return numba_backend.forces(spec, x, radius, n_threads)

    def drift_divergence(self, spec, x, radius, n_threads=0):
        from . import numba_backend

        return numba_backend.drift_divergence(spec, x, radius, n_threads)

    def knn(self, x, box_length, k, n_threads=0):
        from . import numba_knn

        return numba_knn.knn(x, float(box_length), int(k), int(n_threads))


# Numba compiles on first use: its modules are imported only when a Numba backend is asked for.
BACKENDS: dict[str, Backend] = {b.name: b for b in (CudaBackend(), CppBackend(), NumbaBackend())}


def is_available(name: str) -> bool:
    backend = BACKENDS.get(name)
    return backend is not None and backend.unavailable_reason() is None


def resolve(name: str) -> str:
    """'auto' becomes the fastest available backend (cuda, then cpp, then numba); others are checked."""
    if name == "auto":
        for candidate in BACKENDS:
            if is_available(candidate):
                return candidate
        raise RuntimeError("no backend available: the compiled core is missing and numba is not installed")
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {['auto', *BACKENDS]}, got {name!r}")
    why = BACKENDS[name].unavailable_reason()
    if why is not None:
        raise RuntimeError(f"backend {name!r} is not available: {why}")
    return name


def get(name: str = "auto") -> Backend:
    """The :class:`Backend` called ``name`` ('auto': the fastest available), checked to run here."""
    return BACKENDS[resolve(name)]


def get_cpu(name: str = "auto") -> Backend:
    """A CPU backend: ``name`` unless it is 'auto' or 'cuda', else the compiled core, else Numba."""
    return get(name) if name not in ("auto", "cuda") else get("cpp" if is_available("cpp") else "numba")
