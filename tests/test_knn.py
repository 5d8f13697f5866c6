"""k nearest neighbours of every backend (the compiled cell list and its Numba mirror) against an all-pairs
NumPy reference.

The reference repeats the core's arithmetic (wrap, then minimum image of the difference), so indices must agree
exactly, ties included, and displacements to rounding; the two backends agree bit for bit.
"""

import numpy as np
import pytest

from activescore.learning.neighbours import knn as backend_knn
from activescore.learning.neighbours import minimum_image


@pytest.fixture(autouse=True)
def backend(cpu_backend, monkeypatch):
    """Every test runs on each CPU backend: ``knn`` below is that backend's (a missing one fails: conftest)."""
    monkeypatch.setattr(f"{__name__}.knn", lambda *args, **kw: backend_knn(*args, backend=cpu_backend, **kw))
    return cpu_backend


def knn(*args, **kw):  # replaced per test by the fixture above
    raise AssertionError("the backend fixture did not run")


def wrap(x, box_length):
    """Into [-L/2, L/2), with the core's formula."""
    w = x - box_length * np.floor(x * (1.0 / box_length) + 0.5)
    return np.where(w >= 0.5 * box_length, w - box_length, w)


def reference_knn(x, box_length, k):
    """All pairs: sort by (self first, squared distance, index)."""
    w = wrap(np.asarray(x, dtype=np.float64), box_length)
    d = w[:, None, :] - w[None, :, :]
    half = 0.5 * box_length
    d = np.where(d > half, d - box_length, np.where(d < -half, d + box_length, d))
    r2 = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]
    n = len(w)
    r2[np.arange(n), np.arange(n)] = -1.0
    index = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        order = np.lexsort((np.arange(n), r2[i]))  # last key is primary: distance, then index
        index[i] = order[:k]
    displacement = np.take_along_axis(d, index[:, :, None], axis=1)
    return index, displacement


def assert_same_neighbours(x, box_length, k):
    index, displacement = knn(x, box_length, k)
    ref_index, ref_displacement = reference_knn(x, box_length, k)
    assert index.shape == (len(x), k) and displacement.shape == (len(x), k, 2)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_allclose(displacement, ref_displacement, rtol=0, atol=1e-12 * box_length)


@pytest.mark.parametrize("n, box_length, k", [(200, 20.0, 16), (500, 10.0, 64), (50, 3.0, 50), (64, 40.0, 1)])
def test_random_configurations(n, box_length, k):
    rng = np.random.default_rng(n + k)
    x = rng.uniform(-box_length / 2, box_length / 2, size=(n, 2))
    assert_same_neighbours(x, box_length, k)


@pytest.mark.parametrize("n, box_length", [(2, 1.0), (3, 0.5), (7, 1.3)])
def test_tiny_boxes_every_k(n, box_length):
    rng = np.random.default_rng(n)
    x = rng.uniform(-box_length / 2, box_length / 2, size=(n, 2))
    for k in range(1, n + 1):
        assert_same_neighbours(x, box_length, k)


@pytest.mark.parametrize("side, k", [(8, 9), (8, 13), (8, 64), (5, 25), (12, 21)])
def test_square_lattice_exact_ties(side, k):
    # Integer coordinates: every distance is exact, so ties are exact and decided by index alone.
    grid = np.arange(side, dtype=np.float64) - side // 2
    x = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    rng = np.random.default_rng(side * k)
    x = x[rng.permutation(len(x))]  # shuffled labels, so tie-breaking by index is exercised
    assert_same_neighbours(x, float(side), k)


def test_coincident_particles_and_unwrapped_input():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2.0, 2.0, size=(30, 2))
    x[5] = x[3]  # same spot: each is still its own first neighbour
    x[7] += np.array([4.0, -8.0])  # outside the box: wrapped
    assert_same_neighbours(x, 4.0, 10)
    index, _ = knn(x, 4.0, 2)
    assert index[3, 0] == 3 and index[5, 0] == 5 and index[3, 1] == 5 and index[5, 1] == 3


def test_half_box_displacement_is_a_minimum_image():
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.5]])
    _, displacement = knn(x, 4.0, 3)
    assert np.all(np.abs(displacement) <= 2.0)
    np.testing.assert_allclose(np.abs(minimum_image(displacement, 4.0)), np.abs(displacement))


def test_bad_arguments():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError):
        knn(x, 1.0, 5)
    with pytest.raises(ValueError):
        knn(x, 1.0, 0)
    with pytest.raises(ValueError):
        knn(np.zeros((4, 3)), 1.0, 2)
    with pytest.raises(ValueError):
        knn(x, -1.0, 2)


def test_backends_agree_bit_for_bit(core):
    rng = np.random.default_rng(3)
    x = rng.uniform(-15.0, 15.0, size=(700, 2))
    cpp = backend_knn(x, 30.0, 24, backend="cpp")
    fallback = backend_knn(x, 30.0, 24, backend="numba")
    np.testing.assert_array_equal(cpp[0], fallback[0])
    np.testing.assert_array_equal(cpp[1], fallback[1])
