"""The model-free EPR from trajectories alone (physics.md §8): exact cases, the TUR bound, the importers, bad input.

Statistical checks are stated in standard errors that the estimators compute (batch means over frame pairs);
seeds are fixed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import activescore as a
from activescore.modelfree import (
    estimate_model_free,
    tracks_from_arrays,
    tracks_from_csv,
    tracks_from_dataframe,
    tracks_from_trajectory,
    tur_lower_bound,
)

#: Deviations from an exact value beyond this many standard errors fail a test.
N_SE = 4.0


def trapped_aoup(n: int) -> a.AOUP:
    # EPR = d v0² γ / (ε (A + γ)) = 48 per particle (physics.md §5): large, so few frames resolve it.
    return a.AOUP(n, box_length=400.0, k=0.0, trap=1.0, eps=0.25, gamma=2.0, v0=3.0)


def trapped_aoup_epr(system: a.AOUP) -> float:
    return 2 * system.v0**2 * system.gamma / (system.eps * (system.trap + system.gamma))


def trapped_aoup_chain_value(system: a.AOUP, dt: float) -> float:
    """The model-free estimator's large-data value on the simulated chain at Δt = dt (physics.md §8): per dimension,
    M, Q the Euler–Maruyama / exact-OU update and noise of (x, g), S = M S Mᵀ + Q, r = ½[S(M − I)ᵀ + M S(M − I)ᵀ + Q],
    EPR = Σ_b r_bᵀS⁻¹r_b / (dt² D̂_b) with D̂_b = Q_bb / (2 dt) (what the increments give)."""
    from scipy.linalg import solve_discrete_lyapunov

    decay = math.exp(-system.gamma * dt)
    update = np.array([[1 - system.trap * dt, system.v0 * dt], [0.0, decay]])
    noise = np.diag([2 * system.eps * dt, 1 - decay**2])
    cov = solve_discrete_lyapunov(update, noise)
    step = update - np.eye(2)
    r = 0.5 * (cov @ step.T + update @ cov @ step.T + noise)
    return 2 * sum(r[:, b] @ np.linalg.solve(cov, r[:, b]) / (dt * dt * noise[b, b] / (2 * dt)) for b in (0, 1))


def free_abp(n: int) -> a.ABP:
    return a.ABP(n, packing_fraction=0.1, v0=3.0, rotational_diffusion=1.0, eps=0.25, k=0.0)


def rotating_trap(n: int, n_frames: int, dt: float, seed: int, spin: float = 1.0, trap: float = 1.0, eps: float = 0.5):
    """Overdamped particles in a trap with a rotational flow, dx = (−A x + Ω x^⊥) dt + √(2ε) dW (Euler–Maruyama).

    The stationary density is the isotropic Gaussian of variance ε/A (the rotation commutes with the trap), the score
    −A x/ε, so v = Ω x^⊥ and EPR = Ω² E|x|²/ε = 2Ω²/A per particle: a positions-only Markov case with a current."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, math.sqrt(eps / trap), (n, 2))
    out = np.empty((n_frames, n, 2))
    for t in range(n_frames):
        out[t] = x
        turn = np.stack([-x[:, 1], x[:, 0]], axis=1)
        x = x + dt * (-trap * x + spin * turn) + math.sqrt(2 * eps * dt) * rng.standard_normal((n, 2))
    return out, 2 * spin**2 / trap


def check_exact(result, exact: float, n_se: float = N_SE) -> None:
    est = result.epr_per_particle
    assert np.isfinite(est.stderr) and est.stderr > 0
    assert abs(est.value - exact) <= n_se * est.stderr, (est, exact)


def test_trapped_aoup_exact_defaults():
    system = trapped_aoup(96)
    traj = a.simulate(system, 600, 0.005, seed=11, save_every=1, burn_in=1500)
    result = estimate_model_free(traj)
    exact = trapped_aoup_epr(system)
    check_exact(result, exact)
    check_exact(result, trapped_aoup_chain_value(system, 0.005))  # 47.52: the chain at Δt = dt (physics.md §8)
    assert result.epr_per_particle.stderr < 0.05 * exact  # the check above has power
    # D estimated from the increments (drift removed): ε and γ.
    assert result.diffusion["x"] == pytest.approx(system.eps, rel=0.03)
    assert result.diffusion["g"] == pytest.approx(system.gamma, rel=0.03)
    assert result.quadratic.shape == (600, 96) and np.all(result.quadratic >= 0)
    assert "Model-free entropy production" in str(result) and result.warning is None


def test_free_abp_exact_defaults():
    system = free_abp(96)
    traj = a.simulate(system, 600, 0.005, seed=12, save_every=1, burn_in=500)
    result = estimate_model_free(traj)
    exact = system.v0**2 / system.eps
    check_exact(result, exact)
    assert result.epr_per_particle.stderr < 0.05 * exact
    # Free ABPs: v_θ = −D_r s_θ = 0, so the θ share is zero within its error.
    assert abs(result.split["g"].value) <= N_SE * result.split["g"].stderr + 1e-3 * exact
    assert result.diffusion["g"] == pytest.approx(system.rotational_diffusion, rel=0.05)


def test_per_particle_fields_follow_the_exact_ones():
    """Trapped AOUPs have an exact (model-based) per-particle field e_i = v_i·D⁻¹v_i (the chain's Gaussian score):
    the model-free e_i on the same frames correlate with it, particle by particle and binned in space."""
    system = trapped_aoup(64)
    traj = a.simulate(system, 300, 0.005, seed=13, save_every=1, burn_in=1500)
    free = estimate_model_free(traj)
    exact = a.estimate(a.exact.GaussianScore(system, dt=0.005), (traj.x, traj.g), system=system, keep_fields=True)
    model_free, model_based = free.quadratic, exact.quadratic[: len(free.quadratic)]
    assert np.corrcoef(model_free.ravel(), model_based.ravel())[0, 1] >= 0.9
    half = 2.0  # the cloud's extent is about 1
    mean, count, _, _ = free.per_particle_map(bins=6, bounds=(-half, half, -half, half))
    edges = np.linspace(-half, half, 7)
    positions = free.positions.reshape(-1, 2)
    exact_map = np.histogram2d(*positions.T, bins=(edges, edges), weights=model_based.ravel())[0]
    filled = count >= 20
    assert np.corrcoef(mean[filled], exact_map[filled] / count[filled])[0, 1] >= 0.9


@pytest.mark.parametrize("model", ["aoup", "abp"])
def test_exact_within_three_percent(model):
    """The issue's targets: within 3 % of the exact EPR at Δt = dt, the 3 % being at least 3 standard errors."""
    if model == "aoup":
        system = trapped_aoup(256)
        exact = trapped_aoup_epr(system)
    else:
        system = free_abp(256)
        exact = system.v0**2 / system.eps
    traj = a.simulate(system, 4000, 0.005, seed=21, save_every=1, burn_in=2000)
    result = estimate_model_free(traj, keep_fields=False)
    est = result.epr_per_particle
    assert abs(est.value - exact) <= 0.03 * exact, est
    assert 0.03 * exact >= 3 * est.stderr, est
    # Beyond the SDE's value: the estimator's exact value on the simulated chain (−1 % at this Δt for the AOUPs;
    # free ABPs: v0²/ε ((1 + E[cos Δθ])/2)², the trapezoid's average of the heading over the step).
    if model == "aoup":
        chain = trapped_aoup_chain_value(system, 0.005)
    else:
        chain = exact * ((1 + math.exp(-system.rotational_diffusion * 0.005)) / 2) ** 2
    check_exact(result, chain)


def test_positions_only_markov_and_tur_bound():
    """Positions alone with translational noise and a current: the estimator finds the EPR and the TUR bound lies
    below it and above 0."""
    x, exact = rotating_trap(32, 1000, 0.01, seed=5)
    tracks = tracks_from_arrays(x, frame_interval=0.01)
    result = estimate_model_free(tracks)
    check_exact(result, exact)
    tur = tur_lower_bound(tracks)
    bound = tur.bound_per_particle
    assert bound.value <= exact + N_SE * bound.stderr, bound
    assert bound.value > N_SE * bound.stderr, bound  # there is a current: the bound sees it
    assert "LOWER BOUND" in str(tur) and tur.warning is None and tur.msd_ratio < 2.5


def test_tur_bound_below_the_epr_of_hidden_propulsion():
    """Trapped AOUPs with ε = 0 (EPR = d A per particle, physics.md §5), propulsion hidden: the bound is below."""
    system = a.AOUP(64, box_length=400.0, k=0.0, trap=1.0, eps=0.0, gamma=2.0, v0=1.5)
    traj = a.simulate(system, 600, 0.01, seed=6, save_every=1, burn_in=1000)
    with pytest.warns(UserWarning, match="nearly ballistically between frames"):
        tur = tur_lower_bound(traj)  # ε = 0: the positions do not diffuse, and the TUR says so
    bound = tur.bound_per_particle
    assert bound.value <= 2 * system.trap + N_SE * bound.stderr, bound
    assert tur.msd_ratio > 3.5
    positions = tracks_from_arrays(traj.x, frame_interval=0.01, box_length=system.box_length)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate_model_free(positions, keep_fields=False)  # positions alone are not the state here
    assert any("not the state" in str(w.message) and "tur_lower_bound" in str(w.message) for w in caught)
    # With the propulsion observed, the positions' increments are all drift: the estimator says so, and with the
    # positions declared noiseless the propulsion block alone gives the EPR, d A per particle (physics.md §5).
    with pytest.warns(UserWarning, match="block 'x' .* carries no noise"):
        estimate_model_free(traj, keep_fields=False)
    check_exact(estimate_model_free(traj, diffusion={"x": 0}, keep_fields=False), 2 * system.trap)


def test_interacting_soft_disks_against_the_identity():
    """Interacting active soft disks (ε = 0.1, γ = 1, φ = 0.5): the model-free EPR (the projection of v* on the
    features, so below the EPR up to noise) within 3 standard errors plus 10 % of the learning-free identity."""
    system = a.AOUP(64, packing_fraction=0.5, eps=0.1, gamma=1.0, v0=0.5, beta=None)
    traj = a.simulate(system, 800, 0.005, seed=7, save_every=1, burn_in=4000)
    identity = a.learning_free_epr(system, traj).per_particle
    result = estimate_model_free(traj, diffusion={"x": system.eps, "g": system.gamma})
    est = result.epr_per_particle
    se = math.hypot(est.stderr, identity.stderr)
    assert est.value <= identity.value + 3 * se, (est, identity)
    assert est.value >= 0.9 * identity.value - 3 * se, (est, identity)


@pytest.mark.slow
def test_interacting_soft_disks_within_five_percent_of_the_identity():
    """The issue's target at N = 1024 (physics.md §8: 0.98 measured): model-free/identity within 5 %, the 5 % being at
    least 2 standard errors of the ratio, and the Δt = 10 dt row below the Δt = dt one (the frame-spacing bias)."""
    system = a.AOUP(1024, packing_fraction=0.5, eps=0.1, gamma=1.0, v0=0.5, beta=None)
    traj = a.simulate(system, 1000, 0.005, seed=1, save_every=1, burn_in=10_000)
    identity = a.learning_free_epr(system, traj).per_particle
    result = estimate_model_free(traj, keep_fields=False)
    ratio = result.epr_per_particle.value / identity.value
    se = math.hypot(result.epr_per_particle.stderr / identity.value, ratio * identity.stderr / identity.value)
    assert abs(ratio - 1) <= 0.05 and 0.05 >= 2 * se, (ratio, se)
    sparse = estimate_model_free(traj, lag=10, keep_fields=False).epr_per_particle.value / identity.value
    assert sparse < ratio


def test_long_frame_spacing_warns():
    system = free_abp(32)
    traj = a.simulate(system, 400, 0.02, seed=8, save_every=1, burn_in=100)
    with pytest.warns(UserWarning, match="λΔt"):
        result = estimate_model_free(traj, lag=10)
    assert result.warning is not None and result.dt == pytest.approx(0.2)
    assert result.relaxation_rate * result.dt > 0.1


def trackpy_frame(traj, pixel_size: float, drop: float, seed: int):
    """The trajectory as trackpy would link it: rows (frame, particle, x, y, angle) in pixels, shuffled, with tracks
    that start late and end early (a fraction ``drop`` of the (frame, particle) rows removed in runs)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_frames, n = traj.x.shape[:2]
    frame, particle = np.meshgrid(np.arange(n_frames), np.arange(n), indexing="ij")
    keep = np.ones((n_frames, n), dtype=bool)
    for m in rng.choice(n, size=int(drop * n), replace=False):
        start = rng.integers(1, n_frames // 2)
        keep[:start, m] = False  # appears late
        keep[rng.integers(n_frames // 2, n_frames) :, m] = False  # leaves early
    table = {
        "frame": frame[keep],
        "particle": particle[keep] + 100,
        "x": traj.x[..., 0][keep] / pixel_size,
        "y": traj.x[..., 1][keep] / pixel_size,
        "mass": rng.uniform(size=keep.sum()),
    }
    if traj.theta is not None:
        table["angle"] = np.rad2deg(traj.theta[keep])
    df = pd.DataFrame(table)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True), keep


def test_trackpy_dataframe_import_and_estimate(tmp_path):
    system = free_abp(64)
    traj = a.simulate(system, 300, 0.005, seed=9, save_every=1, burn_in=200)
    df, keep = trackpy_frame(traj, pixel_size=0.5, drop=0.25, seed=1)
    tracks = tracks_from_dataframe(
        df,
        frame_interval=0.005,
        pixel_size=0.5,
        angle_unit="deg",
        box_length=system.box_length,
        length_unit="µm",
        time_unit="s",
    )
    assert tracks.kind == "angle" and tracks.x.shape == (301, 64, 2)
    np.testing.assert_array_equal(tracks.present, keep)
    np.testing.assert_allclose(tracks.x[keep], traj.x[keep], atol=1e-9)
    result = estimate_model_free(tracks)
    assert result.mean_particles < 64  # only particles present in both frames of a pair
    check_exact(result, system.v0**2 / system.eps)
    assert "per s" in str(result)
    # A frame the camera missed: no pair across the gap.
    gap = tracks_from_dataframe(
        df[df.frame != 150], frame_interval=0.005, pixel_size=0.5, angle_unit="deg", box_length=system.box_length
    )
    assert gap.n_frames == 300 and estimate_model_free(gap, keep_fields=False).n_pairs == result.n_pairs - 2
    with warnings.catch_warnings(record=True) as caught:  # angles in degrees read as radians
        warnings.simplefilter("always")
        estimate_model_free(tracks_from_dataframe(df, frame_interval=0.005), keep_fields=False)
    assert any("degrees read as radians" in str(w.message) for w in caught)
    # The same table through a CSV file (trackpy's DataFrame.to_csv).
    path = tmp_path / "tracks.csv"
    df.to_csv(path, index=False)
    again = tracks_from_csv(path, frame_interval=0.005, pixel_size=0.5, angle_unit="deg", box_length=system.box_length)
    np.testing.assert_allclose(again.x[keep], tracks.x[keep])


def test_open_field_of_view_leaves_the_edge_out():
    """A window cut out of a periodic run, analysed as an open field of view: same EPR as the whole box."""
    system = free_abp(160)
    traj = a.simulate(system, 300, 0.005, seed=10, save_every=1, burn_in=200)
    half = system.box_length / 2
    window = 0.7 * half
    # Wrapping happens at the box's edge, outside the window: inside it the positions are those of open space.
    inside = (np.abs(traj.x) < window).all(axis=2)
    tracks = tracks_from_arrays(
        np.where(inside[..., None], traj.x, np.nan),
        frame_interval=0.005,
        angle=traj.theta,
        present=inside,
        field_of_view=(-window, window, -window, window),
    )
    result = estimate_model_free(tracks)
    check_exact(result, system.v0**2 / system.eps)
    assert result.mean_particles < inside.sum(axis=1).mean()  # the edge band was left out


def test_frame_features_recomputed_beyond_the_cache_budget(monkeypatch):
    """With no room to keep frame features, the per-particle pass recomputes them: the same numbers."""
    from activescore.modelfree import pairs

    traj = a.simulate(free_abp(16), 40, 0.01, seed=3, save_every=1)
    kept = estimate_model_free(traj)
    monkeypatch.setattr(pairs, "CACHE_BYTES", 0)
    assert estimate_model_free(traj).quadratic is None  # by default only when they cost no second feature pass
    recomputed = estimate_model_free(traj, keep_fields=True)
    assert recomputed.epr_per_particle.value == kept.epr_per_particle.value
    np.testing.assert_array_equal(recomputed.quadratic, kept.quadratic)


def test_tracks_from_trajectory_metadata():
    system = free_abp(8)
    traj = a.simulate(system, 30, 0.01, seed=1, save_every=3)
    tracks = tracks_from_trajectory(traj)
    assert tracks.frame_interval == pytest.approx(0.03) and tracks.box_length == system.box_length
    assert tracks.angle is not None and tracks.kind == "angle"


def test_bad_input_is_one_line_naming_it():
    import pandas as pd

    good = {"frame": [0, 0, 1, 1], "particle": [1, 2, 1, 2], "x": [0.0, 1.0, 0.1, 1.1], "y": [0.0, 0.0, 0.1, 0.1]}
    cases = [
        (
            lambda: tracks_from_dataframe(pd.DataFrame({"frame": [0], "x": [0.0], "y": [0.0]}), frame_interval=1.0),
            "lacks column.*'particle'",
        ),
        (
            lambda: tracks_from_dataframe(pd.DataFrame({**good, "particle": [1, 1, 1, 2]}), frame_interval=1.0),
            "particle id 1 appears more than once in frame 0",
        ),
        (
            lambda: tracks_from_dataframe(pd.DataFrame({**good, "x": [0.0, np.nan, 0.1, 1.1]}), frame_interval=1.0),
            "NaN position in row 1",
        ),
        (
            lambda: tracks_from_dataframe(pd.DataFrame({k: v[:2] for k, v in good.items()}), frame_interval=1.0),
            "single frame",
        ),
        (lambda: tracks_from_dataframe(pd.DataFrame(good), frame_interval=0.0), "frame_interval must be in"),
        (lambda: tracks_from_dataframe(pd.DataFrame(good), frame_interval=-1.0), "frame_interval must be in"),
        (lambda: tracks_from_arrays(np.zeros((1, 4, 2)), frame_interval=1.0), "at least 2 frames"),
        (lambda: tracks_from_arrays(np.zeros((3, 4)), frame_interval=1.0), r"x must have shape \(\*, \*, 2\)"),
        (lambda: tracks_from_arrays(np.full((3, 4, 2), np.nan), frame_interval=1.0), "x is NaN or infinite in frame 0"),
        (
            lambda: tracks_from_arrays(np.zeros((3, 4, 2)), frame_interval=1.0, angle=np.zeros((3, 5))),
            r"angle must have shape \(3, 4\)",
        ),
        (
            lambda: estimate_model_free(tracks_from_arrays(np.zeros((3, 4, 2)), frame_interval=1.0), lag=0),
            "lag must be in",
        ),
        (lambda: estimate_model_free(np.zeros((3, 4, 2))), "tracks must be activescore Tracks"),
        (
            lambda: estimate_model_free(tracks_from_arrays(np.zeros((3, 4, 2)), frame_interval=1.0), lag=5),
            "no two frames are lag = 5",
        ),
        (
            lambda: estimate_model_free(tracks_from_arrays(np.zeros((3, 4, 2)), frame_interval=1.0), diffusion=-1.0),
            "diffusion must be in",
        ),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert "\n" not in str(info.value), str(info.value)
