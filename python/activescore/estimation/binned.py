"""Per-particle values binned in space over many snapshots: square maps with the current, radial profiles."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .local import LocalEPR


@dataclass(eq=False)
class BinnedField:
    """Per-particle values accumulated in spatial bins over many snapshots.

    ``count``: particle-snapshots per bin; ``measure``: area of each bin; ``sums`` / ``sumsq``: sums of each
    quantity ("quadratic", "divergence", their "_x"/"_g" parts, and on grids the current components "j_x",
    "j_y") and of the squares of the totals; ``outside``: particle-snapshots beyond the binned region.

    * ``per_particle(q)``: mean of q over the particles found in the bin (NaN where empty);
    * ``density_weighted(q)``: sum of q in the bin / (bin area × snapshots), an EPR density whose integral
      ``integral(q)`` is the mean total per snapshot (of the particles inside the region);
    * ``density()``: particles per unit area."""

    measure: np.ndarray
    n_frames: int
    count: np.ndarray
    sums: dict
    sumsq: dict
    outside: int
    sigma: float | None

    def density(self) -> np.ndarray:
        return self.count / (self.measure * self.n_frames)

    def _sum(self, quantity: str) -> np.ndarray:
        if quantity in ("quadratic", "divergence"):
            return self.sums[quantity + "_x"] + self.sums[quantity + "_g"]
        if quantity not in self.sums:
            raise ValueError(
                f"quantity must be one of {sorted(set(self.sums) | {'quadratic', 'divergence'})}, got {quantity!r}"
            )
        return self.sums[quantity]

    def per_particle(self, quantity: str = "quadratic") -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self._sum(quantity) / self.count, np.nan)

    def density_weighted(self, quantity: str = "quadratic") -> np.ndarray:
        return self._sum(quantity) / (self.measure * self.n_frames)

    def integral(self, quantity: str = "quadratic") -> float:
        return float(np.sum(self.density_weighted(quantity) * self.measure))

    def std(self, quantity: str = "quadratic") -> np.ndarray:
        """Spread of the per-particle values in each bin (``quantity``: "quadratic" or "divergence")."""
        if quantity not in self.sumsq:
            raise ValueError(f"std is kept for {sorted(self.sumsq)}, got {quantity!r}")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self._sum(quantity) / self.count
            var = self.sumsq[quantity] / self.count - mean**2
            return np.sqrt(np.maximum(var, 0.0) * self.count / np.maximum(self.count - 1, 1))

    def stderr(self, quantity: str = "quadratic") -> np.ndarray:
        """std/√count: the error of ``per_particle`` if the values in a bin were independent (a lower bound for
        correlated snapshots)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.std(quantity) / np.sqrt(self.count)

    def _accumulate(self, index: np.ndarray, inside: np.ndarray, local: LocalEPR, extra: dict) -> None:
        size = self.count.size
        idx = index[inside]
        self.outside += int(np.count_nonzero(~inside))
        shape = self.count.shape

        def add(values):
            return np.bincount(idx, weights=values[inside], minlength=size).reshape(shape)

        self.count += np.bincount(idx, minlength=size).reshape(shape)
        for name in ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g"):
            self.sums[name] += add(local[name])
        for name in ("quadratic", "divergence"):
            self.sumsq[name] += add(local[name] ** 2)
        for name, values in extra.items():
            self.sums[name] += add(values)


def empty_sums(shape, names) -> dict:
    return {name: np.zeros(shape) for name in names}


@dataclass(eq=False)
class SpatialMap(BinnedField):
    """A square grid of ``bins``² cells over [-half_width, half_width]² (arrays indexed [ix, iy]).

    ``current()``: the probability current of the positions, density × mean v_x per cell, shape (bins, bins, 2)."""

    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    half_width: float = 0.0

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def current(self) -> np.ndarray:
        return np.stack([self.density_weighted("j_x"), self.density_weighted("j_y")], axis=-1)

    def mean_velocity(self) -> np.ndarray:
        return np.stack([self.per_particle("j_x"), self.per_particle("j_y")], axis=-1)

    @classmethod
    def empty(cls, bins: int, half_width: float, n_frames: int, sigma):
        edges = np.linspace(-half_width, half_width, bins + 1)
        cell = (2 * half_width / bins) ** 2
        names = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "j_x", "j_y")
        return cls(
            np.full((bins, bins), cell),
            n_frames,
            np.zeros((bins, bins), dtype=np.int64),
            empty_sums((bins, bins), names),
            empty_sums((bins, bins), ("quadratic", "divergence")),
            0,
            sigma,
            edges,
            half_width,
        )

    def add(self, x: np.ndarray, local: LocalEPR) -> None:
        bins = len(self.edges) - 1
        h = self.half_width
        ij = np.floor((x + h) * (bins / (2 * h))).astype(np.int64)
        inside = np.all((x >= -h) & (x <= h), axis=1)
        ij = np.clip(ij, 0, bins - 1)
        self._accumulate(ij[:, 0] * bins + ij[:, 1], inside, local, {"j_x": local.v_x[:, 0], "j_y": local.v_x[:, 1]})


@dataclass(eq=False)
class RadialProfile(BinnedField):
    """Bins in the distance r = |x| from the trap centre; ``measure`` is the annulus area π (r₂² − r₁²)."""

    edges: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @classmethod
    def empty(cls, bins: int, r_max: float, n_frames: int, sigma):
        edges = np.linspace(0.0, r_max, bins + 1)
        area = np.pi * np.diff(edges**2)
        names = ("quadratic_x", "quadratic_g", "divergence_x", "divergence_g", "r2")
        return cls(
            area,
            n_frames,
            np.zeros(bins, dtype=np.int64),
            empty_sums(bins, names),
            empty_sums(bins, ("quadratic", "divergence")),
            0,
            sigma,
            edges,
        )

    def mean_r2(self) -> np.ndarray:
        """Mean of |x|² over the particles in each bin (to compare with a quadratic exact profile)."""
        return self.per_particle("r2")

    def add(self, x: np.ndarray, local: LocalEPR) -> None:
        bins = len(self.edges) - 1
        r2 = np.einsum("ij,ij->i", x, x)
        r = np.sqrt(r2)
        r_max = self.edges[-1]
        inside = r <= r_max
        idx = np.clip(np.floor(r * (bins / r_max)).astype(np.int64), 0, bins - 1)
        self._accumulate(idx, inside, local, {"r2": r2})
