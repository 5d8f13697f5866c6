"""Estimators of velocity, current and entropy production (physics.md §4) against exact results (§5).

Tolerances are in standard errors (batch means over independent or well-spaced snapshots) and fixed seeds make
every run the same; quantities that are exact for an exact score are checked to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import activescore as a
from activescore import exact
from activescore.estimation import estimate, learning_free_epr, local_epr
from activescore.estimation.statistics import ratio_estimate

N_SE = 5.0  # tolerance in standard errors
D = 2


def within(est, expected, n_se=N_SE, rounding=1e-10):
    """|value − expected| ≤ n_se standard errors (plus a rounding floor for zero-variance estimators)."""
    value, se = est
    assert np.isfinite(se)
    tol = n_se * se + rounding * max(1.0, abs(expected))
    assert abs(value - expected) <= tol, f"{value} vs {expected}: {abs(value - expected) / max(se, 1e-300):.1f} s.e."


def trapped(eps: float, n: int = 128):
    return a.AOUP(n, box_length=400.0, k=0.0, trap=1.0, eps=eps, gamma=2.0, v0=1.5)


@pytest.fixture(scope="module", params=[0.5, 0.0], ids=["eps>0", "eps=0"])
def gaussian(request):
    system = trapped(request.param)
    x, g = exact.gaussian_samples(system, 300, seed=11)
    result = estimate(exact.GaussianScore(system), (x, g), system=system, progress=False, bins=24)
    return system, x, g, result


@pytest.fixture(scope="module")
def equilibrium_run():
    system = a.AOUP(64, packing_fraction=0.4, v0=0.0, eps=0.2, gamma=1.0, k=1.0)
    traj = a.simulate(system, 100_000, 1e-3, seed=5, save_every=500, burn_in=5000, progress=False, n_threads=1)
    return system, traj


@pytest.fixture(scope="module")
def active_run():
    system = a.AOUP(64, packing_fraction=0.4, v0=1.0, eps=0.2, gamma=1.0, k=1.0)
    traj = a.simulate(system, 100_000, 1e-3, seed=6, save_every=500, burn_in=5000, progress=False, n_threads=1)
    return system, traj


# ------------------------------------------------------------------------------------------- exact references
def test_gaussian_reference_closed_forms():
    for eps in (0.5, 0.0):
        s = trapped(eps)
        cov = exact.trapped_aoup_covariance(s)
        A, v0, gam = s.trap, s.v0, s.gamma
        np.testing.assert_allclose(
            cov, [[eps / A + v0**2 / (A * (A + gam)), v0 / (A + gam)], [v0 / (A + gam), 1.0]], rtol=1e-12
        )
        assert np.linalg.det(cov) > 0  # non-degenerate also for eps = 0
        want = D * v0**2 * gam / (eps * (A + gam)) if eps > 0 else D * A
        for form in ("quadratic", "divergence"):
            assert exact.gaussian_epr(s, form=form) == pytest.approx(want, rel=1e-12)
            parts = exact.gaussian_epr(s, form=form, part="x") + exact.gaussian_epr(s, form=form, part="g")
            assert parts == pytest.approx(want, rel=1e-12)
            # E[E[e | x]] = E[e]: the conditional profile α|x|² + β averages to the total (E|x|² = d S_xx)
            beta, alpha_plus_beta = exact.gaussian_conditional_epr(s, np.array([0.0, 1.0]), form=form)
            assert (alpha_plus_beta - beta) * D * cov[0, 0] + beta == pytest.approx(want, rel=1e-12)


def test_gaussian_samples_have_the_stationary_covariance():
    s = trapped(0.5, n=64)
    x, g = exact.gaussian_samples(s, 200, seed=3)
    z = np.stack([x.ravel(), g.ravel()])  # every particle and dimension an independent draw
    cov = exact.trapped_aoup_covariance(s)
    # The sample covariance of n Gaussian draws: var(Ŝ_ij) = (S_ii S_jj + S_ij²)/(n − 1).
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / (z.shape[1] - 1))
    assert np.all(np.abs(np.cov(z) - cov) <= N_SE * se), (np.cov(z) - cov) / se


# ----------------------------------------------------------------------------- trapped Gaussian, exact score
def test_gaussian_epr_both_forms_and_identity(gaussian):
    system, x, g, r = gaussian
    want = exact.gaussian_epr(system)
    if system.eps > 0:
        assert want == pytest.approx(D * system.v0**2 * system.gamma / (system.eps * (system.trap + system.gamma)))
    else:
        assert want == pytest.approx(D * system.trap)
    for form in ("quadratic", "divergence"):
        est = r.epr_per_particle[form]
        assert est.form == form and est.sigma == 0.0
        within(est, want)
        within(r.epr[form], want * system.n_particles)
        for part in ("x", "g"):
            within(r.split[form][part], exact.gaussian_epr(system, form=form, part=part))
        within(r.ratio[form], 1.0)
        assert r.consistent(form, n_se=N_SE)
    within(r.identity.per_particle, want)
    assert r.identity.total.form == "identity" and r.identity.total.sigma is None
    if system.eps > 0:
        within(r.identity.active_work_per_particle, want)
    else:
        assert r.identity.active_work is None
        assert np.all(r.local.quadratic_x == 0) and np.all(r.local.divergence_x == 0)
        np.testing.assert_allclose(r.v_x, system.v0 * g - system.trap * x, rtol=1e-12)  # eps = 0: v_x = b_x


def test_learning_free_epr_standalone_matches_estimate(gaussian):
    system, x, g, r = gaussian
    lf = learning_free_epr(system, (x, g), progress=False)
    assert lf.value == pytest.approx(r.identity.total.value, rel=1e-12)
    value, se = lf
    assert value == lf.total.value and se == pytest.approx(r.identity.total.stderr, rel=1e-9, abs=1e-12)
    within(lf.per_particle, exact.gaussian_epr(system))


def smoothed_gaussian_epr(system, sigma: float, form: str) -> float:
    """The expectation of the per-particle EPR estimated with the score of the σ-smoothed trapped Gaussian, computed
    here in float64 from physics.md §4-5 alone (scipy's Lyapunov solver; nothing from activescore.exact).

    Per dimension z = (x, g) ~ N(0, S), B S + S Bᵀ + 2D = 0; smoothing adds σ²I to the covariance, so the score is
    s = −P z with P = (S + σ²I)⁻¹. Then v_x = b_x − ε s_x and v_g = −γ g − γ s_g are linear in z (rows m_x, m_g):
    quadratic form E|v_x|²/ε + E|v_g|²/γ = m S mᵀ terms; divergence form ∇_g·v_g + v_x·b_x/ε + ∇_x·v_x
    = γ(P_gg − 1) + m_x S b_xᵀ/ε + (−A + ε P_xx). The x terms are dropped when ε = 0."""
    from scipy.linalg import solve_continuous_lyapunov

    trap, v0, gamma, eps = system.trap, system.v0, system.gamma, system.eps
    b = np.array([[-trap, v0], [0.0, -gamma]])
    s = solve_continuous_lyapunov(b, -2 * np.diag([eps, gamma]))
    p = np.linalg.inv(s + sigma**2 * np.eye(2))
    m_x = b[0] + eps * p[0]
    m_g = b[1] + gamma * p[1]
    if form == "quadratic":
        value = m_g @ s @ m_g / gamma + (m_x @ s @ m_x / eps if eps > 0 else 0.0)
    else:
        value = gamma * (p[1, 1] - 1) + ((m_x @ s @ b[0]) / eps - trap + eps * p[0, 0] if eps > 0 else 0.0)
    return D * float(value)


@pytest.mark.parametrize("eps", [0.5, 0.0])
def test_smoothed_gaussian_score_is_labelled_and_biased_as_predicted(eps):
    """A σ-smoothed exact score: each form converges to its own (different) biased value, computed independently."""
    system = trapped(eps)
    x, g = exact.gaussian_samples(system, 300, seed=12)
    sigma = 0.5
    r = estimate(exact.GaussianScore(system, sigma), (x, g), system=system, progress=False)
    assert r.sigma == sigma and "σ=0.5" in r.summary()
    for form in ("quadratic", "divergence"):
        est = r.epr_per_particle[form]
        assert est.sigma == sigma and est.form == form and r.ratio[form].sigma == sigma
        biased = smoothed_gaussian_epr(system, sigma, form)
        assert smoothed_gaussian_epr(system, 0.0, form) == pytest.approx(exact.gaussian_epr(system), rel=1e-12)
        within(est, biased)
        assert abs(biased - exact.gaussian_epr(system)) > 10 * est.stderr  # the test can see the bias
    within(r.identity.per_particle, exact.gaussian_epr(system))  # the identity does not care


def test_mean_velocity_vanishes(gaussian):
    """E[v] = ∫ j = 0 in the steady state (per component, over all particles)."""
    _, _, _, r = gaussian
    for v in (r.v_g, r.v_x):  # (eps = 0: v_x = b_x, whose mean vanishes as well)
        per_frame = v.mean(axis=1)  # (F, 2)
        for c in range(2):
            se = per_frame[:, c].std(ddof=1) / np.sqrt(len(per_frame))
            assert abs(per_frame[:, c].mean()) <= N_SE * se


# -------------------------------------------------------------------------------------------------- maps
def test_radial_profile_matches_exact_conditional_epr(gaussian):
    system, _, _, r = gaussian
    prof = r.radial
    assert prof is not None and prof.outside == 0
    for form in ("quadratic", "divergence"):
        assert prof.integral(form) == pytest.approx(r.epr[form].value, rel=1e-9)
        assert r.map.integral(form) == pytest.approx(r.epr[form].value, rel=1e-9)
        # E[e | x] = α|x|² + β is quadratic in |x|: compare each well-filled bin at its mean |x|².
        alpha_beta = exact.gaussian_conditional_epr(system, np.array([0.0, 1.0]), form=form)
        want = alpha_beta[0] + (alpha_beta[1] - alpha_beta[0]) * prof.mean_r2()
        good = prof.count >= 200
        assert good.sum() >= 8
        err = prof.stderr(form)
        diff = np.abs(prof.per_particle(form) - want)
        tol = N_SE * err + 1e-10 * np.abs(want)
        assert np.all(diff[good] <= tol[good]), (diff / err)[good]
    assert np.sum(prof.density() * prof.measure) == pytest.approx(system.n_particles)


def test_constant_local_value_gives_flat_per_particle_map():
    system = trapped(0.0, n=100)
    x, g = exact.gaussian_samples(system, 50, seed=4)
    u = np.array([0.6, -0.8])

    class Shifted:  # s_g = −g + u: v_g = −γ u, e_i = γ|u|² for every particle
        sigma = None

        def __init__(self):
            self.system = system

        def __call__(self, x, g):
            return None, -g + u

        def divergence_g(self, x, g):
            return np.full(len(x), -2.0)

    r = estimate(Shifted(), (x, g), system=system, progress=False, bins=16)
    e = system.gamma * u @ u
    m = r.map.per_particle("quadratic")
    filled = r.map.count > 0
    np.testing.assert_allclose(m[filled], e, rtol=1e-12)
    assert np.all(np.isnan(m[~filled]))
    np.testing.assert_allclose(r.radial.per_particle("quadratic")[r.radial.count > 0], e, rtol=1e-12)
    assert r.map.integral("quadratic") == pytest.approx(e * system.n_particles, rel=1e-12)
    assert np.sum(r.map.density() * r.map.measure) == pytest.approx(system.n_particles)
    # the current field is ρ × mean v_x per cell and sums to the mean total Σ_i v_x,i
    total_j = (r.map.current() * r.map.measure[..., None]).sum(axis=(0, 1))
    np.testing.assert_allclose(total_j, r.v_x.sum(axis=1).mean(axis=0), rtol=1e-9, atol=1e-9)
    assert r.sigma == 0.0  # sigma None means unsmoothed


def test_periodic_map_covers_the_box_and_integrates_to_total(active_run):
    system, traj = active_run
    r = estimate(exact_like_score(system), traj, progress=False, bins=8, n_threads=1)
    assert r.map.half_width == pytest.approx(system.box_length / 2)
    assert r.map.outside == 0 and r.radial is None
    for form in ("quadratic", "divergence"):
        assert r.map.integral(form) == pytest.approx(r.epr[form].value, rel=1e-9)


# ----------------------------------------------------------------------------------------- simulated systems
def test_equilibrium_exact_score_gives_zero_velocity_and_epr(equilibrium_run):
    system, traj = equilibrium_run
    r = estimate(exact.EquilibriumScore(system, n_threads=1), traj, progress=False, n_threads=1)
    scale = np.max(np.abs(a.forces(system, traj.x[-1])))
    assert np.max(np.abs(r.v_x)) <= 1e-12 * scale
    assert np.max(np.abs(r.v_g)) == 0.0
    assert np.max(np.abs(r.quadratic)) <= 1e-20 * (1 + scale**2) / system.eps
    assert np.max(np.abs(r.divergence)) <= 1e-12 * (1 + scale**2 / system.eps)
    within(r.identity.per_particle, 0.0)
    lf = learning_free_epr(system, traj, progress=False, n_threads=1)
    within(lf.per_particle, 0.0)
    assert r.consistent("quadratic", n_se=N_SE)


def test_learning_free_forms_agree_for_interacting_active_system(active_run):
    system, traj = active_run
    lf = learning_free_epr(system, traj, progress=False, n_threads=1)
    assert lf.per_particle.value > 10 * lf.per_particle.stderr  # a clearly nonzero EPR
    assert lf.forms_agree(N_SE)
    within(lf.per_particle, lf.active_work_per_particle.value, n_se=N_SE * np.sqrt(2))
    # frames and batches
    half = learning_free_epr(system, traj, frames=slice(0, None, 2), n_batches=5, progress=False, n_threads=1)
    assert half.total.n_snapshots == len(range(0, len(traj), 2)) and half.n_batches == 5


# --------------------------------------------------------------------------------------------- result object
def test_keep_fields_off_gives_same_totals_and_frames_select(gaussian):
    system, x, g, r = gaussian
    r2 = estimate(exact.GaussianScore(system), (x, g), system=system, keep_fields=False, progress=False, bins=24)
    assert r2.local is None
    with pytest.raises(ValueError, match="keep_fields"):
        _ = r2.quadratic
    for form in ("quadratic", "divergence"):
        assert r2.epr[form].value == r.epr[form].value
    np.testing.assert_array_equal(r2.map.count, r.map.count)
    sub = estimate(exact.GaussianScore(system), (x, g), system=system, frames=[3, 7, -1], progress=False)
    np.testing.assert_array_equal(sub.frames, [3, 7, len(x) - 1])
    np.testing.assert_allclose(sub.quadratic[1], r.quadratic[7])
    np.testing.assert_array_equal(sub.positions(2), x[-1])
    one = local_epr(exact.GaussianScore(system), x[7], g[7])
    np.testing.assert_allclose(one.quadratic, r.quadratic[7])
    np.testing.assert_allclose(one.divergence, r.divergence[7])


def test_summary_makes_the_learning_free_check_prominent(gaussian):
    system, x, g, r = gaussian
    text = str(r)
    assert "LEARNING-FREE CHECK" in text and "learned/identity" in text and "consistent" in text
    d = r.to_dict()
    assert d["epr"]["quadratic"]["form"] == "quadratic" and d["identity"]["sigma"] is None

    class Wrong(exact.GaussianScore):  # a score that ignores the propulsion's effect on x
        def __call__(self, x, g):
            s_x, s_g = super().__call__(x, g)
            return s_x, -g

        def divergence_g(self, x, g):
            return np.full(len(x), -2.0)

    bad = estimate(Wrong(system), (x, g), system=system, progress=False)
    assert "INCONSISTENT" in str(bad) and not bad.consistent("quadratic")


def test_plots_draw_the_result(gaussian, tmp_path):
    """The plots hold the result's numbers (not just a file): the radial profile's points and exact curve, the
    configuration's colours, and an overview PNG that decodes to a non-blank image with one panel per field."""
    import matplotlib.image

    from activescore import plotting

    system, _, _, r = gaussian
    path = tmp_path / "overview.png"
    fig = plotting.plot_epr_overview(r, path, form="divergence")
    assert len([ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]) >= 5
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 300 and image[..., :3].std() > 0.05

    def exact_profile(rr):
        return exact.gaussian_conditional_epr(system, rr)

    ax = plotting.plot_radial_profile(r.radial, exact=exact_profile)
    points = ax.containers[0].lines[0]
    np.testing.assert_array_equal(points.get_xdata(), r.radial.centers)
    np.testing.assert_array_equal(points.get_ydata(), r.radial.per_particle("quadratic"))
    curve = ax.lines[-1]
    np.testing.assert_allclose(curve.get_ydata(), exact_profile(np.asarray(curve.get_xdata())), rtol=1e-12)
    plotting.save(ax, tmp_path / "radial.png")
    ax = plotting.plot_local_epr(system, r.positions(0), r.quadratic[0], half_width=r.map.half_width)
    np.testing.assert_array_equal(np.asarray(ax.collections[0].get_array()), r.quadratic[0])
    assert ax.get_xlim() == (-r.map.half_width, r.map.half_width)
    plotting.save(ax, tmp_path / "config.png")
    assert matplotlib.image.imread(tmp_path / "config.png")[..., :3].std() > 0.05


# --------------------------------------------------------------------------------------------------- bad input
def exact_like_score(system):
    """A protocol-conforming (not exact) score for any eps > 0 system: s_x = b_x/ε, s_g = −g."""

    class Score:
        sigma = 0.01

        def __init__(self):
            self.system = system

        def __call__(self, x, g, **kwargs):
            return a.forces(system, x, n_threads=1) / system.eps, -g

        def divergence_g(self, x, g, **kwargs):
            return np.full(len(x), -2.0)

        def divergence_x(self, x, g, **kwargs):
            return a.drift_divergence(system, x, n_threads=1) / system.eps

    return Score()


def test_bad_input_is_rejected_naming_the_argument():
    system = trapped(0.5, n=16)
    x, g = exact.gaussian_samples(system, 4, seed=1)
    score = exact.GaussianScore(system)
    with pytest.raises(ValueError, match=r"samples: expected x and g of equal shape"):
        estimate(score, (x[..., :1], g), system=system)
    with pytest.raises(ValueError, match=r"samples: expected x and g of equal shape"):
        estimate(score, (x, g[:, :5]), system=system)
    with pytest.raises(ValueError, match=r"samples: snapshots of 5 particles, but the system has 16"):
        estimate(score, (x[:, :5], g[:, :5]), system=system)
    with pytest.raises(ValueError, match="samples: expected x and g"):
        estimate(score, (x, g[:2]), system=system)
    with pytest.raises(ValueError, match=r"samples: x and g must be finite"):
        estimate(score, (np.where(x > 0, np.nan, x), g), system=system)
    with pytest.raises(ValueError, match=r"samples\.x.*box"):
        estimate(score, (x + system.box_length, g), system=system)
    with pytest.raises(ValueError, match="samples"):
        estimate(score, x, system=system)
    with pytest.raises(ValueError, match="frames"):
        estimate(score, (x, g), system=system, frames=[0, 9])
    other = a.AOUP(16, box_length=400.0, k=0.0, trap=1.0, eps=0.5, gamma=3.0, v0=1.5)
    with pytest.raises(ValueError, match="^score: it is the score of"):
        estimate(exact.GaussianScore(other), (x, g), system=system)
    bigger = trapped(0.5, n=32)
    with pytest.raises(ValueError, match="^score:.*transfer=True"):
        estimate(exact.GaussianScore(bigger), (x, g), system=system)
    with pytest.raises(ValueError, match="^score:.*box_length"):
        estimate(exact.GaussianScore(bigger), (x, g), system=system, transfer=True)
    with pytest.raises(ValueError, match=r"^samples\.g: ABP propulsion vectors must be unit vectors"):
        estimate(score, (x, g), system=a.ABP(16, box_length=400.0))
    with pytest.raises(ValueError, match="^system"):
        learning_free_epr("not a system", (x, g))

    class NoXBlock(exact.GaussianScore):
        def __call__(self, x, g):
            return None, super().__call__(x, g)[1]

    with pytest.raises(ValueError, match="^score: returned s_x=None"):
        estimate(NoXBlock(system), (x, g), system=system)

    class BadShape(exact.GaussianScore):
        def divergence_g(self, x, g):
            return np.zeros((len(x), 2))

    with pytest.raises(ValueError, match="^score.divergence_g"):
        estimate(BadShape(system), (x, g), system=system)

    class NoDivergenceX:
        sigma = 0.0

        def __init__(self):
            self.system = system

        def __call__(self, x, g):
            return score(x, g)

        def divergence_g(self, x, g):
            return score.divergence_g(x, g)

    with pytest.raises(ValueError, match="^score: needs a method divergence_x"):
        estimate(NoDivergenceX(), (x, g), system=system)


def test_trajectory_system_must_match(active_run):
    system, traj = active_run
    other = a.AOUP(64, packing_fraction=0.4, v0=1.0, eps=0.3, gamma=1.0, k=1.0)
    with pytest.raises(ValueError, match="^system:"):
        learning_free_epr(other, traj)
    with pytest.raises(ValueError, match="^score: it is the score of"):
        estimate(exact_like_score(other), traj)


def test_transfer_passes_the_box_length():
    system = trapped(0.5, n=16)
    bigger = trapped(0.5, n=32)
    x, g = exact.gaussian_samples(system, 4, seed=1)
    seen = {}

    class Transferable:  # learned at N = 32, applied at N = 16 (a non-interacting score does not care)
        sigma = 0.0

        def __init__(self):
            self.system = bigger
            self.inner = exact.GaussianScore(system)

        def __call__(self, x, g, box_length=None):
            seen["box_length"] = box_length
            return self.inner(x, g)

        def divergence_g(self, x, g, box_length=None):
            return self.inner.divergence_g(x, g)

        def divergence_x(self, x, g, box_length=None):
            return self.inner.divergence_x(x, g)

    r = estimate(Transferable(), (x, g), system=system, transfer=True, progress=False)
    assert seen["box_length"] == system.box_length
    ref = estimate(exact.GaussianScore(system), (x, g), system=system, progress=False)
    assert r.epr["quadratic"].value == pytest.approx(ref.epr["quadratic"].value)


# -------------------------------------------------------------------------------------- learned score (slow)
@pytest.mark.slow
def test_learned_score_totals_agree_with_identity(active_run):
    """Both forms from a small learned score against each other and the learning-free identity (loose: a small
    network trained briefly is not exact; the identity is the reference)."""
    from activescore import learning

    system, traj = active_run
    score = learning.train_score(
        system, traj, loss="implicit", n_steps=1500, batch_particles=256, seed=0, progress=False
    )
    r = estimate(score, traj, progress=False, n_threads=1)
    print(r)
    assert r.sigma == 0.0  # the implicit loss has no smoothing
    # Systematic: a small network trained briefly misses part of the score (a training and function-class gap).
    # Measured learned/identity 1.010 ± 0.003 (quadratic), 1.001 ± 0.003 (divergence), quadratic/divergence
    # 1.010 ± 0.001; an earlier version measured gaps of 4-5 %. Bar: 4 % systematic plus 5 paired standard errors
    # (batch means), ≈ 5.7 % in all, formerly a fixed 15 %.
    gap = 0.04
    forms = {form: r.ratio[form] for form in ("quadratic", "divergence")}
    both = ratio_estimate(r.quadratic.sum(axis=1), r.divergence.sum(axis=1), r.n_batches, "quadratic/divergence", 0.0)
    print(forms, both)
    for ratio in forms.values():
        assert abs(ratio.value - 1) <= gap + 5 * ratio.stderr, ratio
    assert abs(both.value - 1) <= gap + 5 * both.stderr, both
