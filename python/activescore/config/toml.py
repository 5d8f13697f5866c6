"""TOML in and out of a configuration: reading a file, ``key=value`` overrides, flat ``section.key`` names and
the type check of a value against its default. Every mistake is a ValueError naming the file or the key."""

from __future__ import annotations

import sys
from pathlib import Path

from ..io.files import describe_foreign

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["coerce", "dumps", "flatten", "parse_override", "parse_value", "read_toml", "tomllib", "value_text"]


def read_toml(path) -> dict:
    """The tables of the TOML file ``path`` (a ValueError naming the file when it is missing, a folder, not text or
    not TOML)."""
    path = Path(path)
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


def parse_value(raw: str):
    """A TOML value written on the command line; text that is no TOML value is a bare string (``model=abp``)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_override(text: str) -> tuple[str, object]:
    """``key=value`` with a TOML value (strings may be bare)."""
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    return key.strip(), parse_value(raw)


def value_text(value) -> str:
    """``value`` written as TOML (the inverse of :func:`parse_value`)."""
    import tomli_w

    return tomli_w.dumps({"v": value})[4:].strip()


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"section": {"key": value}}`` as ``{"section.key": value}`` (tables within tables joined alike)."""
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def coerce(key: str, value, default):
    """``value`` checked against the type of ``default`` (ints are accepted for floats, scalars for lists)."""
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


def dumps(config: dict) -> str:
    """TOML text of a resolved configuration."""
    import tomli_w

    return tomli_w.dumps(config)
