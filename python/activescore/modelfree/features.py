"""Model-free features of one frame: what a velocity field linear in its parameters is built from (physics.md §8).

Nothing here knows the model. Per particle i, the vector features (for the positions and a propulsion vector) are

* ``const_x``, ``const_y``: a uniform field;
* ``affine_*`` (optional): the position components times the unit vectors, an affine external field such as a
  trap centred anywhere (positions relative to ``origin``, in units of the cutoff, for conditioning);
* ``own``, ``own_perp``: the particle's own propulsion p_i (the vector g_i, or (cos θ_i, sin θ_i)) and its 90°
  turn (chiral motion);
* ``radial_k``: Σ_j B_k(|r_ij|) r_ij/|r_ij| over the neighbours within the cutoff, r_ij = x_i − x_j (minimum
  image in a periodic box), B_k the k-th tent function of a uniform grid on [0, cutoff]: pair forces and the
  pair part of the score;
* ``align_k``: Σ_j B_k(|r_ij|) p_j: the neighbours' propulsion (relative orientation, alignment);
* ``shell_k``: p_i Σ_j B_k(|r_ij|): the own propulsion weighted by the neighbours in each shell;
* ``push_k``: Σ_j B_k(|r_ij|) (p_i·r̂_ij) r̂_ij: the own propulsion along each pair (a particle pushing into its
  neighbours);
* ``push_neighbour_k``: Σ_j B_k(|r_ij|) (p_j·r̂_ij) r̂_ij: the neighbours pushing along the pair.

The last four are the rotation-equivariant pair terms linear in the propulsions (``PAIR_FAMILIES``); the
positions-only TUR bound adds ``radial_perp_k`` = Σ_j B_k r̂_ij^⊥.

An angle θ (ABP-like) has scalar features: the torque-like projections of the same fields on p_i^⊥ =
(−sin θ_i, cos θ_i): ``const`` (a constant turning rate), ``field_x``, ``field_y``, ``affine_*``, ``torque_k`` =
p_i^⊥·Σ_j B_k r̂_ij, ``align_k`` = p_i^⊥·Σ_j B_k p_j = Σ_j B_k sin(θ_j − θ_i), ``push_k`` and
``push_neighbour_k`` projected likewise (``shell_k`` has no turning part: p_i^⊥·p_i = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import backends

#: The pair terms linear in the propulsions (module docstring), all used by default.
PAIR_FAMILIES = ("align", "shell", "push", "push_neighbour")


def box_for_search(x: np.ndarray, cutoff: float, box_length: float | None) -> tuple[np.ndarray, float]:
    """Positions and a periodic box in which the compiled k-nearest-neighbour search sees the right pairs.

    Open space is embedded in a periodic box more than twice the cloud's extent plus the cutoff, so the minimum image
    never joins particles across it and the search is that of open space. A periodic box is used as it is, unless
    the particles fill less than half of it (a trapped cloud): no pair within the cutoff then crosses its edge, and
    the tight box of open space keeps the cell list's cells near the particles' spacing.
    """
    low, high = x.min(axis=0), x.max(axis=0)
    extent = float(np.max(high - low))
    if box_length is not None and extent + 2 * cutoff >= box_length / 2:
        return x, box_length
    centre = 0.5 * (low + high)
    return x - centre, 2 * extent + 2 * cutoff + 1.0


class NeighbourSearch:
    """All pairs closer than ``cutoff``, by a cell list with cells at least ``cutoff`` wide (the compiled k-nearest
    search of the core sorts every candidate, which costs several times the rest of the estimator)."""

    def __init__(self, cutoff: float, box_length: float | None, n_threads: int = 0):
        self.cutoff = cutoff
        self.box_length = box_length
        self.n_threads = n_threads  # the search itself is serial
        # Room for neighbours per particle: the last frame's largest count with a margin, so that consecutive
        # frames need one pass of the cell list, not a counting pass and a filling one.
        self.capacity = 0

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(index, displacement, within)`` for positions ``x`` (n, 2): neighbour indices (n, k) without self,
        x_i − x_j (n, k, 2) and whether the entry is a pair within the cutoff (n, k) bool (rows padded to the
        largest count)."""
        from .moments import cell_pairs

        n = len(x)
        if n < 2:
            return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0, 2)), np.zeros((n, 0), dtype=bool)
        xs, box = box_for_search(np.ascontiguousarray(x, dtype=np.float64), self.cutoff, self.box_length)
        index, displacement, within, largest = cell_pairs(xs, box, self.cutoff, self.capacity)
        self.capacity = largest + max(4, largest // 8)
        return index, displacement, within


@dataclass(frozen=True)
class FeatureSet:
    """The features of one kind of tracks (``"vector"``, ``"angle"`` or ``"positions"``) and their names."""

    kind: str
    cutoff: float
    n_radial: int
    external: bool
    origin: tuple[float, float] = (0.0, 0.0)
    families: tuple[str, ...] = PAIR_FAMILIES

    @property
    def has_propulsion(self) -> bool:
        return self.kind != "positions"

    def vector_names(self, propulsion: bool | None = None) -> list[str]:
        """Names of the vector features, in column order (``propulsion=False``: without the propulsion ones)."""
        with_p = self.has_propulsion if propulsion is None else propulsion
        names = ["const_x", "const_y"]
        if self.external:
            names += ["affine_x_ex", "affine_y_ex", "affine_x_ey", "affine_y_ey"]
        if with_p:
            names += ["own", "own_perp"]
        names += [f"radial_{k}" for k in range(self.n_radial)]
        if "radial_perp" in self.families:
            names += [f"radial_perp_{k}" for k in range(self.n_radial)]
        if with_p:
            for family in self.families:
                if family != "radial_perp":
                    names += [f"{family}_{k}" for k in range(self.n_radial)]
        return names

    def angle_names(self) -> list[str]:
        names = ["const", "field_x", "field_y"]
        if self.external:
            names += ["affine_x_ex", "affine_y_ex", "affine_x_ey", "affine_y_ey"]
        names += [f"torque_{k}" for k in range(self.n_radial)]
        for family in self.families:
            if family not in ("shell", "radial_perp"):
                names += [f"{family}_{k}" for k in range(self.n_radial)]
        return names

    def frame(
        self, x: np.ndarray, orientation: np.ndarray | None, search: NeighbourSearch, propulsion: bool | None = None
    ) -> dict[str, np.ndarray]:
        """Features of one frame's particles.

        Parameters
        ----------
        x : ndarray, shape (n, 2)
            Positions of the particles present.
        orientation : ndarray, shape (n, 2), optional
            Their propulsion p_i: the vector g_i, or (cos θ_i, sin θ_i) for angles.
        search : NeighbourSearch
        propulsion : bool, optional
            False: the position features only (the propulsion is ignored even where observed).

        Returns
        -------
        dict
            ``"vector"``: (n, 2, P) features of a 2-vector velocity (positions; a propulsion vector);
            ``"angle"`` (angles only): (n, 1, Q) features of the turning velocity.
        """
        from .moments import pair_sums

        with_p = (self.has_propulsion if propulsion is None else propulsion) and orientation is not None
        n, k_r = len(x), self.n_radial
        index, displacement, within = search(x)
        pair = [f for f in self.families if f != "radial_perp"] if with_p else []
        with_perp = "radial_perp" in self.families
        # Columns in the order of vector_names(); the array is (p, n, 2), returned as its (n, 2, p) view, so that
        # the transposed (p, 2n) features the sums need are the same memory.
        p_total = 2 + 4 * self.external + 2 * with_p + k_r * (1 + with_perp + len(pair))
        out = np.zeros((p_total, n, 2))
        out[0, :, 0] = 1.0
        out[1, :, 1] = 1.0
        col = 2
        if self.external:
            rel = (x - np.asarray(self.origin)) / self.cutoff
            out[2, :, 0], out[3, :, 0], out[4, :, 1], out[5, :, 1] = rel[:, 0], rel[:, 1], rel[:, 0], rel[:, 1]
            col = 6
        if with_p:
            p = np.asarray(orientation, dtype=np.float64)
            perp = np.stack([-p[:, 1], p[:, 0]], axis=1)
            out[col], out[col + 1] = p, perp
            col += 2
        radial_at = col
        offsets = [radial_at] + [radial_at + k_r * (1 + with_perp + m) for m in range(len(pair))]
        p_or_zero = orientation if with_p else np.zeros((n, 2))
        families = ["radial", *pair]
        turn = turn_offsets = None
        if with_p and self.kind == "angle":
            # Turning features: the same fields projected on p_i^⊥ = ∂_θ p_i (shell has no turning part), rows in
            # the order of angle_names(): const, field_x, field_y, [affine], torque_k, then the pair families.
            start = 3 + 4 * self.external
            turn_offsets = [start]
            for f in pair:
                turn_offsets.append(-1 if f == "shell" else start + k_r * (len([o for o in turn_offsets if o >= 0])))
            turn = np.empty((start + k_r * sum(o >= 0 for o in turn_offsets), n))
            turn[0] = 1.0
            turn[1], turn[2] = perp[:, 0], perp[:, 1]
            if self.external:
                turn[3:7] = out[2:6, :, 0] * perp[:, 0] + out[2:6, :, 1] * perp[:, 1]
        pair_sums(
            index, displacement, within, p_or_zero, self.cutoff / k_r, k_r, families, offsets, out, turn_offsets, turn
        )
        if with_perp:
            # Σ_j B_k r̂_ij^⊥: the pair currents that are not gradients (odd under reflection: chiral systems).
            radial = out[radial_at : radial_at + k_r]
            out[radial_at + k_r : radial_at + 2 * k_r, :, 0] = -radial[:, :, 1]
            out[radial_at + k_r : radial_at + 2 * k_r, :, 1] = radial[:, :, 0]
        result = {"vector": out.transpose(1, 2, 0)}
        if turn is not None:
            result["angle"] = turn.T[:, None, :]
        return result


def default_cutoff(x_frames, box_length: float | None, search_threads: int = 0) -> float:
    """2.5 times the median nearest-neighbour distance over a few frames (``x_frames``: list of (n, 2) arrays):
    the pair features reach the first two or three neighbour shells without knowing the interaction range."""
    nearest = []
    backend = backends.get_cpu("auto")
    for x in x_frames:
        if len(x) < 2:
            continue
        xs, box = box_for_search(np.ascontiguousarray(x, dtype=np.float64), 0.0, box_length)
        _, displacement = backend.knn(xs, float(box), 2, search_threads)
        nearest.append(np.sqrt(np.einsum("nc,nc->n", displacement[:, 1], displacement[:, 1])))
    if not nearest:
        return 1.0
    d = float(np.median(np.concatenate(nearest)))
    if not (math.isfinite(d) and d > 0):
        return 1.0
    cutoff = 2.5 * d
    if box_length is not None:
        cutoff = min(cutoff, 0.5 * box_length)
    return cutoff
