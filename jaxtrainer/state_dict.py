"""Weights as a PyTorch state_dict file: `.pt` (torch.save of tensors), `.npz` or `.safetensors`."""

from __future__ import annotations

import os
from typing import Dict

import numpy as np

from . import files
from .errors import InputError
from .runs import check_writable_folder

STATE_DICT_FORMATS = (".pt", ".npz", ".safetensors")


def export_state_dict(tensors: Dict[str, np.ndarray], path: str) -> str:
    """`.pt` (torch.save of tensors), `.npz`, or `.safetensors` (needs the safetensors package)."""
    ext = os.path.splitext(path)[1]
    arrays = {k: np.array(v, dtype=np.float32) for k, v in tensors.items()}  # writable copies for torch
    check_export_path(path)
    if ext == ".pt":  # its package checked by check_export_path
        import torch

        write = lambda f: torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, f)
    elif ext == ".npz":
        write = lambda f: np.savez(f, **arrays)  # numpy's stub takes **arrays for allow_pickle  # pyright: ignore[reportArgumentType]
    else:
        from safetensors.numpy import save  # optional  # pyright: ignore[reportMissingImports]

        write = lambda f: f.write(save(arrays))
    return files.atomic_write(path, write, binary=True)


def check_export_path(path: str) -> str:
    """Before anything is trained: the format is known, its package installed, its folder writable."""
    ext = os.path.splitext(path)[1]
    if ext not in STATE_DICT_FORMATS:
        raise InputError(f"cannot export to {path!r}: the extension must be one of {STATE_DICT_FORMATS}")
    if os.path.isdir(path):
        raise InputError(f"cannot export to {path!r}: it is a folder")
    if ext != ".npz":
        _optional({".pt": "torch", ".safetensors": "safetensors"}[ext], path)
    check_writable_folder(os.path.dirname(os.path.abspath(path)), "export folder")
    return path


def import_state_dict(path: str) -> Dict[str, np.ndarray]:
    """A .pt, .npz or .safetensors file (by extension) as numpy arrays by key, for `load_state_dict`."""
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
        from safetensors.numpy import load_file  # optional  # pyright: ignore[reportMissingImports]

        return load_file(path)
    raise InputError(f"cannot import {path!r}: the extension must be one of {STATE_DICT_FORMATS}")


def _optional(module: str, path: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"{path}: this format needs the '{module}' package, which is not installed; use .npz instead"
        ) from None
