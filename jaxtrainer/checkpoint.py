"""Checkpoints that survive a kill at any instant, and weights as a PyTorch state_dict file.

A checkpoint is one .npz (every leaf of the training state, plus a JSON header with the epoch, the
logs and the run's configuration) written to a temporary name and renamed over the previous one:
a rename is atomic, so the file on disk is always a complete checkpoint.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Tuple

import jax
import numpy as np

CHECKPOINT = "checkpoint.npz"
IGNORED_FOR_RESUME = ("epochs",)  # more epochs may be asked of a resumed run


def save(out_dir: str, state, epoch: int, logs: dict, config: dict) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, CHECKPOINT)
    header = json.dumps({"epoch": epoch, "logs": logs, "config": config})
    leaves = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(state))}
    tmp = path + ".tmp.npz"
    with open(tmp, "wb") as f:
        np.savez(f, header=np.array(header), **leaves)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def exists(out_dir: str) -> bool:
    return os.path.isfile(os.path.join(out_dir, CHECKPOINT))


def load(out_dir: str, template, config: dict) -> Tuple[Any, int, dict]:
    """(state, epoch, logs) from `out_dir`'s checkpoint; `template` is a freshly initialised state
    of the same structure. Refused, naming the differences, when `config` is not the saved one."""
    path = os.path.join(out_dir, CHECKPOINT)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    try:
        with np.load(path) as f:
            header = json.loads(str(f["header"]))
            leaves = [f[f"leaf_{i}"] for i in range(len(f.files) - 1)]
    except Exception as e:  # zip, JSON or key errors: the file is not one of ours
        raise ValueError(f"{path} is not a readable jaxtrainer checkpoint ({e})") from None
    check_same_config(header["config"], config, path)
    expected = jax.tree.leaves(template)
    if len(leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(leaves, expected)):
        raise ValueError(f"{path} holds a state of another shape than this network's")
    state = jax.tree.unflatten(
        jax.tree.structure(template), [np.asarray(a, dtype=b.dtype) for a, b in zip(leaves, expected)]
    )
    return jax.tree.map(jax.numpy.asarray, state), header["epoch"], header["logs"]


def check_same_config(saved: Dict, current: Dict, path: str = "the checkpoint") -> None:
    saved, current = _flat(_plain(saved)), _flat(_plain(current))
    keys = sorted((set(saved) | set(current)) - set(IGNORED_FOR_RESUME))
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}"
        for k in keys
        if saved.get(k) != current.get(k)
    ]
    if diffs:
        raise ValueError(
            f"{path} was written by a different configuration; refusing to resume. " + "; ".join(diffs)
        )


def _flat(config: Dict, prefix: str = "") -> Dict:
    """Nested keys as dotted names, so a difference is named down to the field."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _plain(value):
    """JSON round-trip, so tuples and lists (and ints and floats) compare as they were saved."""
    return json.loads(json.dumps(value))


# -- weights as a PyTorch state_dict file ---------------------------------------------------------
STATE_DICT_FORMATS = (".pt", ".npz", ".safetensors")


def export_state_dict(tensors: Dict[str, np.ndarray], path: str) -> str:
    """`.pt` (torch.save of tensors, loadable with `model.load_state_dict(torch.load(path))`),
    `.npz`, or `.safetensors` (needs the safetensors package)."""
    ext = os.path.splitext(path)[1]
    arrays = {k: np.array(v, dtype=np.float32) for k, v in tensors.items()}  # writable copies for torch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if ext == ".pt":
        torch = _optional("torch", path)
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, path)
    elif ext == ".npz":
        np.savez(path, **arrays)
    elif ext == ".safetensors":
        _optional("safetensors", path)
        from safetensors.numpy import save_file

        save_file(arrays, path)
    else:
        raise ValueError(f"cannot export to {path!r}: the extension must be one of {STATE_DICT_FORMATS}")
    return path


def import_state_dict(path: str) -> Dict[str, np.ndarray]:
    ext = os.path.splitext(path)[1]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no state_dict file at {path}")
    if ext == ".pt":
        torch = _optional("torch", path)
        return {k: v.detach().cpu().numpy() for k, v in torch.load(path, map_location="cpu").items()}
    if ext == ".npz":
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    if ext == ".safetensors":
        _optional("safetensors", path)
        from safetensors.numpy import load_file

        return load_file(path)
    raise ValueError(f"cannot import {path!r}: the extension must be one of {STATE_DICT_FORMATS}")


def _optional(module: str, path: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"{path}: this format needs the '{module}' package, which is not installed; use .npz instead"
        ) from None
