"""SVHN "cropped digits" (format 2, http://ufldl.stanford.edu/housenumbers/): `train_32x32.mat` and
`test_32x32.mat`, each `X` uint8 (32, 32, 3, N) and `y` (N, 1) labels 1..10 (10: the digit 0).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..errors import InputError
from .idx import find_files

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def read_mat(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, H, W), digits int64 (N,) in 0..9) from one SVHN .mat file."""
    from scipy.io import loadmat

    try:
        contents = loadmat(path, variable_names=("X", "y"))
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, zlib errors... when corrupt
        raise InputError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from None
    missing = [k for k in ("X", "y") if k not in contents]
    if missing:
        raise InputError(
            f"{path}: no variable {' or '.join(missing)}: expected SVHN's X "
            "(32, 32, 3, N) images and y (N, 1) labels"
        )
    X, y = contents["X"], np.asarray(contents["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[2] != 3:
        raise InputError(f"{path}: X has shape {X.shape}, expected (H, W, 3, N) as SVHN's (32, 32, 3, N)")
    if X.dtype != np.uint8:
        raise InputError(f"{path}: X holds {X.dtype}, expected uint8 pixels")
    if y.size != X.shape[3]:
        raise InputError(f"{path}: X holds {X.shape[3]} images but y holds {y.size} labels")
    if y.size and (not np.all(y == np.round(y)) or y.min() < 0 or y.max() > 10):
        raise InputError(
            f"{path}: labels must be integers 1..10 (10 for the digit 0), "
            f"found values in [{y.min()}, {y.max()}]"
        )
    # (H, W, C, N) -> (N, C, H, W), as torchvision does; 10 means the digit 0
    return np.ascontiguousarray(X.transpose(3, 2, 0, 1)), y.astype(np.int64) % 10


def read(folders: Sequence[str]):
    """Both splits from the first of `folders` holding both files (a `registry.DATASETS` reader)."""
    return {split: read_mat(path) for split, path in find_files(folders, FILES, suffixes=("",))[1].items()}
