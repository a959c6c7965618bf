"""The checkpoint (`checkpoint.npz`), one schema for every run: the training state's leaves and a JSON
header: `epoch` (finished), `identity` (the manifest's), `logs` (the caller's, so far), `seconds` (over
every process) and `logs_json` ({member folder: its logs.json}, the truth a logs.json is rebuilt from).
Renamed into place before the manifest is rewritten, it is the truth of the epochs done."""

from __future__ import annotations

import json
import zipfile
from typing import Any, Tuple

import jax
import numpy as np

from .. import files
from .manifest import RunError, jsonable, open_file

_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


def save_checkpoint(path: str, tree, header: dict) -> str:
    """Every leaf of `tree` and `header` (the schema above), in one .npz."""
    text = json.dumps(header, default=jsonable)
    leaves = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}
    # numpy's stub reads **leaves as savez's allow_pickle
    write = lambda f: np.savez(f, header=np.array(text), **leaves)  # pyright: ignore[reportArgumentType]
    return files.atomic_write(path, write, binary=True)


def read_payload(path: str, hint: str | None = "--overwrite", leaves: bool = False) -> dict:
    """The checkpoint's header, checked (a link is refused: it is not ours), and its arrays under
    "leaves" if asked. `hint` (None: none) is how to start over, for the message of an unreadable one."""
    try:
        with open_file(path, binary=True) as raw, np.load(raw) as f:
            header = json.loads(str(f["header"]))
            epoch, identity = header["epoch"], header["identity"]
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"epoch {epoch!r} is not a count")
            if not isinstance(identity, dict):
                raise TypeError(f"identity {identity!r} is not a JSON object")
            if "logs" not in header:
                raise KeyError("logs")
            if not isinstance(header.setdefault("logs_json", {}), dict):
                raise TypeError("logs_json is not a JSON object")
            header["seconds"] = float(header.get("seconds", 0.0))
            if leaves:
                header["leaves"] = {name: f[name] for name in f.files if name != "header"}
    except _UNREADABLE as e:
        why = f"{path} is not a readable jaxtrainer checkpoint ({type(e).__name__}: {e})"
        raise RunError(why + (f"; use {hint} to start over" if hint else "")) from None
    return header


def read_header(path: str, hint: str = "--overwrite") -> Tuple[int, Any, dict]:
    """(epoch, logs, identity) of the checkpoint at `path`, without its arrays."""
    header = read_payload(path, hint)
    return header["epoch"], header["logs"], header["identity"]


def load_checkpoint(path: str, template, hint: str = "--overwrite") -> Tuple[Any, int, Any, dict]:
    """(tree, epoch, logs, identity) from `path`; `template` is a tree of the same structure,
    shapes and dtypes."""
    header, expected = read_payload(path, hint, leaves=True), jax.tree.leaves(template)
    arrays, names = header["leaves"], [f"leaf_{i}" for i in range(len(expected))]
    if sorted(arrays) != sorted(names):
        raise RunError(
            f"{path} holds {len(arrays)} arrays, this run's state has {len(expected)}; "
            f"use {hint} to start over"
        )
    for i, (name, b) in enumerate(zip(names, map(np.asarray, expected))):
        a = arrays[name]
        if a.shape != b.shape or a.dtype != b.dtype:
            raise RunError(
                f"{path} holds a state of another shape than this run's (array {i}: "
                f"{a.dtype}{list(a.shape)}, expected {b.dtype}{list(b.shape)}); use {hint} to start over"
            )
    tree = jax.tree.unflatten(jax.tree.structure(template), [jax.numpy.asarray(arrays[n]) for n in names])
    return tree, header["epoch"], header["logs"], header["identity"]
