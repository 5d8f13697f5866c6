"""Resolving a configuration: the embedded defaults, then a TOML file, then ``key=value`` overrides.

Every key is checked before any work starts: an unknown key or a value of the wrong type is a ValueError that
names the key, and so is a [system] key the chosen model would ignore.
"""

from __future__ import annotations

from pathlib import Path

from ..systems import MODELS
from .checks import train_config
from .schema import MODEL_PARAMETERS, NETWORKS, defaults, model_of
from .toml import coerce, flatten, parse_override, read_toml

#: Keys whose values are restricted beyond their type: (accepts the value, what is expected).
_VALUE_CHECKS = {
    "train.n_steps": (lambda v: v >= 0, "0 (from the data) or a positive integer"),
    "train.warmup_steps": (lambda v: v >= -1, "-1 (automatic) or a non-negative integer"),
    "train.network": (lambda v: v in NETWORKS, ", ".join(map(repr, NETWORKS[:-1])) + f" or {NETWORKS[-1]!r}"),
    "train.holdout": (lambda v: 0 <= v < 1, "a fraction in [0, 1) (0: no validation)"),
    "train.frames_in_memory": (lambda v: v == 0 or v >= 2, "0 (automatic) or an integer >= 2"),
    "train.steps_per_window": (lambda v: v >= 0, "0 (automatic) or a positive integer"),
}


def resolve(path=None, overrides=(), sections=None, *, demo: bool = False) -> dict:
    """Defaults (with ``demo``: the demo's values layered on them), then the TOML file, then ``key=value``
    overrides; every key checked. Returns a nested dict of the requested sections (default: all)."""
    updates = {}
    if path is not None:
        updates.update(flatten(read_toml(Path(path))))
    updates.update(dict(parse_override(o) for o in overrides))
    return resolve_keys(updates, sections, demo=demo)


def resolve_keys(updates: dict, sections=None, *, demo: bool = False) -> dict:
    """:func:`resolve` of flat ``{"section.key": value}`` settings: the defaults (those of the model the settings
    choose) with the settings applied, every key checked."""
    model = updates.get("system.model")
    config = defaults(demo, model=model if isinstance(model, str) else None)
    flat_defaults = flatten(config)
    for key, value in updates.items():
        if key not in flat_defaults:
            section = key.split(".")[0]
            known = sorted(k for k in flat_defaults if k.startswith(section + ".")) or sorted(config)
            raise ValueError(f"config: unknown key {key!r} (known: {', '.join(known)})")
        value = coerce(key, value, flat_defaults[key])
        accepts, expected = _VALUE_CHECKS.get(key, (lambda v: True, None))
        if not accepts(value):
            raise ValueError(f"config key {key}: expected {expected}, got {value!r}")
        section, name = key.split(".", 1)
        config[section][name] = value
    _check_system_keys(config["system"], updates, flat_defaults)
    if sections is None or "train" in sections:
        train_config(config["train"])  # TrainConfig's own checks, before any work
    return {k: v for k, v in config.items() if sections is None or k in sections}


def _check_system_keys(system: dict, given: dict, default: dict) -> None:
    """Refuse [system] keys that would be ignored: another model's parameter set to a value of its own, and
    ``box_length`` together with ``packing_fraction`` (the API refuses both too). With ``box_length > 0`` and no
    packing fraction given, the resolved ``packing_fraction`` is 0 (unused), so that ``config.toml`` reruns."""
    model = system["model"]
    own = MODEL_PARAMETERS.get(model)
    for key in given:
        section, name = key.split(".", 1)
        if section != "system" or own is None or name in own or model_of(name) == []:
            continue
        if system[name] != default[key]:
            others = model_of(name)
            rate = getattr(MODELS[model], "propulsion_rate_name", None)
            raise ValueError(
                f"config key {key}: is a parameter of the {', '.join(o.upper() for o in others)} model, not of "
                f"system.model = {model!r}"
                + (f" (whose propulsion rate is system.{rate})" if rate else "")
                + f"; remove it or set system.model = {others[0]!r}"
            )
    if system["box_length"] > 0 and "system.box_length" in given:
        if "system.packing_fraction" in given and system["packing_fraction"] > 0:
            raise ValueError(
                f"config keys system.box_length ({system['box_length']:g}) and system.packing_fraction "
                f"({system['packing_fraction']:g}): give one of them, the other 0 (the box sets the packing fraction)"
            )
        system["packing_fraction"] = 0.0


def given_keys(path=None, overrides=()) -> tuple[dict, dict]:
    """(the keys a CONFIG file sets, the keys the ``--set`` overrides set), each flat (``"section.key": value``),
    as the user wrote them."""
    in_file = flatten(read_toml(Path(path))) if path is not None else {}
    return in_file, dict(parse_override(o) for o in overrides)
