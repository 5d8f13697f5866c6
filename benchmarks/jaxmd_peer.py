"""The benchmark's MIPS system in JAX-MD, as a peer for the simulator throughput (optional: only when jax-md is
installed; ``pip install jax-md``).

JAX-MD supplies the periodic space and its cell-list Verlet neighbour list (``partition.neighbor_list``, skin
0.1 of the cutoff as activescore's); the softplus pair force and the AOUP step (Euler-Maruyama in x, exact
Ornstein-Uhlenbeck in g) are written here in JAX, since JAX-MD has neither. The noise comes from
``jax.random``, not activescore's Philox stream: this times the same work, it does not reproduce trajectories.
"""

from __future__ import annotations

import math

import numpy as np

SKIN_FRACTION = 0.1  # as cpu_simulator.cpp's kSkinFraction


def available() -> bool:
    try:
        import jax_md  # noqa: F401
    except Exception:  # an incompatible jax-md fails with all kinds of errors on import
        return False
    return True


def make_runner(system, state, dtype: str = "float64"):
    """``run(steps)``: advances a copy of ``state`` of the MIPS ``system`` by ``steps`` steps of ``dt = 0.1``."""
    import jax
    import jax.numpy as jnp
    from jax_md import partition, space

    from activescore import forces

    jax.config.update("jax_enable_x64", dtype == "float64")
    real = jnp.float64 if dtype == "float64" else jnp.float32
    n, box = system.n_particles, system.box_length
    radii = np.asarray(system.radius, dtype=float).reshape(-1)
    if np.any(radii != radii[0]) or system.trap != 0.0 or system.eps != 0.0 or system.model != "aoup":
        raise ValueError("the JAX-MD peer covers the benchmark's monodisperse AOUP (eps = 0, no trap) only")
    cutoff = system.interaction_range
    sigma, beta, k, v0, dt = 2.0 * float(radii[0]), system.beta, system.k, system.v0, 0.1
    decay, kick = math.exp(-system.gamma * dt), math.sqrt(-math.expm1(-2.0 * system.gamma * dt))

    displacement, shift = space.periodic(box)  # JAX-MD's box is [0, L)
    neighbor_fn = partition.neighbor_list(
        displacement, box, cutoff, dr_threshold=SKIN_FRACTION * cutoff, format=partition.NeighborListFormat.Dense
    )
    # x_i - x_j for each particle i and its listed neighbours j (written out: space.map_neighbor's order is j - i).
    neighbour_displacement = jax.vmap(jax.vmap(displacement, (None, 0)))

    def pair_forces(positions, neighbours):
        others = positions[neighbours.idx]  # padding entries (idx == n) are masked below
        d = neighbour_displacement(positions, others)
        rho_sq = jnp.sum(d * d, axis=-1)
        inside = (neighbours.idx < n) & (rho_sq < cutoff * cutoff) & (rho_sq > 0)
        rho = jnp.sqrt(jnp.where(inside, rho_sq, 1.0))
        scale = jnp.where(inside, jax.nn.softplus(beta * (sigma - rho)) / beta / rho, 0.0)
        return jnp.sum(scale[..., None] * d, axis=1)

    def step(_, carry):
        positions, g, neighbours, key = carry
        key, draw = jax.random.split(key)
        positions_new = shift(positions, dt * (v0 * g + k * pair_forces(positions, neighbours)))
        g = decay * g + kick * jax.random.normal(draw, g.shape, real)
        return positions_new, g, neighbours.update(positions_new), key

    @jax.jit
    def advance(positions, g, neighbours, key, steps):  # steps traced: one compilation for every run length
        return jax.lax.fori_loop(0, steps, step, (positions, g, neighbours, key))

    positions0 = jnp.asarray(state.x + 0.5 * box, real)
    g0 = jnp.asarray(state.q, real)
    neighbours0 = neighbor_fn.allocate(positions0)
    # The same force field as activescore's, or the timing would compare different work.
    reference = forces(system, state.x)
    mismatch = float(np.abs(np.asarray(jax.jit(pair_forces)(positions0, neighbours0)) - reference).max())
    tolerance = 1e-9 if dtype == "float64" else 1e-4
    if not mismatch <= tolerance * max(1.0, float(np.abs(reference).max())):
        raise RuntimeError(f"JAX-MD peer forces differ from activescore.forces by {mismatch:.3g}")

    def run(steps: int) -> None:
        nonlocal neighbours0
        while True:
            out = advance(positions0, g0, neighbours0, jax.random.PRNGKey(0), steps)
            jax.block_until_ready(out)
            if not out[2].did_buffer_overflow:
                return
            neighbours0 = neighbor_fn.allocate(out[0], extra_capacity=8)  # a denser state: regrow and rerun

    return run
