"""The Numba backend against the all-pairs NumPy reference (tests/reference.py) and, when built, the compiled core."""

import dataclasses

import numba
import numpy as np
import pytest

from activescore import backends
from activescore.backends.numba_backend import NumbaSimulator, drift_divergence, forces
from activescore.backends.spec import RunSpec, SystemSpec
from reference import reference_drift_divergence, reference_forces, reference_step, wrap


def make_system(model="aoup", box_length=10.0, beta=7.5, k=1.0, trap=0.0, eps=0.05, v0=1.0, omega=0.0, **kw):
    """AOUP with γ = 1 or ABP with D_r = 0.5 (chiral with ``omega``)."""
    return SystemSpec(
        model=model,
        box_length=box_length,
        v0=v0,
        propulsion=(1.0, omega) if model == "aoup" else (0.5, omega),
        propulsion_components=2 if model == "aoup" else 1,
        eps=eps,
        k=k,
        trap=trap,
        beta=beta,
        **kw,
    )


def random_state(system, n, seed=0, spread=1.0):
    """Uniform positions (times spread: > 1 puts some outside the box), polydisperse radii, propulsion."""
    gen = np.random.default_rng(seed)
    L = system.box_length
    x = gen.uniform(-0.5 * L, 0.5 * L, (n, 2)) * spread
    radius = gen.uniform(0.35, 0.65, n)
    q = gen.normal(size=(n, 2)) if system.model == "aoup" else gen.uniform(-np.pi, np.pi, (n, 1))
    return x, q, radius


def min_image_gap(a, b, box_length):
    d = a - b
    return np.abs(d - box_length * np.round(d / box_length)).max()


# Softplus and harmonic pairs, a trap, boxes of one cell (< 3 cells a side) and of many cells.
FORCE_CASES = {
    "softplus": (make_system(box_length=12.0), 60),
    "harmonic": (make_system(box_length=12.0, beta=float("inf")), 80),
    "softplus-one-cell": (make_system(box_length=5.0), 12),
    "harmonic-one-cell": (make_system(box_length=2.5, beta=float("inf")), 6),
    "softplus-trap": (make_system(box_length=30.0, trap=0.3), 50),
    "softplus-sharp": (make_system(box_length=9.0, beta=30.0), 50),
}


# ---------------------------------------------------------------- forces and divergence


@pytest.mark.parametrize("case", FORCE_CASES)
def test_forces_match_all_pairs_reference(case):
    system, n = FORCE_CASES[case]
    x, _, radius = random_state(system, n, seed=1, spread=1.2)  # some positions outside the box: wrapped first
    np.testing.assert_allclose(forces(system, x, radius), reference_forces(system, x, radius), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", FORCE_CASES)
def test_divergence_matches_all_pairs_reference(case):
    system, n = FORCE_CASES[case]
    x, _, radius = random_state(system, n, seed=2, spread=1.2)
    np.testing.assert_allclose(
        drift_divergence(system, x, radius), reference_drift_divergence(system, x, radius), rtol=1e-12, atol=1e-12
    )


def test_pairs_across_the_periodic_boundary():
    system = make_system(box_length=12.0)
    x = np.array([[5.9, 0.0], [-5.8, 0.1], [0.0, -5.95], [0.2, 5.9], [5.95, 5.95], [-5.9, -5.9]])
    radius = np.full(len(x), 0.5)
    f = forces(system, x, radius)
    np.testing.assert_allclose(f, reference_forces(system, x, radius), rtol=1e-12, atol=1e-14)
    assert f[0, 0] < -0.5 and f[1, 0] > 0.5  # x_1 = -5.8 is +6.2: right of x_0, so pushed apart across x = L/2


@pytest.mark.parametrize("beta", [7.5, float("inf")])
def test_forces_sum_to_zero_without_trap(beta):
    system = make_system(box_length=8.0, beta=beta)
    x, _, radius = random_state(system, 70, seed=3)
    f = forces(system, x, radius)
    assert np.abs(f).max() > 0.1
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-12)


def test_divergence_is_the_trace_of_the_force_jacobian():
    # A tiny cutoff tolerance makes the truncation jump negligible against the finite-difference step.
    system = make_system(box_length=9.0, trap=0.2, cutoff_tol=1e-13)
    x, _, radius = random_state(system, 30, seed=4)
    x = wrap(x, system.box_length)
    h = 1e-5
    divergence = drift_divergence(system, x, radius)
    for i in range(len(x)):
        trace = 0.0
        for axis in range(2):
            plus, minus = x.copy(), x.copy()
            plus[i, axis] += h
            minus[i, axis] -= h
            trace += (forces(system, plus, radius)[i, axis] - forces(system, minus, radius)[i, axis]) / (2 * h)
        assert trace == pytest.approx(divergence[i], rel=1e-6, abs=1e-6)


def test_zero_interaction_leaves_only_the_trap():
    system = make_system(k=0.0, trap=0.4)
    x, _, radius = random_state(system, 20, seed=5)
    np.testing.assert_allclose(forces(system, x, radius), -0.4 * x, rtol=1e-15)
    np.testing.assert_allclose(drift_divergence(system, x, radius), -0.8)


# ---------------------------------------------------------------- the simulator

SIMULATOR_CASES = {
    "aoup-softplus": (make_system(box_length=10.0), 50),
    "aoup-harmonic-trap": (make_system(box_length=25.0, beta=float("inf"), trap=0.2), 40),
    "aoup-one-cell": (make_system(box_length=4.0), 8),
    "abp-one-cell": (make_system(model="abp", box_length=4.0), 8),
    "abp-softplus": (make_system(model="abp", box_length=10.0), 50),
    "aoup-free": (make_system(box_length=10.0, k=0.0), 30),
    "aoup-no-translational-noise": (make_system(box_length=10.0, eps=0.0), 50),
    "chiral-aoup": (make_system(box_length=10.0, omega=2.5), 50),
    "chiral-abp-one-cell": (make_system(model="abp", box_length=4.0, omega=-3.0), 8),
}


@pytest.mark.parametrize("case", SIMULATOR_CASES)
def test_simulator_follows_the_reference_step(case):
    system, n = SIMULATOR_CASES[case]
    x, q, radius = random_state(system, n, seed=6)
    x = wrap(x, system.box_length)
    run = RunSpec(dt=0.01, seed=99, step=2**32 - 2)  # crosses the low/high word boundary of the step counter
    sim = NumbaSimulator(system, run, True, x, q, radius)
    for s in range(6):
        x, q = reference_step(system, dataclasses.replace(run, step=run.step + s), x, q, radius)
        assert sim.advance(1) == 1
        x_sim, q_sim = sim.read_state()
        assert min_image_gap(x_sim, x, system.box_length) < 1e-12
        np.testing.assert_allclose(q_sim, q, rtol=1e-12, atol=1e-12)
    assert sim.step == run.step + 6 and sim.error == "" and sim.size == n and sim.double_precision


def _run(system, run, x, q, radius, chunks, double_precision=True):
    sim = NumbaSimulator(system, run, double_precision, x, q, radius)
    for n_steps in chunks:
        assert sim.advance(n_steps) == n_steps, sim.error
    return sim


@pytest.mark.parametrize("model", ["aoup", "abp"])
def test_thread_count_does_not_change_results(model):
    system = make_system(model=model, box_length=12.0)
    x, q, radius = random_state(system, 120, seed=7)
    one = _run(system, RunSpec(0.01, 5, n_threads=1), x, q, radius, [40])
    two = _run(system, RunSpec(0.01, 5, n_threads=2), x, q, radius, [40])
    for a, b in zip(one.read_state(), two.read_state(), strict=False):
        np.testing.assert_array_equal(a, b)


def test_thread_setting_is_restored():
    before = numba.get_num_threads()
    system = make_system()
    _run(system, RunSpec(0.01, 5, n_threads=1), *random_state(system, 10), [3])
    assert numba.get_num_threads() == before


def test_chunks_and_restarts_give_the_same_trajectory():
    system = make_system(box_length=10.0)
    x, q, radius = random_state(system, 60, seed=8)
    whole = _run(system, RunSpec(0.01, 3), x, q, radius, [100])
    halves = _run(system, RunSpec(0.01, 3), x, q, radius, [50, 50])
    first = _run(system, RunSpec(0.01, 3), x, q, radius, [50])
    restarted = _run(system, RunSpec(0.01, 3, step=first.step), *first.read_state(), radius, [50])
    for sim in (halves, restarted):
        assert sim.step == whole.step == 100
        for a, b in zip(sim.read_state(), whole.read_state(), strict=False):
            np.testing.assert_array_equal(a, b)


def test_read_state_returns_copies():
    system = make_system()
    sim = _run(system, RunSpec(0.01, 1), *random_state(system, 10), [2])
    x, _ = sim.read_state()
    x[:] = 0.0
    assert np.abs(sim.read_state()[0]).max() > 0


def test_float32_follows_float64():
    system = make_system(box_length=10.0)
    x, q, radius = random_state(system, 50, seed=9)
    single = _run(system, RunSpec(0.01, 4), x, q, radius, [20], double_precision=False)
    double = _run(system, RunSpec(0.01, 4), x, q, radius, [20])
    xs, qs = single.read_state()
    assert xs.dtype == qs.dtype == np.float32 and not single.double_precision
    xd, qd = double.read_state()
    assert min_image_gap(xs.astype(np.float64), xd, system.box_length) < 1e-4
    np.testing.assert_allclose(qs, qd, atol=1e-5)


def test_blow_up_on_the_first_step_keeps_the_state():
    system = make_system(box_length=10.0, eps=0.0)
    x = np.array([[3.0, 3.0], [0.0, 0.0], [0.05, 0.0]])  # particles 1 and 2 overlap almost completely
    q = np.zeros((3, 2))
    radius = np.full(3, 0.5)
    sim = NumbaSimulator(system, RunSpec(dt=50.0, seed=1, step=7), True, x, q, radius)
    assert sim.advance(10) == 0
    assert sim.step == 7
    assert sim.error.startswith("blow-up at step 7: particle 1 moved by (")
    np.testing.assert_array_equal(sim.read_state()[0], x)
    np.testing.assert_array_equal(sim.read_state()[1], q)


def test_blow_up_after_good_steps_stops_at_the_last_good_state():
    # Two particles 4 apart driven head-on at speed 10 (a persistent propulsion, γ = 1e-6) into a stiff harmonic
    # contact (range 2 R = 1): 0.1 a step until, overlapping by 0.2, the contact force kicks one by more than half
    # the range (step 16).
    system = SystemSpec(
        model="aoup",
        box_length=40.0,
        v0=10.0,
        propulsion=(1e-6, 0.0),
        propulsion_components=2,
        eps=0.0,
        k=1000.0,
        trap=0.0,
        beta=float("inf"),
    )
    x = np.array([[-2.0, 0.0], [2.0, 0.0]])
    q = np.array([[1.0, 0.0], [-1.0, 0.0]])
    radius = np.full(2, 0.5)
    sim = NumbaSimulator(system, RunSpec(dt=0.01, seed=1), True, x, q, radius)
    done = sim.advance(100)
    assert done == 16 and sim.step == done
    assert sim.error.startswith("blow-up at step 16: particle ") and "half the interaction range (0.5)" in sim.error
    assert np.all(np.abs(np.diff(sim.read_state()[0][:, 0])) > 0.5)  # the last good state: not yet through


def test_a_stiff_stable_trap_relaxation_is_no_blow_up():
    # Non-interacting particles far from the centre of a trap: the first step moves them by trap·dt·|x| (here
    # 0.7 · 0.02 · 200 = 2.8), far more than half a particle diameter, yet the step is stable (trap·dt < 2) and
    # there is no contact to miss: only a non-finite state stops a non-interacting run.
    system = make_system(box_length=400.0, k=0.0, trap=0.7, eps=0.1, v0=1.0)
    x = np.array([[199.0, -150.0], [0.0, 0.0], [-120.0, 180.0]])
    sim = NumbaSimulator(system, RunSpec(dt=0.02, seed=1), True, x, np.zeros((3, 2)), np.full(3, 1.0))
    assert sim.advance(500) == 500 and sim.error == ""
    assert np.all(np.abs(sim.read_state()[0]) < 5)  # relaxed into the trap (0.986^500 ≈ 1e-3 of the start)
    bad = NumbaSimulator(system, RunSpec(dt=0.02, seed=1), True, x.copy(), np.full((3, 2), np.nan), np.full(3, 1.0))
    assert bad.advance(5) == 0 and "non-finite" in bad.error


def test_non_finite_propulsion_is_a_blow_up():
    system = make_system(box_length=10.0)
    x, q, radius = random_state(system, 10, seed=10)
    q[4, 0] = np.nan
    sim = NumbaSimulator(system, RunSpec(dt=0.01, seed=1), True, x, q, radius)
    assert sim.advance(5) == 0
    assert sim.error.startswith("blow-up at step 0: particle 4 moved by (nan")


# ---------------------------------------------------------------- against the compiled core (conftest's `core`)


def _core_system(core, system):
    return backends._core_spec(system)


def _core_run(core, run):
    spec = core.RunSpec()
    spec.dt, spec.seed, spec.step, spec.n_threads = run.dt, run.seed, run.step, run.n_threads
    return spec


@pytest.mark.parametrize("case", FORCE_CASES)
def test_core_forces_and_divergence(core, case):
    system, n = FORCE_CASES[case]
    x, _, radius = random_state(system, n, seed=11, spread=1.2)
    # Bit for bit: the same cell order, the same operations, and the C++ softplus polynomials in Numba.
    np.testing.assert_array_equal(forces(system, x, radius), core.forces(_core_system(core, system), x, radius))
    np.testing.assert_array_equal(
        drift_divergence(system, x, radius), core.drift_divergence(_core_system(core, system), x, radius)
    )


@pytest.mark.parametrize("case", SIMULATOR_CASES)
@pytest.mark.parametrize("double_precision", [True, False])
def test_core_trajectories(core, case, double_precision):
    system, n = SIMULATOR_CASES[case]
    x, q, radius = random_state(system, n, seed=12)
    x = wrap(x, system.box_length)
    run = RunSpec(dt=0.005, seed=2**35 + 3, step=11)
    ours = _run(system, run, x, q, radius, [200], double_precision)
    theirs = core.make_simulator(
        _core_system(core, system), _core_run(core, run), double_precision, x, q, radius, "cpu"
    )
    assert theirs.advance(200) == 200 and theirs.step == ours.step
    x_core, q_core = core.read_state(theirs, system.propulsion_components)
    x_ours, q_ours = ours.read_state()
    assert x_core.dtype == x_ours.dtype
    if double_precision and case in ("aoup-free", "aoup-one-cell", "abp-one-cell", "chiral-abp-one-cell"):
        # Same normals and pair forces bit for bit; in one cell both also sum every neighbour in index order (with
        # more cells Numba sums in cell order, the C++ Verlet lists in index order: equal to rounding).
        np.testing.assert_array_equal(x_ours, x_core)
        np.testing.assert_array_equal(q_ours, q_core)
    tolerance = 1e-12 if double_precision else 2e-4  # float32: libm float vs double calls differ by an ulp
    assert min_image_gap(x_ours.astype(np.float64), x_core, system.box_length) < tolerance
    np.testing.assert_allclose(q_ours, q_core, rtol=tolerance, atol=tolerance)


def test_core_blow_up_message(core):
    system = make_system(box_length=10.0, eps=0.0)
    x = np.array([[3.0, 3.0], [0.0, 0.0], [0.05, 0.0]])
    args = (RunSpec(dt=50.0, seed=1, step=7), True, x, np.zeros((3, 2)), np.full(3, 0.5))
    ours = NumbaSimulator(system, *args)
    theirs = core.make_simulator(_core_system(core, system), _core_run(core, args[0]), *args[1:], "cpu")
    assert ours.advance(3) == theirs.advance(3) == 0
    assert ours.error == theirs.error
