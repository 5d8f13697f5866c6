"""activescore.config: the sections generated from what owns them (the models, simulate, TrainConfig, the
registries), and one source of every default: the Python API and the command line agree, key by key."""

import dataclasses
import inspect
import math

import pytest

import activescore as a
from activescore import config as cfg
from activescore.backends import BACKENDS
from activescore.config import schema
from activescore.learning.settings import LOSSES, TrainConfig
from activescore.systems import MIPS_DT, MIPS_PARAMETERS, MODELS


def _api_defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_system_default_is_the_models_own(model):
    cls = MODELS[model]
    section = cfg.system_defaults(model)
    api = _api_defaults(cls)
    for key, value in api.items():
        if key in ("packing_fraction", "box_length"):
            continue  # the API asks for one of them; the command line sizes by the preset's packing fraction
        expected = math.inf if key == "beta" and value is None else value
        assert section[key] == expected, key
    # The command line's system of this model, nothing set, is the API's at the same size.
    built = cfg.make_system(cfg.resolve(overrides=[f"system.model={model}"])["system"])
    assert built == cls(section["n_particles"], packing_fraction=section["packing_fraction"])


def test_the_abp_default_v0_is_the_apis_on_the_command_line_too(capsys):
    from activescore import cli

    assert cli.main(["config", "--set", "system.model=abp"]) == 0
    printed = cfg.tomllib.loads(capsys.readouterr().out)["system"]
    assert printed["v0"] == a.ABP(8, packing_fraction=0.1).v0 == 1.0


def test_the_default_system_is_the_mips_preset_by_name():
    assert cfg.PRESET == "mips" and cfg.PRESETS["mips"]["model"] == "aoup"
    assert {k: cfg.DEFAULTS["system"][k] for k in MIPS_PARAMETERS} == MIPS_PARAMETERS
    n = cfg.DEFAULTS["system"]["n_particles"]
    assert cfg.make_system(cfg.DEFAULTS["system"]) == a.mips(n)
    assert cfg.DEFAULTS["simulation"]["dt"] == MIPS_DT


def test_simulation_defaults_are_simulates():
    api = _api_defaults(a.simulate)
    config = cfg.SimulationConfig()
    for key in ("burn_in", "init", "backend", "dtype", "n_threads"):
        assert getattr(config, key) == api[key], key
    # Left to the caller by the API (a fresh seed, about 100 frames): the command line reproduces its run.
    assert api["seed"] is None and api["save_every"] is None and "dt" not in api and "n_steps" not in api
    assert cfg.DEFAULTS["simulation"] == config.to_section()
    assert set(config.keywords()) <= set(inspect.signature(a.simulate).parameters)


def test_dataset_defaults_are_the_apis():
    from activescore.simulation.dataset import DatasetPlan, build_dataset

    plan = {f.name: f.default for f in dataclasses.fields(DatasetPlan)}
    assert cfg.DEFAULTS["dataset"]["shard_frames"] == plan["shard_frames"]
    api = _api_defaults(build_dataset)
    for key in ("init", "backend", "n_threads"):
        assert cfg.DEFAULTS["simulation"][key] == api[key], key


def test_train_defaults_are_train_configs():
    assert cfg.train_config(cfg.DEFAULTS["train"]) == TrainConfig()


def test_sweep_defaults_are_the_sweep_apis():
    from activescore.config.sweep import SWEEP_KEYWORDS

    api = _api_defaults(a.sweep)
    for key, value in cfg.SWEEP_KEYS.items():
        if key == "over":
            continue  # the API asks for it; the file's [sweep] over is empty unless set
        default = api[SWEEP_KEYWORDS.get(key, key)]
        # A value the API leaves unset (None) is empty or 0 in a TOML file.
        assert default == value or (default is None and not value), key


def test_allowed_values_come_from_the_registries():
    from activescore.config.simulation import BACKEND_NAMES

    assert BACKEND_NAMES == ("auto", *BACKENDS)
    assert schema.LOSS_NAMES == tuple(LOSSES)
    with pytest.raises(ValueError, match=r"simulation.backend must be one of \['auto', 'cpp', 'cuda', 'numba'\]"):
        cfg.SimulationConfig(backend="gpu")
    with pytest.raises(ValueError, match="train.loss must be one of"):
        cfg.validate({"train": {**cfg.DEFAULTS["train"], "loss": "mse"}})


def test_a_new_model_parameter_is_a_system_key_by_itself():
    @dataclasses.dataclass(frozen=True, eq=False, repr=False)
    class Chiral(a.ABP):
        omega: float = 0.0
        model = "chiral"

        def __init__(self, n_particles, *, packing_fraction=None, v0: float = 1.0, omega: float = 0, **rest):
            super().__init__(n_particles, packing_fraction=packing_fraction, v0=v0, **rest)
            object.__setattr__(self, "omega", omega)

    parameters = cfg.model_parameters(Chiral)
    assert parameters["omega"] == 0.0 and isinstance(parameters["omega"], float)  # a float key, though written 0
    assert list(parameters) == ["v0", "omega"]  # **rest is the parent's: the constructor says what it takes
    assert schema._merged([["v0", "gamma", "eps"], ["v0", "rotational_diffusion", "eps"], ["v0", "omega", "eps"]]) == [
        "v0",
        "gamma",
        "rotational_diffusion",
        "omega",
        "eps",
    ]


@pytest.mark.parametrize(
    "system",
    [
        a.mips(64, 0.4, cutoff_tol=1e-8),
        a.ABP(48, packing_fraction=0.3, v0=0.5, rotational_diffusion=2.0, beta=None),
    ],
)
def test_a_system_section_builds_the_system_back(system):
    section = cfg.system_section(system)
    assert set(section) == set(cfg.DEFAULTS["system"])
    assert cfg.make_system(section) == system
    cfg.validate({"system": section})
