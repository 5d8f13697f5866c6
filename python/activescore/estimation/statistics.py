"""Numbers with errors: batch-means standard errors over snapshots, ratios of paired series, labelled estimates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMS = ("quadratic", "divergence")


def sigma_text(sigma) -> str:
    if sigma is None:
        return "no score"
    return "σ=0 (unsmoothed score)" if sigma == 0 else f"σ={sigma:g}"


@dataclass(frozen=True)
class Estimate:
    """A mean over snapshots with its batch-means standard error, labelled with where it came from.

    ``form``: "quadratic", "divergence" (from a score, see ``sigma``), "identity" (E[b·D⁻¹b] + E[∇·b], or
    −E[Σ∇·b_x] when ε = 0), "active-work", or a derived label such as "quadratic/identity".
    ``sigma``: the noise level of the score (0: unsmoothed; None: no score involved).
    Unpacks as ``value, stderr = estimate``."""

    value: float
    stderr: float
    form: str
    sigma: float | None = None
    n_snapshots: int = 0

    def __iter__(self):
        yield self.value
        yield self.stderr

    def __float__(self) -> float:
        return float(self.value)

    @property
    def label(self) -> str:
        return f"{self.form}, {sigma_text(self.sigma)}"

    def __format__(self, spec: str) -> str:
        spec = spec or ".6g"
        err = "n/a" if not np.isfinite(self.stderr) else f"{self.stderr:.2g}"
        return f"{self.value:{spec}} ± {err}"

    def __str__(self) -> str:
        return f"{self:.6g} [{self.label}]"


def n_batches_for(n: int, n_batches) -> int:
    if n_batches is None:
        n_batches = max(2, int(round(math.sqrt(n))))
    return max(1, min(int(n_batches), n))


def batch_means(series: np.ndarray, n_batches: int) -> np.ndarray:
    """Means of ``n_batches`` contiguous, nearly equal batches along the last axis."""
    return np.stack([chunk.mean(axis=-1) for chunk in np.array_split(series, n_batches, axis=-1)], axis=-1)


def mean_stderr(series, n_batches: int | None = None) -> tuple[float, float]:
    """The mean of a per-snapshot series and its batch-means standard error: ``n_batches`` contiguous batches
    (None: √F, as the estimators use; ``len(series)``: independent snapshots, the plain standard error)."""
    series = np.asarray(series, dtype=np.float64)
    n_batches = n_batches_for(len(series), n_batches)
    mean = float(series.mean())
    if n_batches < 2:
        return mean, math.nan
    bm = batch_means(series, n_batches)
    return mean, float(bm.std(ddof=1) / math.sqrt(n_batches))


def series_estimate(series, n_batches, form, sigma, scale: float = 1.0) -> Estimate:
    mean, se = mean_stderr(series, n_batches)
    return Estimate(mean * scale, se * scale, form, sigma, len(series))


def ratio_estimate(num, den, n_batches, form, sigma) -> Estimate:
    """mean(num)/mean(den) with the delta-method error from paired batch means (same snapshots)."""
    a, b = float(np.mean(num)), float(np.mean(den))
    r = a / b if b != 0 else math.inf
    if n_batches < 2 or b == 0:
        return Estimate(r, math.nan, form, sigma, len(num))
    bm = batch_means(np.stack([num, den]), n_batches)
    cov = np.cov(bm) / n_batches
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (b * b)
    return Estimate(r, math.sqrt(max(var, 0.0)), form, sigma, len(num))
