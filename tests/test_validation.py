"""Bad input raises ValueError naming the parameter, before any work starts."""

import math

import numpy as np
import pytest

import activescore as a


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_particles=0, packing_fraction=0.5), "n_particles"),
        (dict(n_particles=2.5, packing_fraction=0.5), "n_particles"),
        (dict(n_particles=True, packing_fraction=0.5), "n_particles"),
        (dict(n_particles=10, packing_fraction=0.0), "packing_fraction"),
        (dict(n_particles=10, packing_fraction=-0.1), "packing_fraction"),
        (dict(n_particles=10, packing_fraction=math.nan), "packing_fraction"),
        (dict(n_particles=10, box_length=-3.0), "box_length"),
        (dict(n_particles=10, box_length=math.inf), "box_length"),
        (dict(n_particles=10), "packing_fraction and box_length"),
        (dict(n_particles=10, packing_fraction=0.5, box_length=10.0), "packing_fraction and box_length"),
        (dict(n_particles=10, packing_fraction=0.5, v0=-1.0), "v0"),
        (dict(n_particles=10, packing_fraction=0.5, gamma=0.0), "gamma"),
        (dict(n_particles=10, packing_fraction=0.5, gamma=-1.0), "gamma"),
        (dict(n_particles=10, packing_fraction=0.5, eps=-1e-3), "eps"),
        (dict(n_particles=10, packing_fraction=0.5, eps=math.nan), "eps"),
        (dict(n_particles=10, packing_fraction=0.5, k=-1.0), "k"),
        (dict(n_particles=10, packing_fraction=0.5, trap=-1.0), "trap"),
        (dict(n_particles=10, packing_fraction=0.5, beta=0.0), "beta"),
        (dict(n_particles=10, packing_fraction=0.5, radius=0.0), "radius"),
        (dict(n_particles=10, packing_fraction=0.5, radius=np.ones(9)), "radius"),
        (dict(n_particles=10, packing_fraction=0.5, radius=np.r_[np.ones(9), -1.0]), "radius"),
        (dict(n_particles=10, packing_fraction=0.5, v0="fast"), "v0"),
        (dict(n_particles=10, packing_fraction=0.5, cutoff_tol=0.0), "cutoff_tol"),
    ],
)
def test_aoup_rejects(kwargs, name):
    with pytest.raises(ValueError, match=name):
        a.AOUP(**kwargs)


def test_abp_rejects_negative_rotational_diffusion():
    with pytest.raises(ValueError, match="rotational_diffusion"):
        a.ABP(10, packing_fraction=0.5, rotational_diffusion=-1.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_steps=-1), "n_steps"),
        (dict(n_steps=1.5), "n_steps"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-0.1), "dt"),
        (dict(dt=math.nan), "dt"),
        (dict(seed=-1), "seed"),
        (dict(seed=2**64), "seed"),
        (dict(save_every=0), "save_every"),
        (dict(burn_in=-5), "burn_in"),
        (dict(init="lattice"), "init"),
        (dict(backend="gpu"), "backend"),
        (dict(dtype="float16"), "dtype"),
        (dict(n_threads=-1), "n_threads"),
    ],
)
def test_simulate_rejects(kwargs, name):
    args = dict(n_steps=10, dt=0.1, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        a.simulate(a.mips(16), args.pop("n_steps"), args.pop("dt"), progress=False, **args)


def test_simulate_rejects_non_system():
    with pytest.raises(ValueError, match="system"):
        a.simulate({"v0": 1}, 10, 0.1, seed=0)


def test_state_of_wrong_shape_is_rejected():
    s = a.mips(16)
    other = a.mips(12)
    state = a.simulate(other, 1, 0.1, seed=0, progress=False).final_state
    with pytest.raises(ValueError, match="init"):
        a.simulate(s, 1, 0.1, init=state)


@pytest.mark.parametrize("init", ["lattice", ("system", "state"), np.zeros((16, 2)), 3])
def test_init_of_another_kind_is_a_value_error_naming_it(init):
    # A tuple or an array used to escape as a TypeError (unhashable) from the choice check.
    with pytest.raises(ValueError, match="init must be"):
        a.simulate(a.mips(16), 1, 0.1, init=init, progress=False)


@pytest.mark.parametrize(
    "x, name",
    [
        (np.zeros((15, 2)), "x"),
        (np.zeros((16, 3)), "x"),
        (np.full((16, 2), np.nan), "x"),
        (np.array([["a", "b"]] * 16), "x"),
    ],
)
def test_observables_reject_bad_positions(x, name):
    s = a.mips(16)
    with pytest.raises(ValueError, match=name):
        a.forces(s, x)
    with pytest.raises(ValueError, match=name):
        a.drift_divergence(s, x)


def test_drift_rejects_bad_propulsion():
    s = a.mips(16)
    with pytest.raises(ValueError, match="g"):
        a.drift(s, np.zeros((16, 2)), np.zeros((16, 1)))


def test_systems_round_trip_through_dict():
    s = a.AOUP(5, box_length=9.0, radius=np.linspace(0.5, 1, 5), v0=0.3, gamma=2.0, eps=0.1, beta=None, trap=0.2)
    assert a.system_from_dict(s.to_dict()) == s
    b = a.ABP(8, packing_fraction=0.3, rotational_diffusion=0.7)
    assert a.system_from_dict(b.to_dict()) == b
    assert a.mips(100, 0.5).packing_fraction == pytest.approx(0.5)


def test_with_size_keeps_the_dynamics():
    system = a.mips(100, 0.5, gamma=3e-3)
    other = system.with_size(400, packing_fraction=0.25)
    assert other.n_particles == 400 and abs(other.packing_fraction - 0.25) < 1e-12
    assert {**other.to_dict(), "n_particles": 0, "box_length": 0} == {
        **system.to_dict(),
        "n_particles": 0,
        "box_length": 0,
    }


def test_box_smaller_than_twice_the_interaction_range_is_refused():
    # L = 2.64 against r_c = 2R + ln(1/(tol ln 2))/beta = 3.89: the minimum image cannot count each pair once.
    with pytest.raises(ValueError, match=r"packing_fraction=0.9 .* packing_fraction <= 0.10"):
        a.AOUP(2, packing_fraction=0.9)
    with pytest.raises(ValueError, match=r"box_length=3 .* box_length >= 7.78"):
        a.ABP(4, box_length=3.0)
    system = a.AOUP(2, box_length=2 * a.AOUP(2, box_length=100.0).interaction_range)  # exactly 2 r_c: allowed
    assert system.box_length == pytest.approx(7.7819, abs=1e-3)
    # Without a pair force (k = 0), or with one particle, any box is exact.
    a.AOUP(2, box_length=3.0, k=0.0)
    a.AOUP(1, box_length=3.0, trap=0.5)


def test_minimum_image_force_in_a_box_under_two_cutoffs_would_jump():
    """Why the box check exists: in a box with L < 2 r_c the minimum-image force on a particle flips sign as its
    neighbour crosses the distance L/2, where the periodic sum over images is zero by symmetry; in an allowed box
    the force there is exactly zero (beyond the cutoff)."""
    allowed = a.AOUP(2, box_length=8.0)
    too_small = a.AOUP(2, box_length=8.0)
    object.__setattr__(too_small, "box_length", 2.64)  # bypass the check to show what it prevents

    def force_at(system, dx):
        half = system.box_length / 2
        x = (np.array([[0.0, 0.0], [dx, 0.0]]) + half) % system.box_length - half
        return a.forces(system, x)[0, 0]

    for system in (allowed, too_small):
        below, above = force_at(system, system.box_length / 2 - 1e-3), force_at(system, system.box_length / 2 + 1e-3)
        if system is allowed:
            assert below == 0.0 and above == 0.0
        else:
            assert below < -0.5 and above > 0.5 and below == pytest.approx(-above)
