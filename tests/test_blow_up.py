"""What stops a run: a non-finite state, or (interacting particles) a move beyond half the interaction range; a
trap step that is unstable (trap·dt >= 2) is refused before the run; a stiff but stable relaxation runs."""

import pytest

import activescore as a


def spread_out_trapped_aoups():
    # Started uniformly in a box of 400, the particles relax into a trap whose cloud is a few units wide: the first
    # steps move the outer ones by trap·dt·|x| ≈ 2.8, more than a particle's radius, and all is well.
    return a.AOUP(64, box_length=400.0, k=0.0, trap=0.7, eps=0.5, gamma=1.0, v0=1.0)


def test_a_stiff_stable_trap_relaxation_runs_on_numba():
    traj = a.simulate(spread_out_trapped_aoups(), 200, 0.02, seed=1, backend="numba", progress=False)
    assert len(traj) > 1 and abs(traj.x[-1]).max() < abs(traj.x[0]).max()


def test_a_stiff_stable_trap_relaxation_runs_on_the_compiled_core(core):
    traj = a.simulate(spread_out_trapped_aoups(), 200, 0.02, seed=1, backend="cpp", progress=False)
    assert len(traj) > 1 and abs(traj.x[-1]).max() < abs(traj.x[0]).max()


def test_an_unstable_trap_step_is_refused_before_the_run():
    with pytest.raises(ValueError, match=r"dt: .*trap·dt >= 2.*use dt < 0\.8"):
        a.simulate(a.AOUP(8, box_length=40.0, k=0.0, trap=2.5), 10, 1.0, seed=1, progress=False)
