"""The validation every trained Score carries: held-out loss, learned EPR against the identity, a lower bound.

**Lower bound from the implicit loss.** For one block z_b of a particle's coordinates (x_i or g_i, dimension d)
the implicit loss J_b(s) = E[|s_b|² + 2 ∇_b·s_b] equals E|s_b − s*_b|² − E|s*_b|² (integrate by parts), so
−J_b(s) ≤ E|s*_b|² for every s, with equality at the true score s*. The EPR is a sum of such Fisher
informations plus terms that need no score (physics.md §4, v = b − D s*):

    E|v_g|²/γ = γ E|g + s*_g|² = γ (E|s*_g|² − d)                  (g ~ N(0, I): E|g|² = d, E g·s*_g = −d)
    E|v_θ|²/D_r = D_r E|s*_θ|²                                     (ABPs: b_θ = 0)
    E|v_x|²/ε = E|b_x|²/ε − 2 E b_x·s*_x + ε E|s*_x|² = E|b_x|²/ε + 2 E ∇_x·b_x + ε E|s*_x|²

so replacing each E|s*_b|² by −J_b gives a lower bound on the EPR that holds for any network, however trained:

    EPR ≥ Σ_i ∇_q·b_q − rate J_q,i [+ |b_x,i|²/ε + 2 ∇_{x_i}·b_x,i − ε J_x,i  when ε > 0],

with ∇_q·b_q − rate J_q = γ(−J_g − d) for AOUPs and −D_r J_θ for ABPs. It is tight when the score is exact and
loose by ε E|s_x − s*_x|² + rate E|s_q − s*_q|² otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..estimation import estimate
from ..estimation.result import N_STANDARD_ERRORS, RELATIVE_TOLERANCE
from ..estimation.statistics import mean_stderr
from ..observables import drift, drift_divergence
from .data import Snapshots, gather_tokens
from .network import ScoreNetConfig
from .notices import warn
from .settings import LOSSES, TrainConfig
from .step import make_loss
from .stopping import NOISE_LEVELS

__all__ = [
    "NOISE_LEVELS",
    "TRAINING_ADVICE",
    "HeldOut",
    "NotValidated",
    "Validation",
    "epr_check",
    "implicit_lower_bound",
    "validate",
    "validation_block",
]


def implicit_lower_bound(system, score, x: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """The lower bound on the EPR per particle from the implicit loss of ``score`` (module docstring), as
    ``(value, standard error over frames)``.

    ``score`` follows the score protocol: ``score(x, g) -> (s_x or None, s_g)`` and ``divergence_g(x, g)``
    (and ``divergence_x`` when ε > 0), per particle. ``x``, ``g``: stationary frames (F, N, 2).
    """
    x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
    per_frame = []
    for xf, gf in zip(x, g, strict=True):
        s_x, s_g = score(xf, gf)
        j_g = np.sum(np.reshape(s_g, (len(xf), -1)) ** 2, axis=-1) + 2.0 * score.divergence_g(xf, gf)
        # E[|b_q|²/rate + 2 ∇_q·b_q] = ∇_q·b_q + (the identity's propulsion block), exactly over the stationary
        # propulsion marginal (which the positions do not change).
        bound = (
            system.propulsion_drift_divergence + system.stationary_propulsion_identity - system.propulsion_rate * j_g
        )
        if system.eps > 0:
            b_x, _ = drift(system, xf, gf)
            j_x = np.sum(s_x**2, axis=-1) + 2.0 * score.divergence_x(xf, gf)
            bound = bound + np.sum(b_x**2, axis=-1) / system.eps + 2.0 * drift_divergence(system, xf) - system.eps * j_x
        per_frame.append(bound.mean())
    return mean_stderr(per_frame, len(per_frame))  # independent held-out frames


def _drift_scale(system, x, g) -> float:
    """E[b·D⁻¹b] per particle: the size of the identity's terms, the scale for an EPR that is ≈ 0."""
    total = 0.0
    for xf, gf in zip(x, g, strict=True):
        b_x, _ = drift(system, xf, gf)
        b_q = system.propulsion_drift(gf)
        total += np.sum(b_q**2) / system.propulsion_rate + (np.sum(b_x**2) / system.eps if system.eps > 0 else 0.0)
    return total / (len(x) * x.shape[1])


class Validation:
    """A Score's report on frames held out of its training (a dict of plain numbers underneath, saved with it).

    Keys: ``frames`` (held-out frames), ``loss`` (held-out loss of the returned weights), ``loss_name``,
    ``best_step``, ``steps`` (steps trained), ``stopped_early``; and (AOUPs and ABPs) ``epr`` (form → [value, stderr] per
    particle), ``identity`` ([value, stderr] per particle), ``ratio`` (form → [learned/identity, stderr]),
    ``lower_bound`` ([value, stderr] per particle), ``scale`` and ``consistent`` (bool; judged against the finite-dt
    ceiling where it applies); with ε = 0 and the frames' time step known, ``finite_dt`` (``dt``, ``ceiling``, and per
    form ``of_ceiling``, ``corrected`` per particle, ``corrected_ratio``; physics.md §5).
    """

    def __init__(self, record: dict):
        self.record = dict(record)

    def __getitem__(self, key):
        return self.record[key]

    def get(self, key, default=None):
        return self.record.get(key, default)

    def to_dict(self) -> dict:
        return dict(self.record)

    @property
    def consistent(self) -> bool | None:
        """Whether the learned EPR agrees with the identity on the held-out frames (None: not judged)."""
        return self.record.get("consistent")

    def ratio(self, form: str = "quadratic") -> tuple[float, float]:
        return tuple(self.record["ratio"][form])

    def __str__(self) -> str:
        r = self.record
        lines = [f"Score validation on {r['frames']} held-out frames"]
        stop = f", stopped early (best at step {r['best_step']})" if r.get("stopped_early") else ""
        trained = f"{r['steps']} steps{stop}" if r["steps"] else "no training"
        if r.get("weights", "last") != "last":
            trained += f"; weights of the {r['weights']}"
        lines.append(f"  held-out {r['loss_name']} loss   {r['loss']:.5g}   ({trained})")
        if "epr" in r:
            ident = r["identity"]
            lines.append(f"  EPR per particle      identity {ident[0]:.5g} ± {ident[1]:.2g}")
            for form, (value, se) in r["epr"].items():
                ratio, ratio_se = r["ratio"][form]
                lines.append(
                    f"    learned, {form:<11}{value:.5g} ± {se:.2g}   learned/identity {ratio:.4g} ± {ratio_se:.2g}"
                )
            bound = r["lower_bound"]
            lines.append(f"    lower bound (implicit loss) {bound[0]:.5g} ± {bound[1]:.2g}")
            ceiling = r.get("finite_dt")
            if ceiling is not None:
                value, se = ceiling["ceiling"]
                lines.append(
                    f"  finite-dt ceiling (dt = {ceiling['dt']:g}): a perfect score of the simulated chain reaches "
                    f"learned/identity {value:.4g} ± {se:.2g} (physics.md §5)"
                )
                for form, (value, se) in ceiling["of_ceiling"].items():
                    corrected, corrected_se = ceiling["corrected_ratio"][form]
                    lines.append(
                        f"    learned/ceiling, {form:<11}{value:.4g} ± {se:.2g}   corrected/identity "
                        f"{corrected:.4g} ± {corrected_se:.2g}"
                    )
            target = "the finite-dt ceiling" if ceiling is not None else "the learning-free identity"
            verdict = "consistent" if r["consistent"] else "INCONSISTENT"
            lines.append(
                f"  verdict: {verdict} with {target} (within max({N_STANDARD_ERRORS:g} s.e., {RELATIVE_TOLERANCE:.0%}))"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Validation({self.record!r})"


class NotValidated(Validation):
    """The validation block of a score trained with ``holdout`` > 0 on too few frames to hold any out: why it
    was not validated. Keys: ``frames`` (0), ``steps``, ``not_validated`` (the reason)."""

    def __str__(self) -> str:
        return f"Score not validated: {self.record['not_validated']}"


def validation_block(record: dict) -> Validation:
    """The :class:`Validation` (or :class:`NotValidated`) of a saved validation record."""
    return NotValidated(record) if "not_validated" in record else Validation(record)


def epr_check(system, score, x: np.ndarray, g: np.ndarray, dt: float | None = None) -> dict:
    """The learned EPR (both forms) against the learning-free identity on frames ``x``, ``g`` (F, N, 2), the
    implicit-loss lower bound and the verdict, as plain numbers (per particle). With ε = 0 and the frames' time step
    ``dt`` also the finite-dt ceiling (physics.md §5), and the verdict judges the score against it: a score at the
    ceiling is consistent, whatever the time step takes from learned/identity."""
    result = estimate(score, (x, g), system=system, keep_fields=False, bins=1, progress=False, dt=dt)
    forms = ("quadratic", "divergence")
    epr = {f: [result.epr_per_particle[f].value, result.epr_per_particle[f].stderr] for f in forms}
    ratio = {f: [result.ratio[f].value, result.ratio[f].stderr] for f in forms}
    ident = result.identity.per_particle
    scale = abs(ident.value)
    if not (np.isfinite(ident.stderr) and scale > N_STANDARD_ERRORS * ident.stderr):
        scale = _drift_scale(system, x, g)  # identity ≈ 0 (equilibrium): judge against the drift's size
    difference = result.difference["quadratic"]
    record: dict = {}
    ceiling = result.finite_dt
    if ceiling is not None:
        difference, scale = ceiling.difference["quadratic"], abs(ceiling.chain_identity.value)
        record["finite_dt"] = {
            "dt": ceiling.dt,
            "ceiling": list(ceiling.ceiling),
            "of_ceiling": {f: list(ceiling.of_ceiling[f]) for f in forms},
            "corrected": {f: list(ceiling.corrected[f]) for f in forms},
            "corrected_ratio": {f: list(ceiling.corrected_ratio[f]) for f in forms},
        }
    allowed = max(
        N_STANDARD_ERRORS * (difference.stderr if np.isfinite(difference.stderr) else 0.0), RELATIVE_TOLERANCE * scale
    )
    return {
        "epr": epr,
        "identity": [ident.value, ident.stderr],
        "ratio": ratio,
        "lower_bound": list(implicit_lower_bound(system, score, x, g)),
        "scale": scale,
        "consistent": bool(abs(difference.value) <= allowed),
        **record,
    }


TRAINING_ADVICE = "train longer or on more frames, or check sigma (see score.validation)"


def validate(
    system, score, x: np.ndarray, g: np.ndarray, loss: dict, advice: str = TRAINING_ADVICE, dt: float | None = None
) -> Validation:
    """The validation block of ``score`` on held-out frames ``x``, ``g`` (F, N, 2); ``loss``: the held-out loss
    record (``loss``, ``loss_name``, ``best_step``, ``steps``, ``stopped_early``); ``dt``: the frames' time step
    (the finite-dt ceiling, ε = 0). Warns when inconsistent, with ``advice`` on what to change."""
    record = {"frames": int(len(x)), **loss}
    if system.propulsion_rate > 0:  # an EPR is defined (an ABP with D_r = 0 has no propulsion noise)
        record.update(epr_check(system, score, x, g, dt))
        if not record["consistent"]:
            ceiling = record.get("finite_dt")
            if ceiling is not None:
                value, se = ceiling["of_ceiling"]["quadratic"]
                what = f"the finite-dt ceiling: learned/ceiling = {value:.3f} ± {se:.2g}"
            else:
                value, se = record["ratio"]["quadratic"]
                what = f"the learning-free identity: learned/identity = {value:.3f} ± {se:.2g}"
            # The drift-response score is built on the Ornstein–Uhlenbeck propulsion g (AOUPs), not on an angle.
            if advice == TRAINING_ADVICE and system.eps == 0 and system.propulsion_coordinate == "vector":
                advice += (
                    "; with eps = 0 the closed-form activescore.learning.fit_linear_score captures more at small gamma"
                )
            warn(
                f"score validation: on {len(x)} held-out frames the learned EPR is inconsistent with {what} "
                f"(quadratic form); {advice}"
            )
    return Validation(record)


class HeldOut:
    """The held-out loss (``TrainConfig.heldout_loss``) on frames held out of training, at fixed particles (and, for
    a denoising loss, a fixed noise draw), so that evaluations of different weights are paired and a change of the
    loss is a change of the weights. The implicit loss is evaluated at the smallest trained σ of a σ-conditioned
    network (the level a Score uses by default)."""

    #: Most (frame, particle) pairs evaluated (spread evenly over the held-out frames).
    MAX_PARTICLES = 4096

    def __init__(self, snapshots: Snapshots, net_config: ScoreNetConfig, train_config: TrainConfig, box_length: float):
        n_frames, n_particles = snapshots.x.shape[:2]
        total = n_frames * n_particles
        pairs = np.linspace(0, total - 1, min(total, self.MAX_PARTICLES)).round().astype(np.int64)
        frames, particles = np.divmod(pairs, n_particles)
        self.name = train_config.heldout_loss
        sigmas = np.asarray(train_config.sigmas or (1.0,), dtype=np.float64)
        if not LOSSES[self.name].needs_sigma:  # noise-free: the smallest level only labels the tokens
            sigmas = sigmas[[np.argmin(sigmas)]]
        log_sigma = np.log(sigmas[np.arange(len(pairs)) % len(sigmas)])
        dtype = net_config.jnp_dtype
        self.tokens = gather_tokens(
            jax.tree_util.tree_map(jnp.asarray, snapshots),
            jnp.asarray(frames),
            jnp.asarray(particles),
            box_length,
            jnp.asarray(log_sigma, dtype),
        )
        self.key = jax.random.PRNGKey(train_config.seed + 1)
        self.loss = jax.jit(make_loss(net_config, train_config.replace(loss=self.name)))

    def __call__(self, params) -> float:
        return float(self.loss(params, self.tokens, self.key))
