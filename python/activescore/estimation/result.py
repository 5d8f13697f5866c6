"""What :func:`activescore.estimate` returns, and its report beside the learning-free check."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from ..systems import ParticleSystem
from .binned import RadialProfile, SpatialMap
from .ceiling import MEANING, FiniteDtCeiling, not_applicable
from .identity import LearningFreeEPR
from .local import LocalEPR
from .statistics import FORMS, sigma_text

#: The learned EPR is consistent with the identity when it differs by at most 3 standard errors or this fraction
#: of the EPR, whichever is larger: the identity itself moves with the simulator's time step (O(dt), ≈ 1.5 % at
#: dt = 0.005 for soft disks) and a denoising score is that of the σ-smoothed density.
RELATIVE_TOLERANCE = 0.05
N_STANDARD_ERRORS = 3.0


@dataclass(eq=False)
class EPRResult:
    """Everything :func:`estimate` measured. Print it (or call :meth:`summary`) for the report.

    Attributes
    ----------
    system : AOUP or ABP
        The samples' system.
    sigma : float or None
        The noise level of the score (0: unsmoothed).
    frames : numpy.ndarray
        Indices of the snapshots used.
    n_batches : int
        Batches for the standard errors.
    totals : dict
        Per-snapshot totals over particles, arrays (F,) keyed "quadratic", "quadratic_x", "quadratic_g",
        "divergence", "divergence_x", "divergence_g", "identity" and (ε > 0) "active_work".
    epr, epr_per_particle : dict
        Form → :class:`Estimate` of the total EPR and of the EPR per particle.
    split : dict
        Form → {"x": Estimate, "g": Estimate} (per particle): each degree of freedom's share ("g": the propulsion,
        θ for ABPs).
    identity : LearningFreeEPR
        The learning-free identity on the same snapshots.
    ratio : dict
        Form → learned / identity (delta-method error from paired batch means).
    difference : dict
        Form → learned − identity per particle (paired; meaningful also when the EPR is 0).
    local : LocalEPR or None
        Per-particle fields with a leading snapshot axis, or None if not kept; ``local.quadratic[k]`` belongs to
        the positions ``positions(k)``.
    map : SpatialMap
        The binned fields.
    radial : RadialProfile or None
        The radial profile (trapped systems, or when asked).
    x : numpy.ndarray
        The samples' positions (a reference, all snapshots; ``frames`` selects the ones used).
    dt : float or None
        The time step of the simulation the samples come from (None: unknown).
    finite_dt : FiniteDtCeiling or None
        ε = 0 with dt known: the ceiling a perfect score of the simulated chain reaches, learned/ceiling and the
        corrected EPR (physics.md §5).
    """

    system: ParticleSystem
    sigma: float | None
    frames: np.ndarray = field(repr=False)
    n_batches: int
    totals: dict = field(repr=False)
    epr: dict
    epr_per_particle: dict
    split: dict
    identity: LearningFreeEPR
    ratio: dict
    difference: dict
    local: LocalEPR | None = field(repr=False)
    map: SpatialMap | None = field(repr=False)
    radial: RadialProfile | None = field(repr=False)
    x: np.ndarray | None = field(default=None, repr=False)
    dt: float | None = None
    finite_dt: FiniteDtCeiling | None = field(default=None, repr=False)

    def positions(self, index: int) -> np.ndarray:
        """Positions (N, 2) of the ``index``-th snapshot used (``frames[index]`` of the samples)."""
        if self.x is None:
            raise ValueError("the result holds no positions")
        return self.x[self.frames[index]]

    @property
    def n_snapshots(self) -> int:
        return len(self.frames)

    @property
    def n_particles(self) -> int:
        return self.system.n_particles

    # convenient aliases of the per-particle fields
    def _field(self, name):
        if self.local is None:
            raise ValueError("per-particle fields were not kept (pass keep_fields=True to estimate)")
        return getattr(self.local, name)

    @property
    def v_x(self) -> np.ndarray:
        return self._field("v_x")

    @property
    def v_g(self) -> np.ndarray:
        return self._field("v_g")

    @property
    def quadratic(self) -> np.ndarray:
        """e_i per snapshot and particle, (F, N)."""
        return self._field("quadratic")

    @property
    def divergence(self) -> np.ndarray:
        """c_i per snapshot and particle, (F, N)."""
        return self._field("divergence")

    def consistency(self, form: str = "quadratic") -> float:
        """(learned − identity) in units of its paired standard error (NaN if it cannot be judged)."""
        check.choice("form", form, set(FORMS))
        d = self.difference[form]
        if not np.isfinite(d.stderr):
            return math.nan
        # Floating-point floor: exact scores can make both sides constant (standard error 0).
        scale = max(abs(self.epr_per_particle[form].value), abs(self.identity.per_particle.value), 1e-300)
        return d.value / math.hypot(d.stderr, 1e-9 * scale)

    def consistent(self, form: str = "quadratic", n_se: float = 3.0) -> bool:
        z = self.consistency(form)
        return bool(np.isfinite(z) and abs(z) <= n_se)

    def to_dict(self) -> dict:
        """The numbers (no arrays) as plain Python values, e.g. for JSON."""

        def est(e):
            return None if e is None else {"value": e.value, "stderr": e.stderr, "form": e.form, "sigma": e.sigma}

        return {
            "system": self.system.to_dict(),
            "sigma": self.sigma,
            "n_snapshots": self.n_snapshots,
            "n_batches": self.n_batches,
            "epr": {f: est(self.epr[f]) for f in FORMS},
            "epr_per_particle": {f: est(self.epr_per_particle[f]) for f in FORMS},
            "split": {f: {k: est(v) for k, v in self.split[f].items()} for f in FORMS},
            "identity": est(self.identity.total),
            "identity_per_particle": est(self.identity.per_particle),
            "active_work": est(self.identity.active_work),
            "ratio": {f: est(self.ratio[f]) for f in FORMS},
            "difference_per_particle": {f: est(self.difference[f]) for f in FORMS},
            "finite_dt": None if self.finite_dt is None else self.finite_dt.to_dict(),
        }

    def summary(self) -> str:
        sys_ = self.system
        rule = "=" * 78
        sig = sigma_text(self.sigma)
        lines = [
            f"Entropy production (k_B per unit time) of {sys_!r}",
            f"  {self.n_snapshots} snapshots, score {sig}; ± = standard error by batch means ({self.n_batches} "
            "batches)",
            "",
            f"  {'form':<12}{'EPR per particle':>28}{'total EPR':>30}",
        ]
        for form in FORMS:
            lines.append(
                f"  {form:<12}{format(self.epr_per_particle[form], '.5g'):>28}{format(self.epr[form], '.5g'):>30}"
            )
            parts = self.split[form]
            tot = self.epr_per_particle[form].value
            err = self.epr_per_particle[form].stderr
            nonzero = tot != 0 and (not np.isfinite(err) or abs(tot) > 3 * err)

            def share(v: float, tot: float = tot, nonzero: bool = nonzero) -> str:
                return f"{100 * v / tot:.1f}%" if nonzero else "-"

            x_part = (
                f"x: {format(parts['x'], '.4g')} ({share(parts['x'].value)})"
                if sys_.eps > 0
                else "x: - (eps = 0, no x noise)"
            )
            q = sys_.propulsion_symbol
            lines.append(f"  {'':<12}  {x_part}   {q}: {format(parts['g'], '.4g')} ({share(parts['g'].value)})")
        ident = self.identity
        lines += ["", rule, "  LEARNING-FREE CHECK (no score; physics.md §4)", rule]
        what = "E[b·D⁻¹b] + E[∇·b]" if sys_.eps > 0 else "−E[Σ ∇·b_x]"
        lines.append(
            f"  identity {what:<22}{format(ident.per_particle, '.5g'):>22} per particle"
            f"   {format(ident.total, '.5g')} total"
        )
        if ident.active_work is not None:
            lines.append(
                f"  active work (1/ε)Σ v0 g·b_x    {format(ident.active_work_per_particle, '.5g'):>22} per "
                f"particle   {format(ident.active_work, '.5g')} total"
            )
        zero = abs(ident.total.value) <= 3 * ident.total.stderr if np.isfinite(ident.total.stderr) else False
        for form in FORMS:
            r = self.ratio[form]
            ratio = "n/a (identity ~ 0)" if zero or not np.isfinite(r.value) else f"{r:.4g}"
            if self.finite_dt is not None:
                verdict = "judged against the ceiling below"
            else:
                verdict = _verdict(self.consistency(form), r.value, "the identity")
            lines.append(f"  learned/identity, {form:<10} {ratio:>24}   {verdict}")
        lines += self._ceiling_lines()
        if self.sigma:
            lines.append(
                f"  note: the score is σ-smoothed ({sig}); a bias of the learned EPR is expected (physics.md §6)"
            )
        lines.append(rule)
        return "\n".join(lines)

    def _ceiling_lines(self) -> list[str]:
        """The finite-dt ceiling block of the summary (physics.md §5)."""
        c = self.finite_dt
        if c is None:
            reason = not_applicable(self.system, self.dt)
            return [f"  finite-dt ceiling (physics.md §5) {reason}"] if reason else []
        lines = [
            f"  FINITE-dt CEILING (dt = {c.dt:g}; physics.md §5)",
            f"  a perfect score of the simulated chain reaches learned/identity = {c.ceiling:.4g}",
        ]
        for form in FORMS:
            verdict = _verdict(c.consistency(form), c.of_ceiling[form].value, "the ceiling")
            lines.append(f"  learned/ceiling, {form:<10} {format(c.of_ceiling[form], '.4g'):>25}   {verdict}")
        for form in FORMS:
            lines.append(
                f"  corrected EPR, {form:<10} {format(c.corrected[form], '.5g'):>24} per particle   "
                f"corrected/identity {c.corrected_ratio[form]:.4g}"
            )
        lines.append(f"  ({MEANING})")
        return lines

    def __str__(self) -> str:
        return self.summary()


def _verdict(z: float, ratio: float, target: str) -> str:
    """The verdict on a learned EPR ``z`` paired standard errors and ``ratio`` times ``target``."""
    if not np.isfinite(z):
        return "cannot judge (need >= 2 snapshots)"
    if abs(z) <= N_STANDARD_ERRORS:
        return f"consistent ({z:+.1f} s.e.)"
    if abs(ratio - 1) <= RELATIVE_TOLERANCE:
        return f"within {RELATIVE_TOLERANCE:.0%} ({z:+.1f} s.e.: a small bias, e.g. of σ or dt)"
    return f"!!! INCONSISTENT: {z:+.1f} standard errors from {target} !!!"
