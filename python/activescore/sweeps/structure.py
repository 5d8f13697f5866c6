"""Structure measures of a MIPS study, computed with freud: the largest cluster fraction and the local packing
fraction of each particle (its histogram is bimodal where a dense and a dilute phase coexist)."""

from __future__ import annotations

import math

import numpy as np

from .deps import require


def default_cluster_cutoff(system) -> float:
    """1.1 × the contact distance 2 max(R): particles this close touch (soft disks overlap under pressure)."""
    return 1.1 * 2.0 * float(np.max(system.radius))


def default_density_radius(system) -> float:
    """5 max(R) (a few neighbour shells), shrunk in small boxes so the counting disk and the disks of the
    neighbours it weighs (reach r + R) stay within half the box (freud's minimum-image limit)."""
    r_max = float(np.max(system.radius))
    return min(5.0 * r_max, 0.49 * system.box_length - float(np.mean(system.radius)))


def largest_cluster_fractions(system, x: np.ndarray, cutoff: float) -> np.ndarray:
    """Per frame, the size of the largest cluster over N, where particles closer than ``cutoff`` (minimum image)
    are connected. ``x``: (F, N, 2) wrapped positions; returns (F,)."""
    freud = require("freud", "the structure measures")
    box = freud.box.Box.square(system.box_length)
    cluster = freud.cluster.Cluster()
    out = np.empty(len(x))
    points = np.zeros((system.n_particles, 3))
    for f, frame in enumerate(x):
        points[:, :2] = frame
        cluster.compute((box, points), neighbors={"r_max": cutoff})
        out[f] = np.bincount(cluster.cluster_idx).max() / system.n_particles
    return out


def local_packing_fractions(system, x: np.ndarray, radius: float) -> np.ndarray:
    """Per frame and particle, the packing fraction inside a disk of ``radius`` around it: the particle itself plus
    the area of its neighbours' disks inside the counting disk (freud's ``LocalDensity``, which weights a
    neighbour by its overlap with the disk), over the disk's area. Uses the mean particle area.
    ``x``: (F, N, 2); returns (F, N)."""
    freud = require("freud", "the structure measures")
    box = freud.box.Box.square(system.box_length)
    mean_radius = float(np.mean(system.radius))
    density = freud.density.LocalDensity(r_max=radius, diameter=2.0 * mean_radius)
    out = np.empty(x.shape[:2])
    points = np.zeros((system.n_particles, 3))
    for f, frame in enumerate(x):
        points[:, :2] = frame
        density.compute((box, points))
        out[f] = (np.asarray(density.num_neighbors) + 1.0) * (mean_radius / radius) ** 2
    return out


def histogram(values: np.ndarray, edges) -> np.ndarray:
    """Fraction of ``values`` in each bin of ``edges`` (values beyond the last edge counted in the last bin)."""
    edges = np.asarray(edges, dtype=np.float64)
    clipped = np.clip(np.ravel(values), edges[0], np.nextafter(edges[-1], -math.inf))
    counts, _ = np.histogram(clipped, bins=edges)
    return counts / max(1, clipped.size)


def set_threads(n_threads: int) -> None:
    """Let freud use ``n_threads`` threads (0: all), like the simulator on the same worker."""
    freud = require("freud", "the structure measures")
    if n_threads > 0:
        freud.parallel.set_num_threads(n_threads)
