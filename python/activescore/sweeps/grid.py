"""The plan of a sweep: a base configuration, the swept keys and the seeds, expanded into content-addressed points.

A point is one (parameter values, seed) pair with its complete system and simulation sections. Its identifier is
made readable from the swept values and unique from a hash of everything that fixes its numbers (system,
simulation, measurement options), so a rerun finds the points it already computed, and a grid extended by new
values or seeds reuses the old ones.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config as cfg
from ..systems import ParticleSystem, check_system

#: Short names accepted in ``over`` (and ``--over``) for configuration keys.
ALIASES = {
    "phi": "packing_fraction",
    "N": "n_particles",
    "n": "n_particles",
    "Dr": "rotational_diffusion",
    "D_r": "rotational_diffusion",
    "epsilon": "eps",
}
#: Simulation keys a sweep sets itself (per point or per worker), never swept.
_ENGINE_KEYS = ("seed", "n_threads")
#: Simulation keys that do not change a point's numbers (kept out of its identity).
_NOT_IN_IDENTITY = ("n_threads",)
#: The [system] keys of the first sweeps. A key added since (a new model parameter, cutoff_tol) enters a point's
#: identity only when set off its default, so that a sweep folder made before it still resumes.
_FIRST_SYSTEM_KEYS = (
    "model",
    "n_particles",
    "packing_fraction",
    "box_length",
    "v0",
    "gamma",
    "rotational_diffusion",
    "eps",
    "k",
    "trap",
    "beta",
    "radius",
)


@dataclass(frozen=True)
class Measures:
    """What each point measures besides the learning-free EPR.

    ``cluster_cutoff``: two particles closer than this are in the same cluster (default 1.1 × the contact distance
    2 max(R)); ``density_radius``: radius of the disk over which the local packing fraction is counted (default
    5 max(R), at most 0.45 L); ``density_edges``: the bins of the local packing-fraction histogram;
    ``score``: a trained score (file path or score object) whose EPR is also estimated on each point (transfer)."""

    cluster_cutoff: float | None = None
    density_radius: float | None = None
    density_edges: tuple = tuple(np.round(np.linspace(0.0, 1.2, 25), 10))
    score: object = None

    def identity(self) -> dict:
        score = self.score
        if score is not None and not isinstance(score, (str, Path)):
            score = repr(score)
        return {
            "cluster_cutoff": self.cluster_cutoff,
            "density_radius": self.density_radius,
            "density_edges": list(self.density_edges),
            "score": None if score is None else str(score),
        }


@dataclass(frozen=True)
class Point:
    """One point of a sweep: the swept values, the seed, and the full configuration sections it runs with."""

    values: dict
    seed: int
    system: dict = field(repr=False)
    simulation: dict = field(repr=False)
    point_id: str = ""

    def make_system(self) -> ParticleSystem:
        """The point's system (a ValueError naming the key for a bad parameter)."""
        return cfg.make_system(self.system)


def canonical_key(name: str) -> tuple[str, str]:
    """(section, key) of a swept name: ``phi``, ``v0``, ``system.v0``, ``simulation.dt``, ``dt``..."""
    if "." in name:
        section, key = name.split(".", 1)
        key = ALIASES.get(key, key)
        if section not in ("system", "simulation") or key not in cfg.DEFAULTS[section]:
            raise ValueError(f"over: unknown key {name!r} (sweep keys of [system] or [simulation])")
    else:
        key = ALIASES.get(name, name)
        if key in cfg.DEFAULTS["system"]:
            section = "system"
        elif key in cfg.DEFAULTS["simulation"]:
            section = "simulation"
        else:
            known = sorted(cfg.DEFAULTS["system"]) + sorted(cfg.DEFAULTS["simulation"])
            raise ValueError(
                f"over: unknown key {name!r} (known: {', '.join(known)}; aliases: "
                f"{', '.join(f'{a}={k}' for a, k in ALIASES.items())})"
            )
    if section == "simulation" and key in _ENGINE_KEYS:
        raise ValueError(f"over: {key!r} is set by the sweep itself (use seeds= for the seeds)")
    return section, key


def base_sections(base) -> dict:
    """The resolved ``system`` and ``simulation`` sections of a base: a system, a resolved config dict, or a TOML
    path (read like the command line's CONFIG)."""
    if isinstance(base, ParticleSystem):
        system = check_system(base)
        if not np.all(system.radius == system.radius[0]):
            raise ValueError("base: a sweep needs a monodisperse system (one radius)")
        # Sized by the packing fraction, so that sweeping N or phi keeps the other.
        return {"system": cfg.system_section(system), "simulation": copy.deepcopy(cfg.DEFAULTS["simulation"])}
    if isinstance(base, (str, Path)):
        return cfg.resolve(base, (), ("system", "simulation"))
    if isinstance(base, dict):
        flat = {f"{s}.{k}": v for s in ("system", "simulation") for k, v in base.get(s, {}).items()}
        unknown = set(base) - {"system", "simulation", "dataset", "train", "estimate", "sweep"}
        if unknown:
            raise ValueError(f"base: unknown sections {sorted(unknown)} (expected [system] and [simulation])")
        return cfg.resolve_keys(flat, ("system", "simulation"))
    raise ValueError(
        f"base must be an activescore system, a configuration dict or a TOML path, got {type(base).__name__}"
    )


def _values(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"over[{name!r}]: no values")
    out = []
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        out.append(v)
    if len(set(map(repr, out))) != len(out):
        raise ValueError(f"over[{name!r}]: repeated values {out}")
    return out


def _coerce(section: str, key: str, value):
    """A swept value checked against the type of its configuration key (whole floats accepted for integers)."""
    default = cfg.DEFAULTS[section][key]
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and value.is_integer():
        value = int(value)
    return cfg.coerce(f"{section}.{key}", value, default)


def seed_list(seeds, base_seed: int) -> list[int]:
    """``seeds``: a count (seeds base_seed, base_seed + 1, ...) or explicit seeds."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a count >= 1 or a list of seeds, got {seeds}")
        return [int(base_seed) + i for i in range(int(seeds))]
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds: expected distinct non-negative integers, got {seeds}")
    return seeds


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def point_id(values: dict, seed: int, identity: dict) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    readable = "_".join(f"{k}={_format(v)}" for k, v in values.items())
    readable = "".join(c if c.isalnum() or c in "=._-" else "-" for c in readable)[:80]
    return f"{readable}_seed={seed}_{digest}" if readable else f"seed={seed}_{digest}"


def expand(base, over: dict, seeds, measures: Measures) -> tuple[list[Point], list[str], dict]:
    """The points of the grid ``over`` × ``seeds`` on ``base``: (points, swept names as given, base sections).

    Every combination of the swept values (in the order given, the last key varying fastest) times every seed."""
    sections = base_sections(base)
    if not isinstance(over, dict):
        raise ValueError(f"over must be a dict of key -> values, got {type(over).__name__}")
    axes: list[tuple[str, str, str, list]] = []
    for name, values in over.items():
        section, key = canonical_key(str(name))
        if any(key == k for _, k, _, _ in axes):
            raise ValueError(f"over: {name!r} is swept twice")
        values = [_coerce(section, key, v) for v in _values(str(name), values)]
        axes.append((section, key, str(name), values))
    seed_values = seed_list(seeds, sections["simulation"]["seed"])
    points = []
    for combo in itertools.product(*(values for *_, values in axes)):
        for seed in seed_values:
            secs = copy.deepcopy(sections)
            values = {}
            for (section, key, _, _), value in zip(axes, combo, strict=True):
                secs[section][key] = value
                values[key] = value
            if "packing_fraction" in values:
                secs["system"]["box_length"] = 0.0
            secs["simulation"]["seed"] = seed
            sim_identity = {k: v for k, v in secs["simulation"].items() if k not in _NOT_IN_IDENTITY}
            identity = {"system": _system_identity(secs["system"]), "simulation": sim_identity}
            identity["measures"] = measures.identity()
            points.append(Point(values, seed, secs["system"], secs["simulation"], point_id(values, seed, identity)))
    return points, [key for _, key, _, _ in axes], sections


def _system_identity(system: dict) -> dict:
    """The [system] keys that fix a point's numbers: the first sweeps' keys, and any other one set off its default."""
    default = cfg.system_defaults(system["model"]) if system["model"] in cfg.MODEL_PARAMETERS else {}
    return {k: v for k, v in system.items() if k in _FIRST_SYSTEM_KEYS or v != default.get(k)}


def parse_over(text: str) -> tuple[str, list]:
    """``key=v1,v2,...`` or ``key=start:stop:num`` (num values evenly spaced, both ends included) from the command
    line; values are TOML scalars (numbers, or bare strings such as ``model=aoup,abp``)."""
    if "=" not in text:
        raise ValueError(f"--over {text!r}: expected key=v1,v2,... or key=start:stop:num")
    name, raw = text.split("=", 1)
    name, raw = name.strip(), raw.strip()
    parts = raw.split(":")
    if len(parts) == 3:
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(f"--over {text!r}: start:stop:num needs two numbers and a count") from None
        if num < 1:
            raise ValueError(f"--over {text!r}: num must be >= 1")
        return name, [float(v) for v in np.linspace(start, stop, num)]
    values = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"--over {text!r}: empty value")
        values.append(cfg.parse_value(item))
    return name, values


def finite_or_none(value):
    """JSON-friendly number: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
