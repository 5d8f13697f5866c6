"""The sections of a configuration file with their keys and defaults, each generated from what owns it.

- ``[system]``: the constructor parameters of every model in :data:`activescore.systems.MODELS` (read from their
  signatures, so a new parameter or model appears here by itself), with the defaults of the model chosen. The
  command line's default system is the paper's MIPS preset (:data:`PRESET`), which names
  :data:`activescore.systems.MIPS_PARAMETERS` rather than repeating them.
- ``[simulation]``: :class:`~activescore.config.simulation.SimulationConfig`.
- ``[train]``: :class:`activescore.learning.TrainConfig`, with the command's own keys.
- ``[dataset]`` and ``[estimate]``: the command line's stages; ``[sweep]``: :mod:`activescore.config.sweep`.

Layered on the defaults by name: :data:`DEMO` (``activescore demo``) and :data:`QUICK` (``ACTIVESCORE_QUICK=1``).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import os

from ..learning.settings import LOSSES, TrainConfig
from ..simulation.dataset import DatasetPlan
from ..systems import MIPS_PARAMETERS, MODELS, ParticleSystem, mips
from .simulation import SimulationConfig

# ---------------------------------------------------------------------------------------------------- [system]

#: The [system] keys that size the system, ahead of every model's parameters (0: unused, the other one sizes it).
SIZE_KEYS = ("n_particles", "packing_fraction", "box_length")
#: Model parameters whose API default ``None`` a TOML file cannot write, and the value standing for it there.
_TOML_FOR_NONE = {"beta": math.inf}  # beta = None: harmonic soft disks, the beta -> inf limit


def model_parameters(cls: type[ParticleSystem]) -> dict:
    """The constructor parameters of a model besides the size, with their defaults, in the constructor's order:
    the source of every ``[system]`` default (a float parameter's default as a float)."""
    out = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name in SIZE_KEYS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = p.default
        if default is None and name in _TOML_FOR_NONE:
            default = _TOML_FOR_NONE[name]
        if not isinstance(default, (bool, int, float, str)):
            raise TypeError(
                f"{cls.__name__}({name}=...): a [system] key needs a default a TOML file can hold, got {default!r} "
                "(add its TOML stand-in to activescore.config.schema._TOML_FOR_NONE)"
            )
        if "float" in str(p.annotation) and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        out[name] = default
    return out


def _merged(orders: list[list[str]]) -> list[str]:
    """The keys of several models in one order: each model's own order, a key of one model alone placed after the
    keys that precede it there (so ABP's rotational_diffusion follows AOUP's gamma, both right after v0)."""
    keys: list[str] = []
    for order in orders:
        for i, key in enumerate(order):
            if key in keys:
                continue
            at = keys.index(order[i - 1]) + 1 if i else 0
            while at < len(keys) and keys[at] not in order:
                at += 1  # past the keys of other models alone
            keys.insert(at, key)
    return keys


#: Every model's parameters, by model name.
MODEL_PARAMETERS = {name: model_parameters(cls) for name, cls in MODELS.items()}
#: The keys of ``[system]``: the model, the size, then every model's parameters.
SYSTEM_KEYS = ("model", *SIZE_KEYS, *_merged([list(p) for p in MODEL_PARAMETERS.values()]))

#: The command line's default system, by name: the paper's MIPS preset (:func:`activescore.mips`, an AOUP with
#: :data:`~activescore.systems.MIPS_PARAMETERS` at its packing fraction; run at ``MIPS_DT``, the
#: ``[simulation]`` default) at 512 particles, a size a laptop runs in minutes.
PRESET = "mips"
PRESETS = {
    "mips": {
        "model": "aoup",
        "n_particles": 512,
        "packing_fraction": inspect.signature(mips).parameters["packing_fraction"].default,
        **MIPS_PARAMETERS,
    }
}


def system_defaults(model: str | None = None) -> dict:
    """The ``[system]`` section with nothing set, for ``model`` (default: the preset's): the preset's size, the
    model's own defaults (:func:`model_parameters`), the preset's parameters when it is the preset's model, and
    the other models' keys at their first model's defaults (a resolved file holds every key)."""
    preset = dict(PRESETS[PRESET])
    model = preset["model"] if model is None else model
    section: dict[str, object] = {key: None for key in SYSTEM_KEYS}
    for parameters in reversed(MODEL_PARAMETERS.values()):  # the first model that has a key gives its default
        section.update(parameters)
    section.update(model=model, n_particles=preset.pop("n_particles"), box_length=0.0)
    section["packing_fraction"] = preset.pop("packing_fraction")
    section.update(MODEL_PARAMETERS.get(model, {}))
    if preset.pop("model") == model:
        section.update(preset)
    return section


def model_of(key: str) -> list[str]:
    """The models that have the [system] parameter ``key``."""
    return [name for name, parameters in MODEL_PARAMETERS.items() if key in parameters]


def system_section(system: ParticleSystem) -> dict:
    """The ``[system]`` section of a (monodisperse) system, sized by its packing fraction: what
    :func:`~activescore.config.checks.make_system` builds it back from."""
    d = system.to_dict()
    if not isinstance(d["radius"], float):
        raise ValueError("a configuration needs a monodisperse system (one radius)")
    section = system_defaults(system.model)
    for key in section:
        if key in d and d[key] is not None:
            section[key] = d[key]
    section.update(box_length=0.0, packing_fraction=system.packing_fraction)
    for key, stand_in in _TOML_FOR_NONE.items():
        section[key] = stand_in if d.get(key, 0) is None else section[key]
    return section


# ---------------------------------------------------------------------------------------------------- [train]

#: Values of ``train.network``: the network sizes (learning/defaults.py PRESETS, which needs JAX to read), or the
#: closed-form drift-response score.
NETWORKS = ("small", "paper", "linear")
#: Values of ``train.loss`` and ``train.heldout_loss``: the losses the learning code knows.
LOSS_NAMES = tuple(LOSSES)
#: Keys of ``[train]`` that say how the command runs, not what it learns (the rest are TrainConfig's fields).
TRAIN_RUN = {
    "network": "small",  # "small" or "paper": the size; heads, inputs and neighbours follow the system and data;
    # "linear": the drift-response score fitted in closed form (AOUPs with eps = 0; learning/linear.py)
    "checkpoint_every": 1000,
    "frames_in_memory": 0,  # most frames held at once; a larger data set is streamed in windows of half as many
    # frames (0 = load it whole when it fits 1 GiB, else stream)
    "steps_per_window": 0,  # steps before the next window (0 = each particle of a window drawn ~once)
}
#: TrainConfig fields left to the data (None) and the number that stands for "automatic" in a TOML file.
TRAIN_AUTOMATIC = {"n_steps": 0, "warmup_steps": -1}


def train_defaults() -> dict:
    """The ``[train]`` section: TrainConfig's defaults (``sigmas`` as ``sigma``, automatic values as numbers) and
    the command's own keys."""
    fields = TrainConfig().to_dict()
    fields["sigma"] = fields.pop("sigmas")
    for key, automatic in TRAIN_AUTOMATIC.items():
        fields[key] = automatic if fields[key] is None else fields[key]
    return {**fields, **TRAIN_RUN}


# ---------------------------------------------------------------------------------------------------- the file

#: The embedded defaults of ``[dataset]`` (a data set of the default system) and ``[estimate]``.
DATASET = {
    "burn_in": 200000,  # steps before the first snapshot (MIPS clusters need ~1/gamma time units)
    "spacing": 2000,  # steps between snapshots (decorrelation)
    "n_frames": 64,
    "shard_frames": next(f.default for f in dataclasses.fields(DatasetPlan) if f.name == "shard_frames"),
}
ESTIMATE = {
    "bins": 0,  # map cells per side; 0 = about 20 particles per cell (plotting.bins_for)
    "frames": 0,  # 0 = all frames of the data set
}

#: The demo's values, layered on the defaults: the whole pipeline in minutes on a laptop CPU, in a regime where a
#: score trained through the defaults matches the identity (active soft disks with thermal noise: v0 = 0.5, γ = 1,
#: ε = 0.1, φ = 0.5). The paper's regime (the embedded defaults) is reported beside it (``cli.pipeline.paper_regime``).
DEMO: dict[str, dict] = {
    "system": {"n_particles": 128, "v0": 0.5, "gamma": 1.0, "eps": 0.1, "beta": math.inf},
    "simulation": {"dt": 0.005},
    "dataset": {"burn_in": 10_000, "spacing": 100, "n_frames": 500, "shard_frames": 250},
    "train": {"checkpoint_every": 500},
}

#: The environment variable that makes every command small (``ACTIVESCORE_QUICK=1``): its values are layered on
#: the defaults (and on the demo's), so that each command runs through its defaults in seconds (the tests use it).
QUICK_VARIABLE = "ACTIVESCORE_QUICK"
#: The values ``ACTIVESCORE_QUICK=1`` layers on the defaults: 64 particles, short runs, 20 training steps.
QUICK: dict[str, dict] = {
    "system": {"n_particles": 64},
    "simulation": {"n_steps": 2000, "save_every": 200},
    "dataset": {"burn_in": 1000, "spacing": 100, "n_frames": 12, "shard_frames": 6},
    "train": {"n_steps": 20, "batch_particles": 32, "checkpoint_every": 10},
}


def quick() -> bool:
    """Whether ``ACTIVESCORE_QUICK=1`` asks for the small defaults (:data:`QUICK`)."""
    value = os.environ.get(QUICK_VARIABLE, "")
    if value not in ("", "0", "1"):
        raise ValueError(f"{QUICK_VARIABLE}={value!r}: expected 1 (small defaults) or 0 (the defaults)")
    return value == "1"


def defaults(demo: bool = False, *, small: bool | None = None, model: str | None = None) -> dict:
    """The embedded defaults of every section, in the pipeline's order (``model``: the [system] defaults of that
    model; with ``demo``: the demo's values layered on them; with ``ACTIVESCORE_QUICK=1`` in the environment or
    ``small``: :data:`QUICK` on top)."""
    config = {
        "system": system_defaults(model if model in MODEL_PARAMETERS else None),
        "simulation": SimulationConfig().to_section(),
        "dataset": dict(DATASET),
        "train": train_defaults(),
        "estimate": dict(ESTIMATE),
    }
    for section, values in DEMO.items() if demo else ():
        config[section].update(copy.deepcopy(values))
    for section, values in QUICK.items() if (quick() if small is None else small) else ():
        config[section].update(copy.deepcopy(values))
    return config


#: The embedded defaults of every section.
DEFAULTS: dict = defaults(small=False)
