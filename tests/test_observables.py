"""forces / drift / drift_divergence through the public API on every CPU backend, against the all-pairs
float64 reference (tests/reference.py) and finite differences."""

import numpy as np
import pytest

import activescore as a
from reference import reference_drift_divergence, reference_forces


def configurations():
    rng = np.random.default_rng(4)
    poly = rng.uniform(0.6, 1.3, 300)
    yield "mips_cluster", a.mips(400, 0.6), None
    yield "polydisperse_trap", a.AOUP(300, packing_fraction=0.7, radius=poly, trap=0.01, beta=4.0), None
    yield "harmonic_small_box", a.AOUP(9, box_length=5.5, beta=None), None
    yield "one_particle", a.AOUP(1, box_length=3.0, trap=0.5), None
    # Particles straddling the periodic boundary.
    s = a.AOUP(6, box_length=12.0, beta=7.5)
    yield "boundary", s, np.array([[-5.9, 0.0], [5.8, 0.3], [0.0, -5.95], [0.2, 5.9], [-5.99, -5.99], [5.9, 5.9]])


CASES = list(configurations())


@pytest.mark.parametrize("name, system, x", CASES, ids=[c[0] for c in CASES])
def test_forces_and_divergence_match_all_pairs(cpu_backend, name, system, x):
    if x is None:
        x = a.simulate(
            system, 5, 0.1, seed=2, init="cluster" if "cluster" in name else "uniform", save_every=5, progress=False
        ).final_state.x
    spec = system.spec()
    np.testing.assert_allclose(
        a.forces(system, x, backend=cpu_backend), reference_forces(spec, x, system.radius), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        a.drift_divergence(system, x, backend=cpu_backend),
        reference_drift_divergence(spec, x, system.radius),
        rtol=1e-10,
        atol=1e-12,
    )


def test_drift_is_propulsion_plus_forces():
    s = a.AOUP(50, packing_fraction=0.5, v0=0.3, gamma=2.0)
    traj = a.simulate(s, 3, 0.1, seed=0, save_every=3, progress=False)
    x, g = traj.x[-1], traj.g[-1]
    b_x, b_g = a.drift(s, x, g)
    np.testing.assert_allclose(b_x, 0.3 * g + a.forces(s, x))
    np.testing.assert_allclose(b_g, -2.0 * g)


def test_forces_sum_to_zero_and_divergence_is_jacobian_trace(cpu_backend):
    s = a.AOUP(40, packing_fraction=0.8, beta=7.5)
    x = a.simulate(s, 2, 0.1, seed=5, save_every=2, progress=False).final_state.x
    f = a.forces(s, x, backend=cpu_backend)
    assert np.max(np.abs(f.sum(axis=0))) < 1e-12 * max(1.0, np.abs(f).sum())
    div = a.drift_divergence(s, x, backend=cpu_backend)
    h = 1e-6
    for i in (0, 7, 23):
        trace = 0.0
        for d in range(2):
            plus, minus = x.copy(), x.copy()
            plus[i, d] += h
            minus[i, d] -= h
            trace += (a.forces(s, plus, backend=cpu_backend)[i, d] - a.forces(s, minus, backend=cpu_backend)[i, d]) / (
                2 * h
            )
        assert trace == pytest.approx(div[i], rel=1e-6, abs=1e-7)
