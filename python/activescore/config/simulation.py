"""The ``[simulation]`` section as an object: how a system is run (:func:`activescore.simulate`'s settings).

The defaults that :func:`activescore.simulate` has are read from its signature; the ones it leaves to the caller
are the command line's: the paper's MIPS time step (:data:`activescore.systems.MIPS_DT`), a run long enough to
see clusters form at the default size, a frame every 1000 steps, and seed 1 (the API draws a fresh seed; a
configuration file reproduces its run).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

from .. import _validate as check
from ..backends import BACKENDS
from ..simulation.simulate import simulate
from ..systems import MIPS_DT

_SIMULATE = {name: p.default for name, p in inspect.signature(simulate).parameters.items()}

#: Values of ``simulation.init`` (a saved State is the API's alone), ``simulation.backend`` (``"auto"``: the
#: fastest available, then the registry :data:`activescore.backends.BACKENDS`) and ``simulation.dtype``.
INITS = ("uniform", "cluster")
BACKEND_NAMES = ("auto", *BACKENDS)
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class SimulationConfig:
    """One run's settings: ``dt``, ``burn_in`` steps, then ``n_steps`` saving a frame every ``save_every``, from
    ``seed`` and the ``init`` state, on ``backend`` in ``dtype`` with ``n_threads`` (0: all cores).

    Built from a ``[simulation]`` section (:meth:`from_section`), every value checked as the API checks it, with
    messages naming the key (``simulation.dt must be in (0, inf), got -1.0``).
    """

    dt: float = MIPS_DT
    n_steps: int = 20_000
    burn_in: int = _SIMULATE["burn_in"]
    save_every: int = 1000
    seed: int = 1
    init: str = _SIMULATE["init"]
    backend: str = _SIMULATE["backend"]
    dtype: str = _SIMULATE["dtype"]
    n_threads: int = _SIMULATE["n_threads"]

    def __post_init__(self):
        check.real("simulation.dt", self.dt, low=0.0, low_open=True)
        check.integer("simulation.n_steps", self.n_steps, low=0)
        check.integer("simulation.burn_in", self.burn_in, low=0)
        check.integer("simulation.save_every", self.save_every, low=1)
        check.integer("simulation.seed", self.seed, low=0, high=2**64 - 1)
        check.choice("simulation.init", self.init, set(INITS))
        check.choice("simulation.backend", self.backend, set(BACKEND_NAMES))
        check.choice("simulation.dtype", self.dtype, set(DTYPES))
        check.integer("simulation.n_threads", self.n_threads, low=0)

    @classmethod
    def from_section(cls, section: dict) -> SimulationConfig:
        """The settings of a resolved ``[simulation]`` section."""
        return cls(**section)

    def to_section(self) -> dict:
        """The ``[simulation]`` section of these settings."""
        return dataclasses.asdict(self)

    @property
    def frames(self) -> int:
        """Frames a run saves: the state after the burn-in, then one every ``save_every`` steps."""
        return self.n_steps // self.save_every + 1

    def keywords(self) -> dict:
        """The keywords of :func:`activescore.simulate` (and ``simulate_into``) besides the system, ``n_steps`` and
        ``dt``."""
        return dict(
            seed=self.seed,
            save_every=self.save_every,
            burn_in=self.burn_in,
            init=self.init,
            backend=self.backend,
            dtype=self.dtype,
            n_threads=self.n_threads,
        )
