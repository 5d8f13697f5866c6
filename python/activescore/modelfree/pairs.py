"""Frame pairs of tracks and the features of their frames, shared by the model-free estimators (physics.md §8):
which frames pair up at a lag, which tracks enter a pair, their increments, and the frame features, cached.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as check
from .features import PAIR_FAMILIES, FeatureSet, NeighbourSearch, default_cutoff
from .tracks import Tracks

#: Frame features kept for the second pass (per-particle fields) up to this many bytes.
CACHE_BYTES = 256 << 20


def frame_pairs(frames: np.ndarray, lag: int) -> np.ndarray:
    """Index pairs (k, k') of frames whose numbers differ by ``lag``, not overlapping: starts at frame numbers
    frames[0], frames[0] + lag, … (a lag-times-sparser movie), shape (P, 2)."""
    position = {int(f): k for k, f in enumerate(frames)}
    pairs = [
        (k, position[int(f) + lag])
        for k, f in enumerate(frames)
        if (int(f) - int(frames[0])) % lag == 0 and int(f) + lag in position
    ]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def mean_square_step(tracks: Tracks, lag: int) -> float:
    """Mean |x(t + lag) − x(t)|² over the tracks present in both frames (NaN without such pairs)."""
    total, count = 0.0, 0
    for k0, k1 in frame_pairs(tracks.frames, lag):
        rows = np.flatnonzero(tracks.present[k0] & tracks.present[k1])
        d = block_increment(tracks, "x", k0, k1, rows)
        total += float(np.einsum("nc,nc->", d, d))
        count += len(rows)
    return total / count if count else math.nan


def block_increment(tracks: Tracks, block: str, k0: int, k1: int, rows: np.ndarray) -> np.ndarray:
    """z'_i − z_i of one block for the tracks ``rows`` between frames k0 and k1: (n, 2) or (n, 1) for an angle
    (wrapped into (−π, π]); positions by the minimum image in a periodic box."""
    if block == "x":
        d = tracks.x[k1, rows] - tracks.x[k0, rows]
        if tracks.box_length is not None:
            d -= tracks.box_length * np.round(d / tracks.box_length)
        return d
    if tracks.angle is not None:
        d = tracks.angle[k1, rows] - tracks.angle[k0, rows]
        return (d - 2 * np.pi * np.round(d / (2 * np.pi)))[:, None]
    assert tracks.propulsion is not None
    return tracks.propulsion[k1, rows] - tracks.propulsion[k0, rows]


def orientation(tracks: Tracks, k: int, rows: np.ndarray) -> np.ndarray | None:
    """The propulsion p of the tracks ``rows`` in frame k: g, or (cos θ, sin θ); None for positions alone."""
    if tracks.propulsion is not None:
        return tracks.propulsion[k, rows]
    if tracks.angle is not None:
        theta = tracks.angle[k, rows]
        return np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return None


class PairFeatures:
    """The transposed features and Gram matrix of one frame restricted to a pair's rows, reused by the next pair
    when it starts from the same frame with the same particles (a frame's Gram is then computed once)."""

    def __init__(self):
        self.last: dict[str, tuple] = {}

    def __call__(
        self, block: str, k: int, rows: np.ndarray, phi_all: np.ndarray, slot: np.ndarray, ready: tuple | None = None
    ) -> tuple:
        """``ready``: the whole frame's (transposed features, Gram) when already computed (``FrameCache.prefetch``)."""
        from .moments import gram, transposed

        key = self.last.get(block)
        if key is not None and key[0] == k and np.array_equal(key[1], rows):
            return key[2]
        picked = slot[rows]
        # Every particle of the frame in its order (the common case): no copy before the transpose.
        whole = len(picked) == len(phi_all) and bool(np.all(picked == np.arange(len(picked))))
        if whole and ready is not None:
            value = ready
        else:
            mt = transposed(phi_all if whole else phi_all[picked])
            value = (mt, gram(mt))
        self.last[block] = (k, rows, value)
        return value


class FrameCache:
    """The features of the frames asked for: every frame's are used by two pairs and again for the per-particle
    fields, so they are kept up to ``budget`` bytes (then only the last two frames are)."""

    def __init__(
        self,
        tracks: Tracks,
        features: FeatureSet,
        search: NeighbourSearch,
        propulsion: bool | None = None,
        budget: int | None = None,
    ):
        self.tracks, self.features, self.search, self.propulsion = tracks, features, search, propulsion
        self.store: dict[int, tuple[np.ndarray, dict]] = {}
        self.budget, self.size = CACHE_BYTES if budget is None else budget, 0
        self.evicted = False
        self.whole: dict[int, dict] = {}

    def compute(self, k: int) -> tuple[np.ndarray, dict]:
        """``(slot, features)`` of frame k, computed (thread-safe: nothing is stored)."""
        present = np.flatnonzero(self.tracks.present[k])
        slot = np.full(self.tracks.n_tracks, -1, dtype=np.int64)
        slot[present] = np.arange(len(present))
        x = self.tracks.x[k, present]
        return slot, self.features.frame(x, orientation(self.tracks, k, present), self.search, self.propulsion)

    def insert(self, k: int, entry: tuple[np.ndarray, dict]) -> None:
        self.store[k] = entry
        self.size += sum(v.nbytes for v in entry[1].values())
        while self.size > self.budget and len(self.store) > 2:
            oldest = next(iter(self.store))  # the first inserted (never k, the last)
            self.evicted = True
            self.size -= sum(v.nbytes for v in self.store.pop(oldest)[1].values())

    def __call__(self, k: int) -> tuple[np.ndarray, dict]:
        """``(slot, features)``: slot (M,) the row of each track in this frame's arrays (−1 if absent)."""
        if k not in self.store:
            self.insert(k, self.compute(k))
        return self.store[k]

    def prefetch(self, frames, pool, arrays: set[str]) -> None:
        """Compute the frames ``frames`` not stored yet on the thread ``pool``, with each one's whole-frame
        (transposed features, Gram) of the feature ``arrays`` in ``self.whole[k]`` (consumed by the caller)."""
        from .moments import gram, transposed

        def work(k):
            slot, value = self.compute(k)
            ready = {}
            for name in arrays & set(value):
                mt = transposed(value[name])
                ready[name] = (mt, gram(mt))
            return k, (slot, value), ready

        todo = list(dict.fromkeys(int(k) for k in frames if int(k) not in self.store))
        for k, entry, ready in pool.map(work, todo):
            self.insert(k, entry)
            self.whole[k] = ready


def pair_rows(tracks: Tracks, k0: int, k1: int, margin: float) -> np.ndarray:
    """Tracks present in both frames (and, in a field of view, farther than ``margin`` from its edge in the
    first frame, where all their neighbours within the cutoff are seen)."""
    rows = np.flatnonzero(tracks.present[k0] & tracks.present[k1])
    if tracks.field_of_view is not None and len(rows):
        x0, x1, y0, y1 = tracks.field_of_view
        x = tracks.x[k0, rows]
        inside = (x[:, 0] >= x0 + margin) & (x[:, 0] <= x1 - margin) & (x[:, 1] >= y0 + margin)
        inside &= x[:, 1] <= y1 - margin
        rows = rows[inside]
    return rows


def setup(
    tracks: Tracks,
    lag: int,
    cutoff,
    n_radial: int,
    external: bool,
    n_threads: int,
    propulsion=None,
    families=PAIR_FAMILIES,
):
    """The pairs, the feature set and the neighbour search shared by the model-free estimators."""
    lag = check.integer("lag", lag, low=1)
    n_radial = check.integer("n_radial", n_radial, low=1)
    n_threads = check.integer("n_threads", n_threads, low=0)
    families = tuple(families)
    unknown = [f for f in families if f not in (*PAIR_FAMILIES, "radial_perp")]
    if unknown:
        raise ValueError(f"pair_features must be among {list(PAIR_FAMILIES)}, got {unknown}")
    pairs = frame_pairs(tracks.frames, lag)
    if len(pairs) == 0:
        raise ValueError(f"no two frames are lag = {lag} frame numbers apart in these tracks")
    if cutoff is None:
        sample = np.unique(np.linspace(0, tracks.n_frames - 1, min(5, tracks.n_frames)).astype(int))
        cutoff = default_cutoff([tracks.x[k, tracks.present[k]] for k in sample], tracks.box_length, n_threads)
    else:
        cutoff = check.real("cutoff", cutoff, low=0.0, low_open=True)
        if tracks.box_length is not None and cutoff > tracks.box_length / 2:
            raise ValueError(
                f"cutoff must be in (0, L/2 = {tracks.box_length / 2:g}] in a periodic box, got {cutoff!r}"
            )
    origin = np.nanmean(tracks.x[tracks.present], axis=0) if tracks.box_length is None else np.zeros(2)
    kind = tracks.kind if propulsion is not False else "positions"
    features = FeatureSet(kind, float(cutoff), n_radial, bool(external), (float(origin[0]), float(origin[1])), families)
    search = NeighbourSearch(float(cutoff), tracks.box_length, n_threads)
    return pairs, features, search, float(cutoff)
