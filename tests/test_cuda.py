"""CUDA backend (physics.md §1-3): the C++ driver's trajectories, the all-pairs observables, the Philox stream on the
device, blow-ups, exact restarts and call patterns. Every test needs an NVIDIA GPU and is skipped without one.

float64 CUDA and C++ runs differ only by rounding (the device's exp/log1p/sin/cos and FMA contraction; both sum a
particle's pair forces in ascending index, and test_cuda_host.py runs the kernel bodies on the host bit for bit
against the C++ driver), amplified by the dynamics: for these systems a 1e-14 relative perturbation of the initial
positions grows to at most ~4e-11 over 300 steps, hence the 1e-9 tolerance.
"""

import numpy as np
import pytest

import activescore as a
from activescore import backends
from reference import reference_drift_divergence, reference_forces
from test_simulate import collision

HAVE_CUDA = backends.is_available("cuda")


def _why_no_cuda() -> str:
    core = backends._core()
    if core is None:
        return "the compiled extension activescore._core did not import"
    if not core.built_with_cuda:
        return "activescore was built without CUDA (nvcc was not found at build time)"
    return "no CUDA GPU (compute capability >= 8.0) is visible"


pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not HAVE_CUDA, reason="" if HAVE_CUDA else f"CUDA backend: {_why_no_cuda()}"),
]

F64_TOL = 1e-9


def _run(system, steps, dt, backend, *, dtype="float64", init="uniform", seed=5, save_every=None):
    return a.simulate(
        system,
        steps,
        dt,
        seed=seed,
        init=init,
        save_every=save_every or max(steps, 1),
        backend=backend,
        dtype=dtype,
        progress=False,
    )


def _max_position_gap(system, x1, x2) -> float:
    d = np.asarray(x1, np.float64) - np.asarray(x2, np.float64)
    d -= system.box_length * np.round(d / system.box_length)
    return float(np.max(np.abs(d)))


def _poly(seed, n, low, high):
    return np.random.default_rng(seed).uniform(low, high, n)


def trajectory_cases():
    """(name, system, dt, init): N from 1 to 5000, both models and potentials, polydisperse, small boxes."""
    yield "n1_trap_noise", a.AOUP(1, box_length=10.0, v0=0.5, gamma=0.5, eps=0.1, trap=0.1), 0.05, "uniform"
    # Boxes under 3 cells a side: one cell, all pairs under the minimum image.
    yield (
        "n7_small_box_harmonic_poly",
        a.AOUP(7, box_length=7.0, radius=_poly(1, 7, 0.5, 1.2), v0=0.3, gamma=0.5, eps=0.01, beta=None),
        0.02,
        "uniform",
    )
    yield (
        "n12_small_box_abp_poly",
        a.ABP(12, box_length=9.0, radius=_poly(2, 12, 0.5, 1.2), v0=0.3, rotational_diffusion=0.5, eps=0.01),
        0.02,
        "uniform",
    )
    # Exactly 3 and 4 cells a side (the smallest grids where the 3x3 neighbourhood wraps onto itself).
    yield "n40_three_cells_abp", a.ABP(40, box_length=12.0, v0=0.5, rotational_diffusion=0.2), 0.05, "uniform"
    yield (
        "n60_four_cells_harmonic_poly",
        a.AOUP(60, box_length=16.5, radius=_poly(3, 60, 0.6, 1.0), v0=0.3, gamma=0.5, k=2.0, beta=None),
        0.05,
        "uniform",
    )
    yield "n500_mips_cluster", a.mips(500, 0.5), 0.1, "cluster"
    yield (
        "n700_abp_harmonic_poly_trap",
        a.ABP(
            700,
            packing_fraction=0.3,
            radius=_poly(4, 700, 0.6, 1.0),
            v0=0.5,
            rotational_diffusion=0.2,
            trap=0.001,
            eps=0.01,
            beta=None,
        ),
        0.05,
        "uniform",
    )
    yield (
        "n2000_aoup_poly_softplus",
        a.AOUP(2000, packing_fraction=0.6, radius=_poly(5, 2000, 0.8, 1.2), v0=0.1, gamma=0.1, eps=0.001),
        0.05,
        "uniform",
    )
    yield "n5000_mips", a.mips(5000, 0.5), 0.1, "uniform"
    yield "n300_free", a.AOUP(300, packing_fraction=0.3, k=0.0, v0=1.0, gamma=1.0, eps=0.1), 0.1, "uniform"


TRAJECTORIES = list(trajectory_cases())


# ---------------------------------------------------------------- same trajectory as the C++ driver


@pytest.mark.parametrize("name, system, dt, init", TRAJECTORIES, ids=[c[0] for c in TRAJECTORIES])
def test_float64_trajectory_matches_cpp(name, system, dt, init):
    runs = {b: _run(system, 300, dt, b, init=init) for b in ("cpp", "cuda")}
    cpp, cuda = runs["cpp"].final_state, runs["cuda"].final_state
    assert cuda.step == cpp.step == 300
    assert _max_position_gap(system, cuda.x, cpp.x) < F64_TOL
    np.testing.assert_allclose(cuda.q, cpp.q, rtol=0, atol=F64_TOL)


def test_saved_frames_match_cpp():
    s = a.AOUP(400, packing_fraction=0.5, radius=_poly(6, 400, 0.7, 1.1), v0=0.2, gamma=0.3, eps=0.01)
    runs = {b: _run(s, 200, 0.05, b, save_every=40) for b in ("cpp", "cuda")}
    np.testing.assert_array_equal(runs["cuda"].step, runs["cpp"].step)
    for f in range(len(runs["cpp"])):
        assert _max_position_gap(s, runs["cuda"].x[f], runs["cpp"].x[f]) < F64_TOL


@pytest.mark.parametrize("model", ["aoup", "abp"])
def test_float32_is_close_to_float64(model):
    s = a.mips(500, 0.5) if model == "aoup" else a.ABP(500, packing_fraction=0.4, v0=0.3, rotational_diffusion=0.2)
    init = "cluster" if model == "aoup" else "uniform"
    f32 = _run(s, 300, 0.1, "cuda", dtype="float32", init=init).final_state
    f64 = _run(s, 300, 0.1, "cuda", dtype="float64", init=init).final_state
    cpp32 = _run(s, 300, 0.1, "cpp", dtype="float32", init=init).final_state
    # float32 rounding grows to ~5e-4 (ABP) over these 300 steps on the CPU; CUDA and C++ float32 differ less.
    assert _max_position_gap(s, f32.x, f64.x) < 5e-3
    assert _max_position_gap(s, f32.x, cpp32.x) < 2e-3
    np.testing.assert_allclose(f32.q, f64.q, atol=1e-3)


# ---------------------------------------------------------------- observables of a configuration


def observable_cases():
    rng = np.random.default_rng(4)
    yield "mips_cluster", a.mips(400, 0.6), None
    yield (
        "polydisperse_trap",
        a.AOUP(300, packing_fraction=0.7, radius=rng.uniform(0.6, 1.3, 300), trap=0.01, beta=4.0),
        None,
    )
    yield "harmonic_small_box", a.AOUP(9, box_length=5.5, beta=None), None
    yield "one_particle", a.AOUP(1, box_length=3.0, trap=0.5), None
    yield "no_interactions", a.AOUP(50, packing_fraction=0.5, k=0.0, trap=0.2), None
    s = a.AOUP(6, box_length=12.0, beta=7.5)  # straddling the periodic boundary, some coordinates outside the box
    yield "boundary", s, np.array([[-5.9, 0.0], [5.8, 0.3], [0.0, -5.95], [0.2, 5.9], [-5.99, -5.99], [17.9, -18.1]])
    yield "large", a.mips(20000, 0.6), None


OBSERVABLES = list(observable_cases())


@pytest.mark.parametrize("name, system, x", OBSERVABLES, ids=[c[0] for c in OBSERVABLES])
def test_forces_and_divergence_match_all_pairs_and_cpp(name, system, x):
    if x is None:
        x = _run(system, 5, 0.1, "cpp", seed=2, init="cluster" if "cluster" in name else "uniform").final_state.x
    spec = system.spec()
    f, div = a.forces(system, x, backend="cuda"), a.drift_divergence(system, x, backend="cuda")
    assert f.shape == (system.n_particles, 2) and div.shape == (system.n_particles,)
    np.testing.assert_allclose(f, a.forces(system, x, backend="cpp"), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(div, a.drift_divergence(system, x, backend="cpp"), rtol=1e-12, atol=1e-13)
    if system.n_particles <= 2000:  # the reference is all-pairs
        np.testing.assert_allclose(f, reference_forces(spec, x, system.radius), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(div, reference_drift_divergence(spec, x, system.radius), rtol=1e-10, atol=1e-12)


def test_core_observables_directly():
    core = backends._core()
    s = a.AOUP(30, packing_fraction=0.6, radius=_poly(7, 30, 0.7, 1.2))
    x = _run(s, 3, 0.1, "cpp").final_state.x
    spec = backends._core_spec(s.spec())
    np.testing.assert_allclose(
        core.cuda_forces(spec, x, s.radius), core.forces(spec, x, s.radius), rtol=1e-12, atol=1e-13
    )
    np.testing.assert_allclose(
        core.cuda_drift_divergence(spec, x, s.radius), core.drift_divergence(spec, x, s.radius), rtol=1e-12, atol=1e-13
    )
    with pytest.raises(ValueError, match="x: expected 60 values"):
        core.cuda_forces(spec, x[:-1], s.radius)


# ---------------------------------------------------------------- the random stream on the device

PHILOX_KATS = [
    ((0, 0, 0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 6, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("inputs, expected", PHILOX_KATS)
def test_philox_known_answers_on_the_device(inputs, expected):
    assert tuple(backends._core().cuda_philox4x32_10(*inputs)) == expected


def test_device_philox_matches_host_and_normals_agree():
    core = backends._core()
    rng = np.random.default_rng(11)
    for row in rng.integers(0, 2**32, size=(50, 6), dtype=np.uint64):
        args = [int(v) for v in row]
        assert tuple(core.cuda_philox4x32_10(*args)) == tuple(core.philox4x32_10(*args))
    for seed, step, particle, purpose in [(0, 0, 0, 0), (2**64 - 1, 2**40 + 3, 2**32 - 1, 1), (123, 456, 789, 0)]:
        np.testing.assert_allclose(
            core.cuda_normals4(seed, step, particle, purpose),
            core.normals4(seed, step, particle, purpose),
            rtol=1e-14,
            atol=1e-15,
        )


# ---------------------------------------------------------------- blow-ups


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_blow_up_matches_cpp(dtype):
    errors = {}
    for backend in ("cpp", "cuda"):
        with pytest.raises(a.SimulationError) as info:
            collision(backend, dtype=dtype)
        errors[backend] = info.value
    assert errors["cuda"].step == errors["cpp"].step
    assert str(errors["cuda"]).split(" moved by")[0] == str(errors["cpp"]).split(" moved by")[0]
    assert str(errors["cuda"]).endswith(f"half the interaction range ({2.0 / 2:g})")
    assert _max_position_gap(
        errors["cpp"].trajectory.system, errors["cuda"].trajectory.final_state.x, errors["cpp"].trajectory.final_state.x
    ) < (F64_TOL if dtype == "float64" else 1e-4)


def test_blow_up_late_in_a_long_call_matches_cpp():
    """A slow approach: the blow-up comes after ~10^4 steps of one advance() call, past the device's first chunk
    of queued steps, and every step after it must have done nothing."""
    s = a.AOUP(2, box_length=60.0, v0=0.01, gamma=1e-9, k=1e4, beta=None)
    start = a.State(s, np.array([[-11.0, 0.0], [11.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]]), 0, 3, 0.1)
    errors = {}
    for backend in ("cpp", "cuda"):
        with pytest.raises(a.SimulationError) as info:
            a.simulate(s, 20000, 0.1, init=start, save_every=20000, backend=backend, progress=False)
        errors[backend] = info.value
    assert 9000 < errors["cpp"].step < 11000
    assert errors["cuda"].step == errors["cpp"].step
    assert errors["cuda"].trajectory.final_state.step == errors["cuda"].step
    assert _max_position_gap(s, errors["cuda"].trajectory.final_state.x, errors["cpp"].trajectory.final_state.x) < 1e-8


def test_non_finite_state_is_a_blow_up_at_step_zero():
    s = a.AOUP(3, box_length=10.0, v0=1.0, gamma=1.0, k=0.0)
    x = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    q = np.array([[0.0, 0.0], [1e308, 0.0], [0.0, 0.0]])
    with pytest.raises(a.SimulationError, match="step 0: particle 1") as info:
        a.simulate(s, 5, 0.1, init=a.State(s, x, q, 0, 0, 0.1), backend="cuda", progress=False)
    assert info.value.step == 0


def test_simulator_after_a_blow_up_is_at_the_last_good_state():
    """The raw simulator: advance() returns the steps done, error() is set, read_state() is the state before the
    failing step, and advancing again fails at the same step (as the C++ driver does)."""
    core = backends._core()
    s = a.AOUP(2, box_length=20.0, v0=1.0, gamma=1e-9, k=1e4, beta=None)
    x0, q0 = np.array([[-3.0, 0.0], [3.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]])
    sims = {}
    for device in ("cpu", "cuda"):
        run = backends._core_run(backends.RunSpec(0.1, 0, 0, 0))
        sim = core.make_simulator(backends._core_spec(s.spec()), run, True, x0, q0, s.radius, device)
        done = sim.advance(200)
        assert 15 < done < 40 and sim.step == done and sim.error.startswith(f"blow-up at step {done}:")
        assert sim.advance(50) == 0 and sim.step == done
        sims[device] = sim
    xc, qc = core.read_state(sims["cpu"], 2)
    xg, qg = core.read_state(sims["cuda"], 2)
    assert sims["cuda"].step == sims["cpu"].step
    np.testing.assert_allclose(xg, xc, atol=F64_TOL)
    np.testing.assert_allclose(qg, qc, atol=F64_TOL)


# ---------------------------------------------------------------- restarts and call patterns (bitwise)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_restart_continues_exactly(dtype):
    s = a.mips(500, 0.5, k=1.0, eps=0.01)
    whole = a.simulate(s, 80, 0.1, seed=3, burn_in=10, save_every=80, backend="cuda", dtype=dtype, progress=False)
    first = a.simulate(s, 30, 0.1, seed=3, burn_in=10, save_every=30, backend="cuda", dtype=dtype, progress=False)
    second = a.simulate(s, 50, 0.1, init=first.final_state, save_every=50, backend="cuda", dtype=dtype, progress=False)
    assert second.final_state.step == whole.final_state.step == 90
    np.testing.assert_array_equal(second.final_state.x, whole.final_state.x)
    np.testing.assert_array_equal(second.final_state.q, whole.final_state.q)


@pytest.mark.parametrize("name", ["n500_mips_cluster", "n12_small_box_abp_poly", "n300_free"])
def test_one_step_per_call_equals_many_steps_per_call(name):
    _, system, dt, init = next(c for c in TRAJECTORIES if c[0] == name)
    many = _run(system, 150, dt, "cuda", init=init)
    ones = _run(system, 150, dt, "cuda", init=init, save_every=1)  # advance(1) and a read-back every step
    odd = _run(system, 150, dt, "cuda", init=init, save_every=37)  # counts that are not powers of two
    assert len(ones) == 151
    for other in (ones, odd):
        np.testing.assert_array_equal(other.final_state.x, many.final_state.x)
        np.testing.assert_array_equal(other.final_state.q, many.final_state.q)
    np.testing.assert_array_equal(ones.x[37], odd.x[1])


def test_graph_replay_equals_direct_launches(monkeypatch):
    s = a.ABP(300, packing_fraction=0.5, v0=0.5, rotational_diffusion=0.3, eps=0.01)
    with_graphs = _run(s, 200, 0.05, "cuda")
    monkeypatch.setenv("ACTIVESCORE_CUDA_GRAPHS", "0")
    direct = _run(s, 200, 0.05, "cuda")
    np.testing.assert_array_equal(direct.final_state.x, with_graphs.final_state.x)
    np.testing.assert_array_equal(direct.final_state.q, with_graphs.final_state.q)


def test_same_seed_same_trajectory_different_seed_different():
    s = a.mips(1000, 0.5)
    t1, t2 = (_run(s, 100, 0.1, "cuda", seed=7) for _ in range(2))
    np.testing.assert_array_equal(t1.final_state.x, t2.final_state.x)
    t3 = _run(s, 100, 0.1, "cuda", seed=8)
    assert not np.array_equal(t1.final_state.x, t3.final_state.x)


def test_long_run_over_several_chunks_matches_cpp():
    """20000 steps of one particle in one call: several chunks of queued graphs on the device."""
    s = a.AOUP(1, box_length=10.0, v0=0.5, gamma=0.5, eps=0.1, trap=0.1)
    runs = {b: _run(s, 20000, 0.05, b) for b in ("cpp", "cuda")}
    assert runs["cuda"].final_state.step == 20000
    assert _max_position_gap(s, runs["cuda"].final_state.x, runs["cpp"].final_state.x) < F64_TOL


def test_device_info():
    info = backends._core().cuda_device_info()
    assert info["name"] and info["sm_count"] > 0
    assert info["memory_bandwidth_gbs"] > 100 and info["memory_bus_width_bits"] > 0
    assert float(info["compute_capability"]) >= 8.0
