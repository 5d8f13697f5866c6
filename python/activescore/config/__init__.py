"""The configuration of a run, below the command line: the schema of every section, TOML reading, coercion and
validation; the command line (:mod:`activescore.cli`) and the sweeps (:mod:`activescore.sweeps`) both read it.
:mod:`.schema` generates the sections and defaults from what owns them (the models, ``simulate``, TrainConfig)
and names the presets; :mod:`.simulation` holds :class:`SimulationConfig`; :mod:`.toml` reads files and
overrides; :mod:`.resolve` layers them on the defaults; :mod:`.checks` applies the API's ranges and builds the
system; :mod:`.sweep` reads the ``[sweep]`` section."""

from .checks import check_backend, check_sizes, check_system, make_system, train_config, validate
from .resolve import given_keys, resolve, resolve_keys
from .schema import (
    DEFAULTS,
    DEMO,
    MODEL_PARAMETERS,
    NETWORKS,
    PRESET,
    PRESETS,
    QUICK,
    QUICK_VARIABLE,
    defaults,
    model_parameters,
    quick,
    system_defaults,
    system_section,
    train_defaults,
)
from .simulation import SimulationConfig
from .sweep import SWEEP_KEYS, read_sweep_file
from .toml import coerce, dumps, flatten, parse_override, parse_value, read_toml, tomllib

__all__ = [
    "DEFAULTS", "DEMO", "MODEL_PARAMETERS", "NETWORKS", "PRESET", "PRESETS", "QUICK", "QUICK_VARIABLE", "SWEEP_KEYS", "SimulationConfig",
    "check_backend", "check_sizes", "check_system", "coerce", "defaults", "dumps", "flatten", "given_keys",
    "make_system", "model_parameters", "parse_override", "parse_value", "quick", "read_sweep_file", "read_toml",
    "resolve", "resolve_keys", "system_defaults", "system_section", "tomllib", "train_config", "train_defaults",
    "validate",
]  # fmt: skip
