"""The manifest (`run.json`): what run a folder holds (its identity), its epochs and its files.
No JAX here: the resume rule (`resume.py`) reads manifests and identities as plain dicts."""

from __future__ import annotations

import json
import os
from typing import Dict, List

from .. import files

MANIFEST, CHECKPOINT = "run.json", "checkpoint.npz"  # a run folder's layout
FORMAT = 3  # the run folder's format (3: one checkpoint schema); others are refused, not misread


class RunError(files.FileError):
    """A run folder cannot be used as asked (another run's, in use, corrupt): says why and what to do."""


def open_file(path: str, binary: bool = False):
    """`path` opened for reading, never through a symbolic link (what it points to is not ours)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(fd, "rb" if binary else "r")


def read_json(path: str):
    """A JSON file we wrote; unreadable, a link or not JSON is a RunError naming the file."""
    try:
        with open_file(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is not readable JSON ({getattr(e, 'strerror', None) or e})") from None


def read(path: str) -> dict | str | None:
    """The manifest at `path`: None when there is none, a message when it is not one."""
    if not os.path.lexists(path):
        return None
    try:
        manifest = read_json(path)
    except RunError as e:
        return str(e)
    return manifest if isinstance(manifest, dict) else f"{path} is not a run manifest (not a JSON object)"


def problem(manifest: dict) -> str | None:
    """What is garbled in a manifest of our format (edited by hand, another tool): its outputs are
    what `overwrite` removes, so each must lie inside the folder."""
    outputs, epochs = manifest.get("outputs"), manifest.get("epochs_done")
    if not isinstance(manifest.get("identity"), dict):
        return "its identity is not a JSON object"
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        return f"epochs_done {epochs!r} is not a count"
    if not isinstance(outputs, list) or not all(inside(rel) for rel in outputs):
        return f"outputs {outputs!r} are not paths inside the folder"
    return None


def inside(rel) -> bool:
    """A relative path that stays inside its folder."""
    if not isinstance(rel, str) or os.path.isabs(rel):
        return False
    return os.path.normpath(rel).split(os.sep)[0] not in ("..", ".")  # normpath("") is "."


def jsonable(value):
    """`json.dump`'s `default`: numpy values as Python's; anything else is refused (TypeError)."""
    if hasattr(value, "tolist"):  # numpy's scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot record {value!r} ({type(value).__name__}) in a run's identity")


def plain(value):
    """JSON round-trip, so tuples and lists (and numpy's or Python's numbers) compare as saved."""
    return json.loads(json.dumps(value, default=jsonable))


def _flat(config: Dict, prefix: str = "") -> Dict:
    """Nested keys as dotted names, so a difference is named down to the field."""
    out = {}
    for k, v in config.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def differences(saved: Dict, current: Dict) -> List[str]:
    """One line per dotted key whose value differs ("lr: saved 0.01, now 0.001"); empty when they agree."""
    saved, current = _flat(plain(saved)), _flat(plain(current))
    return [
        f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
        for k in sorted(set(saved) | set(current))
        if saved.get(k) != current.get(k)
    ]
