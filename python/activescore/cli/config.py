"""Configuration of the command line: embedded defaults, TOML files and ``--set key=value`` overrides.

Every key is checked before any work starts: an unknown key or a value of the wrong type is a ValueError that
names the key. The resolved configuration is written beside every output (``config.toml``), so rerunning with
it reproduces the result.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path

from .. import _validate as check
from ..io.files import describe_foreign
from ..learning.settings import TrainConfig
from ..systems import ABP, MODELS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The embedded defaults of every section but ``[train]``: a small MIPS pipeline (the paper's parameters) that runs
#: on a laptop CPU. ``[train]`` is generated from :class:`activescore.learning.TrainConfig` (:func:`train_defaults`).
_SECTIONS: dict = {
    "system": {
        "model": "aoup",  # "aoup" or "abp"
        "n_particles": 512,
        "packing_fraction": 0.5,  # used unless box_length > 0
        "box_length": 0.0,
        "v0": 0.025,
        "gamma": 1e-4,  # AOUP propulsion relaxation rate
        "rotational_diffusion": 1.0,  # ABP only
        "eps": 0.0,
        "k": 1.0,
        "trap": 0.0,
        "beta": 7.5,  # inf = harmonic soft disks (TOML: beta = inf)
        "radius": 1.0,
    },
    "simulation": {
        "dt": 0.1,
        "n_steps": 20000,
        "burn_in": 0,
        "save_every": 1000,
        "seed": 1,
        "init": "uniform",  # "uniform" or "cluster"
        "backend": "auto",
        "dtype": "float64",
        "n_threads": 0,
    },
    "dataset": {
        "burn_in": 200000,  # steps before the first snapshot (MIPS clusters need ~1/gamma time units)
        "spacing": 2000,  # steps between snapshots (decorrelation)
        "n_frames": 64,
        "shard_frames": 16,
    },
    "estimate": {
        "bins": 0,  # map cells per side; 0 = about 20 particles per cell (plotting.bins_for)
        "frames": 0,  # 0 = all frames of the data set
    },
}


#: Values of ``train.network``: the network sizes, or the closed-form drift-response score.
NETWORKS = ("small", "paper", "linear")
#: Keys of ``[train]`` that say how the command runs, not what it learns (the rest are TrainConfig's fields).
_TRAIN_RUN = {
    "network": "small",  # "small" or "paper": the size; heads, inputs and neighbours follow the system and data;
    # "linear": the drift-response score fitted in closed form (AOUPs with eps = 0; learning/linear.py)
    "checkpoint_every": 1000,
    "frames_in_memory": 0,  # most frames held at once; a larger data set is streamed in windows of half as many
    # frames (0 = load it whole when it fits 1 GiB, else stream)
    "steps_per_window": 0,  # steps before the next window (0 = each particle of a window drawn ~once)
}
#: TrainConfig fields left to the data (None) and the number that stands for "automatic" in a TOML file.
_AUTOMATIC = {"n_steps": 0, "warmup_steps": -1}
#: The demo's values, layered on the defaults: the whole pipeline in minutes on a laptop CPU, in a regime where a
#: score trained through the defaults matches the identity (active soft disks with thermal noise: v0 = 0.5, γ = 1,
#: ε = 0.1, φ = 0.5). The paper's regime (the embedded defaults) is reported beside it (``cli.pipeline.paper_regime``).
DEMO = {
    "system": {"n_particles": 128, "v0": 0.5, "gamma": 1.0, "eps": 0.1, "beta": math.inf},
    "simulation": {"dt": 0.005},
    "dataset": {"burn_in": 10_000, "spacing": 100, "n_frames": 500, "shard_frames": 250},
    "train": {"checkpoint_every": 500},
}


#: The environment variable that makes every command small (``ACTIVESCORE_QUICK=1``): its values are layered on
#: the defaults (and on the demo's), so that each command runs through its defaults in seconds (the tests use it).
QUICK_VARIABLE = "ACTIVESCORE_QUICK"
#: The values ``ACTIVESCORE_QUICK=1`` layers on the defaults: 64 particles, short runs, 20 training steps.
QUICK = {
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


def train_defaults() -> dict:
    """The ``[train]`` section: TrainConfig's defaults (``sigmas`` as ``sigma``, automatic values as numbers) and
    the command's own keys."""
    fields = TrainConfig().to_dict()
    fields["sigma"] = fields.pop("sigmas")
    for key, automatic in _AUTOMATIC.items():
        fields[key] = automatic if fields[key] is None else fields[key]
    return {**fields, **_TRAIN_RUN}


def train_config(section: dict):
    """The :class:`~activescore.learning.TrainConfig` of a resolved ``[train]`` section."""
    fields = {k: v for k, v in section.items() if k not in _TRAIN_RUN}
    fields["sigmas"] = tuple(fields.pop("sigma"))
    for key, automatic in _AUTOMATIC.items():
        fields[key] = None if fields[key] == automatic else fields[key]
    try:
        # The ranges TrainConfig checks together, one key at a time, so that the message names the one that fails.
        check.real("learning_rate", fields["learning_rate"], low=0.0, low_open=True)
        check.real("ema_decay", fields["ema_decay"], low=0.0, high=1.0, high_open=True)
        check.real("grad_clip", fields["grad_clip"], low=0.0, low_open=True)
        return TrainConfig(**fields)
    except ValueError as err:
        raise ValueError(f"config section [train]: {err}") from None


def defaults(demo: bool = False, *, small: bool | None = None) -> dict:
    """The embedded defaults (with ``demo``: the demo's small values layered on them; with ``ACTIVESCORE_QUICK=1``
    in the environment: :data:`QUICK` layered on top)."""
    config = {**copy.deepcopy(_SECTIONS), "train": train_defaults()}
    config["estimate"] = config.pop("estimate")  # the pipeline's order: [estimate] after [train]
    for section, values in DEMO.items() if demo else ():
        config[section].update(values)
    for section, values in QUICK.items() if (quick() if small is None else small) else ():
        config[section].update(values)
    return config


#: The embedded defaults of every section.
DEFAULTS: dict = defaults(small=False)

#: Keys whose values are restricted beyond their type: (accepts the value, what is expected).
_VALUE_CHECKS = {
    "train.n_steps": (lambda v: v >= 0, "0 (from the data) or a positive integer"),
    "train.warmup_steps": (lambda v: v >= -1, "-1 (automatic) or a non-negative integer"),
    "train.network": (lambda v: v in NETWORKS, "'small', 'paper' or 'linear'"),
    "train.holdout": (lambda v: 0 <= v < 1, "a fraction in [0, 1) (0: no validation)"),
    "train.frames_in_memory": (lambda v: v == 0 or v >= 2, "0 (automatic) or an integer >= 2"),
    "train.steps_per_window": (lambda v: v >= 0, "0 (automatic) or a positive integer"),
}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _coerce(key: str, value, default):
    """Check `value` against the type of the default (ints are accepted for floats, scalars for lists)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        if isinstance(value, str):  # --set train.sigma=0.01,0.1: the items of a list, without the brackets
            try:
                value = tomllib.loads(f"v = [{value}]")["v"]
            except tomllib.TOMLDecodeError:
                pass
        value = value if isinstance(value, list) else [value]
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        value = [float(v) for v in value] if ok else value
    else:  # pragma: no cover
        ok = True
    if not ok:
        raise ValueError(f"config key {key}: expected {type(default).__name__}, got {value!r}")
    return value


def _parse_override(text: str):
    """``key=value`` with a TOML value (strings may be bare)."""
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def resolve(path=None, overrides=(), sections=None, *, demo: bool = False) -> dict:
    """Defaults (with ``demo``: the demo's values layered on them), then the TOML file, then ``key=value``
    overrides; every key checked. Returns a nested dict of the requested sections (default: all)."""
    config = defaults(demo)
    flat_defaults = _flatten(config)
    updates = {}
    if path is not None:
        updates.update(_flatten(_read_toml(Path(path))))
    updates.update(dict(_parse_override(o) for o in overrides))
    for key, value in updates.items():
        if key not in flat_defaults:
            section = key.split(".")[0]
            known = sorted(k for k in flat_defaults if k.startswith(section + ".")) or sorted(config)
            raise ValueError(f"config: unknown key {key!r} (known: {', '.join(known)})")
        value = _coerce(key, value, flat_defaults[key])
        accepts, expected = _VALUE_CHECKS.get(key, (lambda v: True, None))
        if not accepts(value):
            raise ValueError(f"config key {key}: expected {expected}, got {value!r}")
        section, name = key.split(".", 1)
        config[section][name] = value
    _check_system_keys(config["system"], updates, defaults(demo)["system"])
    if sections is None or "train" in sections:
        train_config(config["train"])  # TrainConfig's own checks, before any work
    return {k: v for k, v in config.items() if sections is None or k in sections}


#: The [system] key of each model's propulsion rate, which the other model does not have.
_MODEL_KEYS = {"aoup": "gamma", "abp": "rotational_diffusion"}


def _check_system_keys(system: dict, given: dict, default: dict) -> None:
    """Refuse [system] keys that would be ignored: the other model's propulsion rate set to a value of its own, and
    ``box_length`` together with ``packing_fraction`` (the API refuses both too). With ``box_length > 0`` and no
    packing fraction given, the resolved ``packing_fraction`` is 0 (unused), so that ``config.toml`` reruns."""
    model = system["model"]
    for other, key in _MODEL_KEYS.items():
        if other != model and model in _MODEL_KEYS and f"system.{key}" in given and system[key] != default[key]:
            raise ValueError(
                f"config key system.{key}: is a parameter of the {other.upper()} model, not of system.model = "
                f"{model!r} (whose propulsion rate is system.{_MODEL_KEYS[model]}); remove it or set "
                f"system.model = {other!r}"
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
    in_file = _flatten(_read_toml(Path(path))) if path is not None else {}
    return in_file, dict(_parse_override(o) for o in overrides)


def _read_toml(path: Path) -> dict:
    if not path.exists():
        raise ValueError(f"config: file {path} does not exist")
    if path.is_dir():
        raise ValueError(f"config: {path} is a folder, not a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"config: {path} is not a TOML file (not UTF-8 text){describe_foreign(path)}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config: {path} is not valid TOML: {err}") from None


def make_system(section: dict):
    """The system of a ``[system]`` section; parameter errors name the config key."""
    s = dict(section)
    model = s.pop("model")
    if model not in MODELS:
        raise ValueError(f"config key system.model: expected one of {sorted(MODELS)}, got {model!r}")
    n = s.pop("n_particles")
    size = {"box_length": s["box_length"]} if s["box_length"] > 0 else {"packing_fraction": s["packing_fraction"]}
    s.pop("box_length"), s.pop("packing_fraction")
    cls = MODELS[model]
    s.pop("gamma" if cls is ABP else "rotational_diffusion")
    try:
        return cls(n, **size, **s)
    except ValueError as err:
        parameter = str(err).split()[0].split("=")[0]  # messages start with the parameter's name
        raise ValueError(f"config key system.{parameter}: {err}") from None


#: Checks of the values of each section, with the API's ranges; each raises a ValueError naming the config key.
_SECTION_CHECKS = {
    "simulation": lambda s: [
        check.real("simulation.dt", s["dt"], low=0.0, low_open=True),
        check.integer("simulation.n_steps", s["n_steps"], low=0),
        check.integer("simulation.burn_in", s["burn_in"], low=0),
        check.integer("simulation.save_every", s["save_every"], low=1),
        check.integer("simulation.seed", s["seed"], low=0, high=2**64 - 1),
        check.choice("simulation.init", s["init"], {"uniform", "cluster"}),
        check.choice("simulation.backend", s["backend"], {"auto", "cpp", "cuda", "numba"}),
        check.choice("simulation.dtype", s["dtype"], {"float64", "float32"}),
        check.integer("simulation.n_threads", s["n_threads"], low=0),
    ],
    "dataset": lambda s: [
        check.integer("dataset.burn_in", s["burn_in"], low=0),
        check.integer("dataset.spacing", s["spacing"], low=1),
        check.integer("dataset.n_frames", s["n_frames"], low=1),
        check.integer("dataset.shard_frames", s["shard_frames"], low=1),
    ],
    "train": lambda s: [
        check.choice("train.loss", s["loss"], {"dsm", "implicit"}),
        check.choice("train.heldout_loss", s["heldout_loss"], {"dsm", "implicit"}),
        check.choice("train.network", s["network"], set(NETWORKS)),
        *[check.real("train.sigma", v, low=0.0, low_open=True) for v in s["sigma"]],
        check.integer("train.n_steps", s["n_steps"], low=0),  # 0: from the data
        check.integer("train.batch_particles", s["batch_particles"], low=1),
        check.real("train.learning_rate", s["learning_rate"], low=0.0, low_open=True),
        check.integer("train.seed", s["seed"], low=0, high=2**32 - 1),
        check.integer("train.checkpoint_every", s["checkpoint_every"], low=1),
    ],
    "estimate": lambda s: [
        check.integer("estimate.bins", s["bins"], low=0),
        check.integer("estimate.frames", s["frames"], low=0),
    ],
}


#: Particles of the stand-in system that checks the parameters of a larger one without allocating its arrays.
_PROXY_PARTICLES = 4096


def check_system(section: dict) -> None:
    """Check the parameters of a ``[system]`` section as :func:`make_system` does, without allocating N-long arrays
    for a large N: a system of fewer particles at the same parameters is built instead. Every check of the models
    is independent of N except the box (L grows with N at a given packing fraction, so a box that passes with fewer
    particles passes with more); when the stand-in fails, the system itself is built for the exact message."""
    try:
        n = check.integer("n_particles", section.get("n_particles"), low=1, high=2**31 - 1)
    except ValueError as err:
        raise ValueError(f"config key system.{err}") from None
    if n > _PROXY_PARTICLES:
        try:
            make_system({**section, "n_particles": _PROXY_PARTICLES})
            return
        except ValueError:
            pass
    make_system(section)


def check_sizes(config: dict) -> None:
    """Refuse, in one line with the estimate, a configuration whose simulation needs more memory than this machine
    has (:mod:`activescore.simulation.memory`): checked before the system's arrays are allocated."""
    from ..simulation.memory import check_memory, simulation_bytes

    system, sim, ds = config["system"], config.get("simulation", {}), config.get("dataset")
    n = system.get("n_particles")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return  # named by check_system
    components = 1 if system.get("model") == "abp" else 2
    shard = ds["shard_frames"] if ds else 0  # a data set's shard is gathered in memory before it is written
    dtype = sim.get("dtype", "float64")
    check_memory(
        simulation_bytes(n, components, shard, dtype),
        f"config: system.n_particles = {n}" + (f" with dataset.shard_frames = {shard}" if shard else ""),
        "lower system.n_particles" + (" or dataset.shard_frames" if shard else ""),
    )


def check_backend(name: str) -> None:
    """Refuse a simulation backend this machine cannot run (a missing GPU) as a bad value, before any work."""
    from .. import backends

    try:
        backends.resolve(name)
    except RuntimeError as err:
        raise ValueError(
            f"config key simulation.backend: {err}; use simulation.backend = 'auto' (the fastest one available)"
        ) from None


def validate(config: dict) -> None:
    """Check every value of a resolved configuration with the ranges the Python API enforces.

    Run before anything is created: the system is built (its parameters and box checked) and every other value
    must lie in its range.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`resolve`), all sections or any subset of them.

    Raises
    ------
    ValueError
        Naming the key and the allowed range, e.g. ``config: simulation.dt must be in (0, inf), got -1.0``.
    """
    if "system" in config:
        check_sizes(config)  # before the system is built: its arrays are N long
        check_system(config["system"])
    for section, checks in _SECTION_CHECKS.items():
        if section not in config:
            continue
        try:
            checks(config[section])
        except ValueError as err:
            raise ValueError(f"config: {err}") from None
    if "train" in config:
        train_config(config["train"])  # and every check TrainConfig itself makes
    sim = config.get("simulation")
    if sim is not None:
        check_backend(sim["backend"])
    if sim is not None and sim["n_steps"] % sim["save_every"]:
        raise ValueError(
            f"config: simulation.n_steps ({sim['n_steps']}) must be a multiple of "
            f"simulation.save_every ({sim['save_every']}), the steps between saved frames"
        )


def dumps(config: dict) -> str:
    """TOML text of a resolved configuration."""
    import tomli_w

    return tomli_w.dumps(config)
