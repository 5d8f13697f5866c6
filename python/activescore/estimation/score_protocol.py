"""The score protocol the estimators consume, and a score bound to the system it is applied to.

A score is anything with ``score(x, g) -> (s_x or None, s_g)`` for one snapshot (x, g: (N, 2) arrays),
``score.divergence_g(x, g)`` and, when ε > 0, ``score.divergence_x(x, g)`` → (N,), ``score.system`` (the system it
was learned for) and ``score.sigma`` (or ``score.sigmas``): the denoising noise level (None or 0: unsmoothed).

``s_g`` is the score in the system's propulsion coordinates q (``system.propulsion_coordinate``): for AOUPs q = g
and ``s_g`` is (N, 2); for ABPs q = θ, the input g is (cos θ, sin θ) and ``s_g`` is s_θ = ∂_θ log ρ, shape (N, 1)
(or (N,)), with ``divergence_g`` = ∂_{θ_i} s_θ,i. :class:`activescore.Score` and the scores of
:mod:`activescore.exact` follow it.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ScoreProtocol(Protocol):
    """What :func:`activescore.estimate` asks of a score (see the module docstring)."""

    @property
    def system(self) -> object: ...  # read-only, so that a score may hold a narrower system type (an AOUP)

    def __call__(self, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]: ...

    def divergence_g(self, x: np.ndarray, g: np.ndarray) -> np.ndarray: ...


def dynamics(system) -> dict:
    d = system.to_dict()
    for key in ("n_particles", "box_length"):
        d.pop(key, None)
    return d


def accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def score_sigma(score, kwargs: dict):
    if kwargs.get("sigma") is not None:
        return float(kwargs["sigma"])
    sigma = getattr(score, "sigma", None)
    if sigma is not None:
        return float(sigma)
    sigmas = tuple(getattr(score, "sigmas", ()) or ())
    return float(min(sigmas)) if sigmas else 0.0


class BoundScore:
    """The score, checked against the system and called with the extra keyword arguments."""

    def __init__(self, score, system, score_kwargs, transfer: bool):
        for attr in ("divergence_g",) + (("divergence_x",) if system.eps > 0 else ()):
            if not callable(getattr(score, attr, None)):
                raise ValueError(f"score: needs a method {attr}(x, g) (the score protocol)")
        if not callable(score):
            raise ValueError("score: must be callable as score(x, g) -> (s_x, s_g)")
        own = getattr(score, "system", None)
        if own is None:
            raise ValueError("score: has no .system (the system it was learned for)")
        kwargs = dict(score_kwargs or {})
        if own != system:
            if type(own) is not type(system) or dynamics(own) != dynamics(system):
                raise ValueError(f"score: it is the score of {own!r}, but the samples are of {system!r}")
            if not transfer:
                raise ValueError(
                    f"score: it was learned at another size ({own!r}) than the samples "
                    f"({system!r}); pass transfer=True to apply a size-transferable score"
                )
            if not accepts(score.__call__, "box_length"):
                raise ValueError("score: transfer=True needs a score that accepts box_length=")
            kwargs.setdefault("box_length", system.box_length)
        self.score, self.system, self.kwargs = score, system, kwargs
        self.sigma = score_sigma(score, kwargs)

    def __call__(self, x, g):
        n, eps = self.system.n_particles, self.system.eps
        out = self.score(x, g, **self.kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError("score: must return a pair (s_x or None, s_g)")
        s_x, s_g = out
        components = self.system.propulsion_components
        if components == 1 and np.ndim(s_g) == 1:
            s_g = np.asarray(s_g)[:, None]  # s_θ given as (N,)
        s_g = shaped("score s_g", s_g, (n, components))
        if eps > 0:
            if s_x is None:
                raise ValueError("score: returned s_x=None, but the system has eps > 0 (both blocks are needed)")
            s_x = shaped("score s_x", s_x, (n, 2))
            div_x = shaped("score.divergence_x", self.score.divergence_x(x, g, **self.kwargs), (n,))
        else:
            s_x = div_x = None
        div_g = shaped("score.divergence_g", self.score.divergence_g(x, g, **self.kwargs), (n,))
        return s_x, s_g, div_x, div_g


def shaped(name, value, shape) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    return a
