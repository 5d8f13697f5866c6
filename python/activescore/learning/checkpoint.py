"""Msgpack files holding a pytree of arrays plus JSON metadata (training checkpoints and saved scores).

Files are written atomically (:func:`activescore.io.files.atomic_write`), so a run killed mid-write leaves the
previous file intact, and checked on reading: a missing, truncated, corrupt or foreign file is an error naming
the path and what it is not.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from ..io.files import atomic_write, describe_foreign, existing_file


def save_tree(path, tree, metadata: dict) -> None:
    """Store ``tree`` (a pytree of arrays: dicts, lists, NamedTuples) and JSON-serialisable ``metadata``."""
    state = serialization.to_state_dict(jax.device_get(tree))
    payload = {"metadata": json.dumps(metadata, sort_keys=True), "tree": state}
    atomic_write(path, serialization.msgpack_serialize(payload))


def _not_a(path: Path, what: str, why: str) -> ValueError:
    return ValueError(f"{path} is not {what}{describe_foreign(path)}: {why}")


def read_metadata_and_state(path, what: str = "an activescore msgpack file") -> tuple[dict, dict]:
    """The metadata and the raw state dict of a file written by :func:`save_tree`; ``what`` names the kind of file
    expected in errors (e.g. "a saved Score")."""
    path = existing_file(path, what.split(" ", 1)[-1])
    data = path.read_bytes()
    try:
        payload = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises ExtraData, ValueError, FormatError, ... on foreign bytes
        why = "it ends early (truncated?)" if "incomplete" in str(err) else f"unreadable msgpack ({err})"
        raise _not_a(path, what, why) from None
    if not (isinstance(payload, dict) and isinstance(payload.get("metadata"), str) and "tree" in payload):
        raise _not_a(path, what, "msgpack without activescore metadata")
    try:
        metadata = json.loads(payload["metadata"])
    except ValueError as err:
        raise _not_a(path, what, f"its metadata is not JSON ({err})") from None
    if not isinstance(metadata, dict):
        raise _not_a(path, what, "its metadata is not a JSON object")
    return metadata, payload["tree"]


def restore_tree(path, state: dict, target, what: str = "an activescore msgpack file"):
    """The pytree with the structure of ``target`` from a raw ``state`` read from ``path``."""
    try:
        tree = serialization.from_state_dict(target, state)
    except Exception as err:  # missing or extra keys: another network or another kind of file
        raise ValueError(f"{path}: its arrays do not fit {what} of this network ({err})") from None
    return jax.tree_util.tree_map(np.asarray, tree)


def load_tree(path, target, what: str = "an activescore msgpack file") -> tuple[object, dict]:
    """Restore a pytree with the structure of ``target`` (and its metadata) from :func:`save_tree`'s file."""
    metadata, state = read_metadata_and_state(path, what)
    return restore_tree(path, state, target, what), metadata
