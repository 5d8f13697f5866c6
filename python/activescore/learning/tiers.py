"""Token tiers: a training batch sorted by the tokens its particles need and cut into tiers, each gathering only
as many tokens as its most crowded particle needs.

With a cutoff, a neighbour beyond it has attention weight 0 and no influence on the particle's output
(:class:`~activescore.learning.network.Attention`), so a particle's score is the same whether its token set ends
at the last neighbour within reach or is padded to k. The default k covers the most crowded particle of the data
with headroom; in the paper's MIPS a particle needs on average about half of it (docs/performance.md). The
network's cost grows with the tokens, so each tier pays for what it needs.

The tiers are fixed before training (their shapes are compiled) by :func:`plan_token_tiers`: the sizes and
tokens of least expected cost on batches drawn from a sample of the data. A batch whose particles need more than
their tier holds is computed whole at k instead (:func:`~activescore.learning.step.make_train_step`), so the
tiers change the cost of a step, never its loss.
"""

from __future__ import annotations

import numpy as np

#: ``((size, tokens), ...)``: tier sizes (they sum to the batch) and tokens per particle, in increasing order.
TokenTiers = tuple

#: Tier sizes are multiples of batch / GRANULARITY; a plan has at most MAX_TIERS tiers.
GRANULARITY, MAX_TIERS = 8, 4
#: Batches drawn from the sample to evaluate a plan (its cost and how often a batch does not fit it).
SIMULATED_BATCHES = 2000
#: Quantiles of each tier's most needed tokens over the simulated batches tried as the tier's tokens: a lower one
#: makes the tier cheaper and the fallback to the whole computation more frequent.
QUANTILES = (0.9, 0.99, 0.999, 1.0)
#: Cost of a particle's step in tokens: the per-particle part of the network (readout, self-only block)
#: costs about as much as this many tokens (measured on the small preset: 5 + 1.9 k ms per batch of 256).
PARTICLE_COST_TOKENS = 3.0
#: Cost of one more tier, in tokens per particle of the batch (another chain of small operations to dispatch).
TIER_COST_TOKENS = 0.5
#: What compiling the tiers costs beyond the plain step, in plain steps: measured +4.6 s on an 18 s compilation
#: of the MIPS default network's step (48 ms), about 100 steps; twice that, so that a short run (a test, a demo)
#: is not slowed by tiers it cannot pay back.
COMPILE_COST_STEPS = 200


def _compositions(parts: int, most: int):
    """Ordered ways to write ``parts`` as a sum of at most ``most`` positive integers."""
    if parts == 0:
        yield ()
        return
    if most == 0:
        return
    for first in range(1, parts + 1):
        for rest in _compositions(parts - first, most - 1):
            yield (first, *rest)


def plan_token_tiers(
    needed: np.ndarray, batch: int, k: int, n_devices: int = 1, seed: int = 0, steps: int | None = None
) -> TokenTiers:
    """The tiers of least expected cost for batches of ``batch`` particles drawn uniformly from a population whose
    tokens needed are sampled by ``needed`` (any shape, self included), for a network of ``k`` tokens.

    Expected cost: the tiers' cost on the batches that fit them, the whole computation's on the others (both
    estimated on :data:`SIMULATED_BATCHES` batches drawn from ``needed``). Tier sizes are multiples of
    ``n_devices`` (each tier's batch is split over the devices). ``((batch, k),)`` is the plain computation, also
    returned when a run of ``steps`` steps would save less than :data:`COMPILE_COST_STEPS` plain steps.
    """
    needed = np.minimum(np.asarray(needed, dtype=np.int64).ravel(), k)
    if needed.size == 0:
        raise ValueError("token tiers: no sample of the tokens needed")
    draws = np.sort(np.random.default_rng(seed).choice(needed, size=(SIMULATED_BATCHES, batch)), axis=1)
    plain_cost = (k + PARTICLE_COST_TOKENS) * batch
    best: TokenTiers = ((batch, k),)
    best_cost = plain_cost
    unit = batch / GRANULARITY
    for parts in _compositions(GRANULARITY, MAX_TIERS):
        sizes = [n_devices * round(part * unit / n_devices) for part in parts[:-1]]
        sizes.append(batch - sum(sizes))
        if min(sizes) < n_devices:
            continue
        most = draws[:, np.cumsum(sizes) - 1]  # (batches, tiers): each tier's most needed tokens
        for quantile in QUANTILES:
            tokens = np.quantile(most, quantile, axis=0, method="higher").astype(int)
            fits = np.mean(np.all(most <= tokens, axis=1))
            cost = sum(size * (t + PARTICLE_COST_TOKENS) for size, t in zip(sizes, tokens, strict=True))
            cost += TIER_COST_TOKENS * batch * (len(sizes) - 1)
            expected = fits * cost + (1 - fits) * plain_cost
            if expected < best_cost:
                best, best_cost = tuple((size, int(t)) for size, t in zip(sizes, tokens, strict=True)), expected
    if steps is not None and steps * (1 - best_cost / plain_cost) < COMPILE_COST_STEPS:
        return ((batch, k),)
    return best


def training_tiers(
    config,
    loss: str,
    sigmas,
    x: np.ndarray,
    box_length: float,
    batch: int,
    k: int,
    n_devices: int = 1,
    seed=0,
    steps: int | None = None,
):
    """``(reach, tiers)`` for training ``config`` with ``loss`` at noise levels ``sigmas`` on batches of ``batch``
    from frames like ``x`` (a sample suffices): the token reach the data must count (``make_snapshots(...,
    reach=)``) and the plan (:func:`plan_token_tiers`); ``(None, None)`` where the plain step is best (no cutoff,
    nothing to save, or a run of ``steps`` too short to pay for the compilation)."""
    from .data import neighbours_and_needed
    from .defaults import token_reach

    reach = token_reach(config, loss, sigmas)
    if reach is None:
        return None, None
    needed = neighbours_and_needed(x, box_length, k, reach)[1]
    tiers = plan_token_tiers(needed, batch, k, n_devices, seed=seed, steps=steps)
    return (None, None) if is_plain(tiers, batch, k) else (reach, tiers)


def is_plain(tiers: TokenTiers | None, batch: int, k: int) -> bool:
    """Whether ``tiers`` is the plain computation: the whole batch at k tokens (or no tiers)."""
    return tiers is None or tuple(tiers) == ((batch, k),)


def check_tiers(tiers: TokenTiers, batch: int, k: int) -> None:
    """Refuse tiers that do not cover the batch or that hold more tokens than the network has."""
    if not tiers or sum(size for size, _ in tiers) != batch:
        raise ValueError(f"token tiers {tiers}: their sizes must sum to the batch ({batch})")
    if any(not 1 <= tokens <= k for _, tokens in tiers) or any(size < 1 for size, _ in tiers):
        raise ValueError(f"token tiers {tiers}: need sizes >= 1 and tokens in [1, k = {k}]")
