"""The ``[sweep]`` section of a configuration file: how ``activescore sweep`` runs its grid.

Its keys are :func:`activescore.sweep`'s keywords (``workers`` is ``n_workers``) with the same defaults; a value the
API leaves unset (None) is written as the empty string or 0 here (``scheduler = ""``: a local cluster; ``score =
""``: none; ``cluster_cutoff = 0``: automatic). The file's other sections are resolved as every command's are.
"""

from __future__ import annotations

from .resolve import resolve_keys
from .toml import coerce, flatten, parse_override, read_toml

#: Keys of the [sweep] section of a CONFIG file, with their command-line defaults.
SWEEP_KEYS = {
    "over": {},
    "seeds": 1,
    "keep": "final",
    "scheduler": "",
    "workers": 0,
    "threads": 0,
    "score": "",
    "retry_failed": False,
    "checkpoint_every": 0,
    "cluster_cutoff": 0.0,
    "density_radius": 0.0,
    "figures": True,
    "cluster": {},
}
#: The [sweep] keys named otherwise among :func:`activescore.sweep`'s keywords.
SWEEP_KEYWORDS = {"workers": "n_workers"}
#: [sweep] keys that hold a table or either of two types (a count or a list of seeds): checked by the sweep.
_UNTYPED = ("over", "seeds", "cluster")


def read_sweep_file(path, overrides=()) -> tuple[dict, dict]:
    """(the resolved ``[system]`` and ``[simulation]`` sections, the ``[sweep]`` settings) of a CONFIG file (None:
    none) with ``--set`` ``overrides``; unknown keys and values of the wrong type are refused, naming the key."""
    data = read_toml(path) if path is not None else {}
    section = data.pop("sweep", {})
    if not isinstance(section, dict):
        raise ValueError(f"config: sweep must be a table ([sweep]), got {section!r}")
    unknown = sorted(set(section) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(
            f"config: unknown key(s) sweep.{', sweep.'.join(unknown)} (known: "
            f"{', '.join('sweep.' + k for k in SWEEP_KEYS)})"
        )
    settings = dict(SWEEP_KEYS)
    for key, value in section.items():
        settings[key] = value if key in _UNTYPED else coerce(f"sweep.{key}", value, SWEEP_KEYS[key])
    updates = {**flatten(data), **dict(parse_override(o) for o in overrides)}
    return resolve_keys(updates, ("system", "simulation")), settings
