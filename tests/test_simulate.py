"""simulate(): reproducibility, restarts, backends agreeing, exact finite-dt statistics, GSD round trips."""

import numpy as np
import pytest

import activescore as a


def small_mips(n=200, phi=0.5, **kw):
    return a.mips(n, phi, **kw)


# ---------------------------------------------------------------- reproducibility and restarts


def test_same_seed_same_trajectory_and_frames(cpu_backend):
    s = small_mips()
    t1 = a.simulate(s, 60, 0.1, seed=7, save_every=20, backend=cpu_backend, progress=False)
    t2 = a.simulate(s, 60, 0.1, seed=7, save_every=20, backend=cpu_backend, progress=False)
    assert t1.x.shape == (4, 200, 2) and t1.g.shape == (4, 200, 2)
    assert list(t1.step) == [0, 20, 40, 60]
    np.testing.assert_array_equal(t1.x, t2.x)
    np.testing.assert_array_equal(t1.g, t2.g)
    t3 = a.simulate(s, 60, 0.1, seed=8, save_every=20, backend=cpu_backend, progress=False)
    assert not np.array_equal(t1.x[-1], t3.x[-1])


def test_restart_continues_exactly(cpu_backend):
    s = small_mips(k=1.0, eps=0.01)
    whole = a.simulate(s, 80, 0.1, seed=3, burn_in=10, save_every=80, backend=cpu_backend, progress=False)
    first = a.simulate(s, 30, 0.1, seed=3, burn_in=10, save_every=30, backend=cpu_backend, progress=False)
    second = a.simulate(s, 50, 0.1, init=first.final_state, save_every=50, backend=cpu_backend, progress=False)
    assert second.final_state.step == whole.final_state.step == 90
    np.testing.assert_array_equal(second.final_state.x, whole.final_state.x)
    np.testing.assert_array_equal(second.final_state.q, whole.final_state.q)


@pytest.mark.parametrize("model", ["aoup", "abp"])
def test_thread_count_does_not_change_results(cpu_backend, model):
    s = small_mips(400, 0.6) if model == "aoup" else a.ABP(400, packing_fraction=0.6, v0=0.5, rotational_diffusion=0.1)
    runs = [
        a.simulate(s, 50, 0.1, seed=11, save_every=50, backend=cpu_backend, n_threads=t, progress=False) for t in (1, 2)
    ]
    np.testing.assert_array_equal(runs[0].final_state.x, runs[1].final_state.x)
    np.testing.assert_array_equal(runs[0].final_state.q, runs[1].final_state.q)


@pytest.mark.parametrize("case", ["mips", "poly_small_box", "abp_harmonic_trap", "float32"])
def test_cpp_and_numba_agree(core, case):
    dtype = "float64"
    if case == "mips":
        s, dt, init = small_mips(300, 0.5), 0.1, "cluster"
    elif case == "poly_small_box":
        radius = np.random.default_rng(0).uniform(0.5, 1.2, 12)
        s, dt, init = a.AOUP(12, box_length=9.0, radius=radius, v0=0.3, gamma=0.5, eps=0.01), 0.02, "uniform"
    elif case == "abp_harmonic_trap":
        s, dt, init = (
            a.ABP(150, box_length=40.0, v0=0.5, rotational_diffusion=0.2, trap=0.05, beta=None),
            0.05,
            "uniform",
        )
    else:
        s, dt, init, dtype = small_mips(300, 0.5), 0.1, "cluster", "float32"
    runs = {
        b: a.simulate(s, 300, dt, seed=5, init=init, save_every=300, backend=b, dtype=dtype, progress=False)
        for b in ("cpp", "numba")
    }
    tol = 1e-10 if dtype == "float64" else 2e-3
    dx = runs["cpp"].final_state.x - runs["numba"].final_state.x
    dx -= s.box_length * np.round(dx / s.box_length)
    assert np.max(np.abs(dx)) < tol
    np.testing.assert_allclose(runs["cpp"].final_state.q, runs["numba"].final_state.q, atol=tol, rtol=0)


# ---------------------------------------------------------------- statistics at finite dt (exact)


def _unwrap(x, box_length):
    steps = np.diff(x, axis=0)
    steps -= box_length * np.round(steps / box_length)
    return np.concatenate([x[:1], x[:1] + np.cumsum(steps, axis=0)])


def _discrete_propulsion_sum(decay, n):
    """Σ_{k,l<n} decay^|k−l| for each n in the array."""
    n = np.asarray(n)
    m = np.arange(1, n.max())
    return np.array([k + 2 * np.sum((k - m[: k - 1]) * decay ** m[: k - 1]) for k in n])


def _check_msd(traj, s, dt, eps, v0, decay, components):
    x = _unwrap(traj.x, s.box_length)
    disp2 = np.sum((x - x[0]) ** 2, axis=-1)  # (frames, N), independent across particles
    msd, se = disp2.mean(axis=1), disp2.std(axis=1) / np.sqrt(disp2.shape[1])
    n = traj.step - traj.step[0]
    exact = 4 * eps * n * dt + components * v0**2 * dt**2 * _discrete_propulsion_sum(decay, n)
    assert np.all(np.abs(msd[1:] - exact[1:]) < 5 * se[1:]), (msd, exact, se)


def test_free_aoup_msd_matches_discrete_exact(cpu_backend):
    # The reference itself first: at small dt the discrete sum is the continuous closed form of physics.md §5.
    n = np.array([100, 1000, 3000])
    t = n * 1e-3
    discrete = 2 * 1e-3**2 * _discrete_propulsion_sum(np.exp(-0.5 * 1e-3), n)
    np.testing.assert_allclose(discrete, 4 / 0.5 * (t - (1 - np.exp(-0.5 * t)) / 0.5), rtol=2e-3)
    eps, v0, gamma, dt = 0.05, 1.0, 0.5, 0.05
    s = a.AOUP(4000, box_length=1000.0, v0=v0, gamma=gamma, eps=eps, k=0.0)
    traj = a.simulate(s, 400, dt, seed=1, save_every=40, backend=cpu_backend, progress=False)
    _check_msd(traj, s, dt, eps, v0, np.exp(-gamma * dt), components=2)


def test_free_abp_msd_matches_discrete_exact(cpu_backend):
    eps, v0, dr, dt = 0.05, 1.0, 0.5, 0.05
    s = a.ABP(4000, box_length=1000.0, v0=v0, rotational_diffusion=dr, eps=eps, k=0.0)
    traj = a.simulate(s, 400, dt, seed=2, save_every=40, backend=cpu_backend, progress=False)
    _check_msd(traj, s, dt, eps, v0, np.exp(-dr * dt), components=1)


def _discrete_stationary_covariance(trap, v0, gamma, eps, dt):
    from scipy.linalg import solve_discrete_lyapunov

    decay = np.exp(-gamma * dt)
    m = np.array([[1 - trap * dt, v0 * dt], [0.0, decay]])
    noise = np.diag([2 * eps * dt, 1 - decay**2])
    return solve_discrete_lyapunov(m, noise)


@pytest.mark.parametrize("eps", [0.2, 0.0])
def test_trapped_aoup_covariance_matches_discrete_lyapunov(cpu_backend, eps):
    trap, v0, gamma, dt = 1.0, 1.0, 0.5, 0.05
    s = a.AOUP(2000, box_length=2000.0, v0=v0, gamma=gamma, eps=eps, k=0.0, trap=trap)
    # Start at the origin; a burn-in of 20 relaxation times forgets it.
    start = a.State(s, np.zeros((2000, 2)), np.random.default_rng(0).standard_normal((2000, 2)), 0, 4, dt)
    traj = a.simulate(s, 2000, dt, init=start, burn_in=800, save_every=40, backend=cpu_backend, progress=False)
    exact = _discrete_stationary_covariance(trap, v0, gamma, eps, dt)
    z = np.stack([traj.x, traj.g], axis=-1)  # (frames, N, 2 dims, 2 = (x, g))
    products = np.einsum("fndi,fndj->nij", z, z) / (2 * len(traj))  # per particle: time and dimension average
    mean, se = products.mean(axis=0), products.std(axis=0) / np.sqrt(products.shape[0])
    assert np.all(np.abs(mean - exact) < 5 * se + 1e-12), (mean, exact, se)


def test_propulsion_has_unit_stationary_variance(cpu_backend):
    s = small_mips(3000, 0.3, gamma=0.5)
    traj = a.simulate(s, 100, 0.1, seed=9, save_every=25, backend=cpu_backend, progress=False)
    g2 = np.mean(traj.g**2, axis=(0, 2))  # per particle, independent
    assert abs(g2.mean() - 1.0) < 5 * g2.std() / np.sqrt(len(g2))


# ---------------------------------------------------------------- files


def test_gsd_roundtrip_and_resume(tmp_path, cpu_backend):
    import gsd.hoomd

    s = a.ABP(50, packing_fraction=0.4, v0=0.5, rotational_diffusion=0.3, eps=0.01)
    path = tmp_path / "run.gsd"
    traj = a.simulate(s, 40, 0.05, seed=1, save_every=10, out=path, backend=cpu_backend, progress=False)
    assert not (tmp_path / "run.gsd.partial").exists()
    with gsd.hoomd.open(str(path)) as f:
        assert len(f) == 5 and f[0].configuration.dimensions == 2
        np.testing.assert_allclose(f[-1].particles.position[:, :2], traj.x[-1], atol=1e-4)
        assert f[-1].configuration.step == 40
    back = a.load_trajectory(path)
    assert back.system == s and back.seed == 1 and back.dt == 0.05
    np.testing.assert_array_equal(back.x, traj.x)
    np.testing.assert_array_equal(back.theta, traj.theta)
    more = a.simulate(s, 20, 0.05, init=a.load_state(path), save_every=20, backend=cpu_backend, progress=False)
    whole = a.simulate(s, 60, 0.05, seed=1, save_every=60, backend=cpu_backend, progress=False)
    np.testing.assert_array_equal(more.final_state.x, whole.final_state.x)


def test_trajectory_save_opens_in_freud_conventions(tmp_path):
    import gsd.hoomd

    s = small_mips(64)
    traj = a.simulate(s, 10, 0.1, seed=1, save_every=5, progress=False)
    traj.save(tmp_path / "t.gsd")
    with gsd.hoomd.open(str(tmp_path / "t.gsd")) as f:
        box = f[0].configuration.box
        assert box[0] == pytest.approx(s.box_length) and box[2] == 0.0
        pos = f[0].particles.position
        assert np.all(pos[:, :2] >= -s.box_length / 2) and np.all(pos[:, :2] < s.box_length / 2)
        assert np.all(pos[:, 2] == 0.0)


# ---------------------------------------------------------------- blow-ups keep what was written


def collision(backend, tmp_path=None, dtype="float64"):
    """Two particles driven into each other with a stiff harmonic repulsion: blows up once they overlap."""
    s = a.AOUP(2, box_length=20.0, v0=1.0, gamma=1e-9, k=1e4, beta=None)
    start = a.State(s, np.array([[-3.0, 0.0], [3.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]]), 0, 0, 0.1)
    out = None if tmp_path is None else tmp_path / "boom.gsd"
    return a.simulate(s, 200, 0.1, init=start, save_every=5, backend=backend, dtype=dtype, out=out, progress=False)


def test_blow_up_raises_with_step_and_keeps_frames(any_backend, tmp_path):
    with pytest.raises(a.SimulationError, match="blow-up at step") as info:
        collision(any_backend, tmp_path)
    err = info.value
    assert 15 < err.step < 40  # they meet after about 20 steps of 0.1
    assert len(err.trajectory) == err.step // 5 + 1
    assert err.trajectory.final_state.step == err.step  # the last good state, before the failing step
    assert np.all(np.isfinite(err.trajectory.final_state.x))
    back = a.load_trajectory(tmp_path / "boom.gsd")
    np.testing.assert_array_equal(back.x, err.trajectory.x)


def test_non_finite_state_is_rejected_or_a_blow_up(cpu_backend):
    s = a.AOUP(3, box_length=10.0, v0=1.0, gamma=1.0, k=0.0)
    x = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    x_nan = x.copy()
    x_nan[1, 0] = np.nan
    with pytest.raises(ValueError, match="init.x"):
        a.simulate(s, 5, 0.1, init=a.State(s, x_nan, np.zeros((3, 2)), 0, 0, 0.1), backend=cpu_backend)
    # A finite but absurd propulsion overflows the first move: caught at step 0, nothing saved after it.
    q = np.array([[0.0, 0.0], [1e308, 0.0], [0.0, 0.0]])
    with pytest.raises(a.SimulationError, match="step 0: particle 1") as info:
        a.simulate(s, 5, 0.1, init=a.State(s, x, q, 0, 0, 0.1), backend=cpu_backend, progress=False)
    assert info.value.step == 0


def test_a_dense_uniform_start_runs_on_two_threads_as_on_one():
    # φ = 0.9 from a uniform start: deep overlaps relax with lists that last one step, so the adaptive skin halves
    # at many rebuilds. Every thread must decide staleness on the skin of the step it is in (a thread already in
    # the next rebuild changes it), else the team's control flow splits and the run aborts or diverges.
    system = a.mips(1024, 0.9)
    runs = [
        a.simulate(system, 3000, 0.1, seed=17, save_every=3000, n_threads=threads, progress=False) for threads in (1, 2)
    ]
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    np.testing.assert_array_equal(runs[0].g, runs[1].g)
