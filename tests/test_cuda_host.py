"""The CUDA driver's logic without a GPU: its per-thread bodies (cpp/activescore/cuda/kernels.cuh), run serially on
the host by the host compiler (cuda/host_replay.cpp, part of every build), against the CPU driver bit for bit.

The replay is the CUDA step as the GPU runs it (stable sort by cell, gather, the merged 3x3 neighbour walk, the
fused force and integration body, the blow-up control); the CPU driver is the Verlet-list path with its own cell
order, pair table and vectorised normals. Both sum each particle's pair forces in ascending original index with the
same pair maths and Philox/Box-Muller stream, so their trajectories agree exactly, at any thread count, and the
observables (summed in cell order by both) too.
"""

import numpy as np
import pytest

import activescore as a
from activescore import backends

core = backends._core()
pytestmark = pytest.mark.usefixtures("core")  # conftest: a missing core fails (unless ACTIVESCORE_NO_CORE=1)


def _components(system):
    return 2 if isinstance(system, a.AOUP) else 1


def _core_system(system):
    return backends._core_spec(system.spec())


def _core_run(dt, seed, step, n_threads=0):
    run = core.RunSpec()
    run.dt, run.seed, run.step, run.n_threads = dt, seed, step, n_threads
    return run


def _poly(seed, n, low, high):
    return np.random.default_rng(seed).uniform(low, high, n)


def _start(system, seed):
    """Uniform positions (overlapping: the first steps push hard) and stationary-like propulsion."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (system.n_particles, 2)) * system.box_length
    q = rng.normal(size=(system.n_particles, _components(system)))
    return x, q


def _cases():
    """(name, system, dt): both models and potentials, polydisperse, trapped, one cell, 3 and 4 cells a side, free."""
    yield "mips", a.mips(400, 0.5), 0.1
    yield (
        "abp_hot_harmonic",
        a.ABP(500, packing_fraction=0.5, v0=1.0, rotational_diffusion=0.1, eps=1.0, beta=None),
        0.01,
    )
    yield "abp_softplus", a.ABP(300, packing_fraction=0.4, v0=1.0, rotational_diffusion=1.0, eps=0.01), 0.01
    yield (
        "poly_harmonic",
        a.AOUP(300, packing_fraction=0.6, radius=_poly(1, 300, 0.8, 1.2), v0=0.5, gamma=1.0, eps=0.01, beta=None),
        0.01,
    )
    yield "trapped", a.AOUP(200, box_length=40.0, trap=0.1, eps=0.1, v0=0.5, gamma=0.5), 0.01
    yield "one_cell_poly", a.AOUP(12, box_length=9.0, radius=_poly(2, 12, 0.5, 1.2), v0=0.3, gamma=0.5, eps=0.01), 0.02
    yield "three_cells_abp", a.ABP(40, box_length=12.0, v0=0.5, rotational_diffusion=0.2), 0.05
    yield (
        "four_cells_poly",
        a.AOUP(60, box_length=16.5, radius=_poly(3, 60, 0.6, 1.0), v0=0.3, gamma=0.5, k=2.0, beta=None),
        0.05,
    )
    yield "free", a.AOUP(200, packing_fraction=0.3, k=0.0, v0=1.0, gamma=1.0, eps=0.1), 0.1
    yield "chiral_aoup", a.AOUP(300, packing_fraction=0.5, v0=0.5, gamma=0.5, eps=0.01, omega=1.5), 0.01
    yield "chiral_abp", a.ABP(300, packing_fraction=0.5, v0=0.5, rotational_diffusion=0.2, omega=-2.0), 0.01


CASES = list(_cases())


def _final(system, dt, x, q, make, double_precision, steps, n_threads=0, seed=2**40 + 9, step=17):
    if make == "replay":
        sim = core.make_host_replay_simulator(
            _core_system(system), _core_run(dt, seed, step), double_precision, x, q, system.radius
        )
    else:
        sim = core.make_simulator(
            _core_system(system), _core_run(dt, seed, step, n_threads), double_precision, x, q, system.radius, "cpu"
        )
    for chunk in steps:
        assert sim.advance(chunk) == chunk, sim.error
    return core.read_state(sim, _components(system))


@pytest.mark.parametrize("double_precision", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("name, system, dt", CASES, ids=[c[0] for c in CASES])
def test_replay_matches_cpu_driver_bit_for_bit(name, system, dt, double_precision):
    x, q = _start(system, seed=len(name))
    replay = _final(system, dt, x, q, "replay", double_precision, [150])
    for n_threads in (1, 2):
        cpu = _final(system, dt, x, q, "cpu", double_precision, [150], n_threads=n_threads)
        assert cpu[0].dtype == replay[0].dtype == (np.float64 if double_precision else np.float32)
        np.testing.assert_array_equal(replay[0], cpu[0])
        np.testing.assert_array_equal(replay[1], cpu[1])


def test_cpu_driver_comparison_covers_lists_and_direct_pairs():
    """The comparison above is not vacuous for the CPU driver's two neighbour searches: Verlet lists, and pairs
    straight from the cell list once lists last a single step. The MIPS case starts overlapping (hard pushes: direct)
    and settles (lists); the hot ABPs stay direct. Chunked runs switch at the same steps and match whole ones."""
    for index, direct_share in ((0, (0.05, 0.6)), (1, (0.9, 1.0))):
        _, system, dt = CASES[index]
        x, q = _start(system, seed=4)
        sim = core.make_simulator(_core_system(system), _core_run(dt, 5, 17, 2), True, x, q, system.radius, "cpu")
        assert sim.advance(150) == 150
        low, high = direct_share
        assert sim.list_builds > 0 and low <= sim.direct_steps / 150 <= high, (sim.list_builds, sim.direct_steps)
        whole = core.read_state(sim, _components(system))
        chunks = _final(system, dt, x, q, "cpu", True, [1, 23, 126], n_threads=1, seed=5)
        np.testing.assert_array_equal(chunks[0], whole[0])
        np.testing.assert_array_equal(chunks[1], whole[1])


def test_replay_moves_and_restarts_exactly():
    """The comparison above is not vacuous (particles move, lists are rebuilt), and the replay's state between calls
    is only (x, q, step): chunks, and a new simulator started from a saved state, continue exactly."""
    system, dt = CASES[1][1], CASES[1][2]
    x, q = _start(system, seed=3)
    whole = _final(system, dt, x, q, "replay", True, [120])
    chunks = _final(system, dt, x, q, "replay", True, [1, 40, 79])
    np.testing.assert_array_equal(chunks[0], whole[0])
    assert np.max(np.abs(whole[0] - x)) > 0.5
    half = _final(system, dt, x, q, "replay", True, [60])
    resumed = _final(system, dt, half[0], half[1], "replay", True, [60], step=17 + 60)
    np.testing.assert_array_equal(resumed[0], whole[0])
    np.testing.assert_array_equal(resumed[1], whole[1])


def test_replay_blow_up_matches_cpu_driver():
    system = a.AOUP(2, box_length=20.0, v0=1.0, gamma=1e-9, k=1e4, beta=None)
    x, q = np.array([[-3.0, 0.0], [3.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]])
    sims = [
        core.make_host_replay_simulator(_core_system(system), _core_run(0.1, 0, 0), True, x, q, system.radius),
        core.make_simulator(_core_system(system), _core_run(0.1, 0, 0), True, x, q, system.radius, "cpu"),
    ]
    done = [sim.advance(200) for sim in sims]
    assert 15 < done[0] == done[1] < 40
    assert sims[0].error == sims[1].error and sims[0].error.startswith(f"blow-up at step {done[0]}:")
    states = [core.read_state(sim, 2) for sim in sims]
    np.testing.assert_array_equal(states[0][0], states[1][0])  # both keep the last good state


@pytest.mark.parametrize("name, system, dt", CASES, ids=[c[0] for c in CASES])
def test_replay_observables_match_cpu(name, system, dt):
    x, _ = _start(system, seed=5)
    x = x * 1.3  # some outside the box: both wrap
    spec = _core_system(system)
    np.testing.assert_array_equal(core.host_replay_forces(spec, x, system.radius), core.forces(spec, x, system.radius))
    np.testing.assert_array_equal(
        core.host_replay_drift_divergence(spec, x, system.radius), core.drift_divergence(spec, x, system.radius)
    )
