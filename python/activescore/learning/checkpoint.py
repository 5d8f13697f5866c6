"""Atomic msgpack files holding a pytree of arrays plus JSON metadata (training checkpoints and saved scores).

A file is written to a temporary name in the same directory and moved over the target with ``os.replace``, so a
run killed mid-write leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile

import jax
import numpy as np
from flax import serialization


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never a partial one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_tree(path, tree, metadata: dict) -> None:
    """Store ``tree`` (a pytree of arrays: dicts, lists, NamedTuples) and JSON-serialisable ``metadata``."""
    state = serialization.to_state_dict(jax.device_get(tree))
    payload = {"metadata": json.dumps(metadata, sort_keys=True), "tree": state}
    atomic_write_bytes(path, serialization.msgpack_serialize(payload))


def read_metadata_and_state(path) -> tuple[dict, dict]:
    """The metadata and the raw state dict of a file written by :func:`save_tree`."""
    with open(path, "rb") as f:
        payload = serialization.msgpack_restore(f.read())
    return json.loads(payload["metadata"]), payload["tree"]


def load_tree(path, target) -> tuple[object, dict]:
    """Restore a pytree with the structure of ``target`` (and its metadata) from :func:`save_tree`'s file."""
    metadata, state = read_metadata_and_state(path)
    tree = serialization.from_state_dict(target, state)
    return jax.tree_util.tree_map(np.asarray, tree), metadata
