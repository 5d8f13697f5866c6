"""A one-entry cache of what a score computed from one snapshot, shared by the network and closed-form scores."""

from __future__ import annotations

import numpy as np


class LastSnapshot:
    """Something computed from one snapshot (x, g) under a key, kept until another snapshot or key comes.

    Snapshots are compared by value on copies, so a caller changing its arrays in place is seen (NaN never matches).
    """

    def __init__(self):
        self._entry = None

    def get(self, key, x, g):
        if self._entry is None:
            return None
        cached_key, cached_x, cached_g, value = self._entry
        same = cached_key == key and all(
            c.shape == np.shape(v) and np.array_equal(c, v) for c, v in ((cached_x, x), (cached_g, g))
        )
        return value if same else None

    def put(self, key, x, g, value):
        self._entry = (key, np.array(x, dtype=np.float64), np.array(g, dtype=np.float64), value)
