"""Snapshots as network input: neighbour lists per frame and the gather of particle tokens.

Training keeps every frame's positions, propulsions and neighbour indices on the device and gathers the tokens
of a random minibatch of (frame, particle) pairs inside the compiled step, so a step moves no data from the
host. Evaluation uses the same gather on a single snapshot, so a network sees identical inputs in both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .neighbours import knn, minimum_image
from .network import ParticleTokens


class Snapshots(NamedTuple):
    """Frames of one system: ``x``, ``g`` (F, N, 2), ``neighbours`` (F, N, k) int32 (self first), for networks
    with ``force_input`` the interaction forces ``force`` (F, N, 2), for a network trained on the residual of
    a base score the base's values ``offset`` (F, N, output_dim), and for networks with a cutoff the tokens each
    particle needs, ``needed`` (F, N) int32: itself and its neighbours within the cutoff (plus the noise margin of
    denoising), the first ones of its list (else None)."""

    # Host (NumPy) arrays until placed on a device, JAX arrays after.
    x: Any
    g: Any
    neighbours: Any
    force: Any = None
    offset: Any = None
    needed: Any = None


#: Relative slack on the reach when counting the tokens a particle needs: a neighbour this close to the cutoff has
#: an attention weight of order 1e-18, and the network's float32 distances may round across the cutoff.
REACH_SLACK = 1e-6


def neighbour_lists(x: np.ndarray, box_length: float, k: int) -> np.ndarray:
    """(F, N, k) int32 neighbour indices of every frame (self first), from the compiled cell list."""
    return neighbours_and_needed(x, box_length, k)[0]


def neighbours_and_needed(x: np.ndarray, box_length: float, k: int, reach: float | None = None):
    """``(neighbour_lists(x, box_length, k), needed)``: with ``reach`` also the (F, N) int32 number of each
    particle's listed neighbours (self included) closer than it, from the same search (else None)."""
    indices, needed = [], []
    for frame in x:
        index, displacement = knn(frame, box_length, k)
        indices.append(index.astype(np.int32))
        if reach is not None:
            within = np.sum(displacement**2, axis=-1) <= (reach * (1 + REACH_SLACK)) ** 2
            needed.append(np.sum(within, axis=1).astype(np.int32))
    return np.stack(indices), (None if reach is None else np.stack(needed))


def interaction_forces(system, x: np.ndarray, box_length: float) -> np.ndarray:
    """(F, N, 2) float64 forces k Σ F − A x of every frame (the ``force_input`` of the network), from the compiled
    core, for ``system`` resized to the frames' particle count and box (a score applied to another size)."""
    from ..observables import forces

    system = sized(system, x.shape[1], box_length)
    return np.stack([forces(system, frame) for frame in x])


def sized(system, n_particles: int, box_length: float):
    """``system`` with ``n_particles`` in a box of side ``box_length`` (itself when it already is): a score
    applied to frames of another size."""
    from ..systems import system_from_dict

    if system.n_particles == n_particles and system.box_length == box_length:
        return system
    return system_from_dict({**system.to_dict(), "n_particles": n_particles, "box_length": box_length})


def base_values(base, x: np.ndarray, g: np.ndarray, box_length: float) -> np.ndarray:
    """(F, N, output_dim) float64 values of a base score (``base(x, g) -> (s_x or None, s_g)``) on every frame:
    the fixed part a residual network adds to (columns (s_x, s_g), or s_g alone)."""
    values = []
    for xf, gf in zip(x, g, strict=True):
        s_x, s_g = base(xf, gf, box_length=box_length)
        values.append(s_g if s_x is None else np.concatenate([s_x, s_g], axis=-1))
    return np.stack(values)


def make_snapshots(
    x: np.ndarray, g: np.ndarray, box_length: float, k: int, dtype, *, system=None, base=None, reach=None
) -> Snapshots:
    """Host arrays for :func:`gather_tokens`: positions and propulsions in the network dtype plus neighbours, the
    interaction forces when ``system`` is given (networks with ``force_input``), the values of ``base`` (a
    network trained on its residual) and, with ``reach`` (a network's cutoff plus the noise margin), the tokens
    each particle needs."""
    force = None if system is None else np.asarray(interaction_forces(system, x, box_length), dtype=dtype)
    offset = None if base is None else np.asarray(base_values(base, x, g, box_length), dtype=dtype)
    neighbours, needed = neighbours_and_needed(x, box_length, k, reach)
    return Snapshots(np.asarray(x, dtype=dtype), np.asarray(g, dtype=dtype), neighbours, force, offset, needed)


def gather_tokens(
    snapshots: Snapshots, frames, particles, box_length: float, log_sigma, tokens: int | None = None
) -> ParticleTokens:
    """Tokens of particles ``particles`` (B,) in frames ``frames`` (B,); ``log_sigma`` (B,) is passed through.
    ``tokens``: only the first this many of each list (None: all k)."""
    neighbours = snapshots.neighbours[frames, particles, :tokens]  # (B, k)
    position = snapshots.x[frames, particles]  # (B, 2)
    neighbour_x = snapshots.x[frames[:, None], neighbours]  # (B, k, 2)
    displacement = minimum_image(position[:, None, :] - neighbour_x, box_length)
    force = None if snapshots.force is None else snapshots.force[frames[:, None], neighbours]
    offset = None if snapshots.offset is None else snapshots.offset[frames, particles]
    return ParticleTokens(
        displacement=displacement,
        g=snapshots.g[frames[:, None], neighbours],
        position=position,
        log_sigma=log_sigma,
        force=force,
        offset=offset,
    )
