"""Checking a resolved configuration with the ranges the Python API enforces, and building what it describes.

Each check raises a ValueError naming the config key, the value and what is allowed, before anything is created.
"""

from __future__ import annotations

from .. import _validate as check
from ..learning.settings import TrainConfig
from ..systems import MODELS, ParticleSystem
from .schema import LOSS_NAMES, MODEL_PARAMETERS, NETWORKS, SIZE_KEYS, TRAIN_AUTOMATIC, TRAIN_RUN
from .simulation import SimulationConfig


def train_config(section: dict) -> TrainConfig:
    """The :class:`~activescore.learning.TrainConfig` of a resolved ``[train]`` section."""
    fields = {k: v for k, v in section.items() if k not in TRAIN_RUN}
    fields["sigmas"] = tuple(fields.pop("sigma"))
    for key, automatic in TRAIN_AUTOMATIC.items():
        fields[key] = None if fields[key] == automatic else fields[key]
    try:
        # The ranges TrainConfig checks together, one key at a time, so that the message names the one that fails.
        check.real("learning_rate", fields["learning_rate"], low=0.0, low_open=True)
        check.real("ema_decay", fields["ema_decay"], low=0.0, high=1.0, high_open=True)
        check.real("grad_clip", fields["grad_clip"], low=0.0, low_open=True)
        return TrainConfig(**fields)
    except ValueError as err:
        raise ValueError(f"config section [train]: {err}") from None


def make_system(section: dict) -> ParticleSystem:
    """The system of a ``[system]`` section (the other models' keys left out); parameter errors name the key."""
    s = dict(section)
    model = s.pop("model")
    if model not in MODELS:
        raise ValueError(f"config key system.model: expected one of {sorted(MODELS)}, got {model!r}")
    cls = MODELS[model]
    n = s["n_particles"]
    size = {"box_length": s["box_length"]} if s["box_length"] > 0 else {"packing_fraction": s["packing_fraction"]}
    parameters = {k: v for k, v in s.items() if k in MODEL_PARAMETERS[model] and k not in SIZE_KEYS}
    try:
        return cls(n, **size, **parameters)
    except ValueError as err:
        parameter = str(err).split()[0].split("=")[0]  # messages start with the parameter's name
        raise ValueError(f"config key system.{parameter}: {err}") from None


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


#: Checks of the values of each section besides [system] and [simulation] (:class:`SimulationConfig`), with the
#: API's ranges; each raises a ValueError naming the config key.
_SECTION_CHECKS = {
    "dataset": lambda s: [
        check.integer("dataset.burn_in", s["burn_in"], low=0),
        check.integer("dataset.spacing", s["spacing"], low=1),
        check.integer("dataset.n_frames", s["n_frames"], low=1),
        check.integer("dataset.shard_frames", s["shard_frames"], low=1),
    ],
    "train": lambda s: [
        check.choice("train.loss", s["loss"], set(LOSS_NAMES)),
        check.choice("train.heldout_loss", s["heldout_loss"], set(LOSS_NAMES)),
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


def check_sizes(config: dict) -> None:
    """Refuse, in one line with the estimate, a configuration whose simulation needs more memory than this machine
    has (:mod:`activescore.simulation.memory`): checked before the system's arrays are allocated."""
    from ..simulation.memory import check_memory, simulation_bytes

    system, sim, ds = config["system"], config.get("simulation", {}), config.get("dataset")
    n = system.get("n_particles")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return  # named by check_system
    model = MODELS.get(system.get("model"))
    components = 2 if model is None else model.propulsion_components
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
        A resolved configuration (:func:`~activescore.config.resolve`), all sections or any subset of them.

    Raises
    ------
    ValueError
        Naming the key and the allowed range, e.g. ``config: simulation.dt must be in (0, inf), got -1.0``.
    """
    if "system" in config:
        check_sizes(config)  # before the system is built: its arrays are N long
        check_system(config["system"])
    sim = config.get("simulation")
    for section, checks in {"simulation": SimulationConfig.from_section, **_SECTION_CHECKS}.items():
        if section not in config:
            continue
        try:
            checks(config[section])
        except ValueError as err:
            raise ValueError(f"config: {err}") from None
    if "train" in config:
        train_config(config["train"])  # and every check TrainConfig itself makes
    if sim is not None:
        check_backend(sim["backend"])
    if sim is not None and sim["n_steps"] % sim["save_every"]:
        raise ValueError(
            f"config: simulation.n_steps ({sim['n_steps']}) must be a multiple of "
            f"simulation.save_every ({sim['save_every']}), the steps between saved frames"
        )
