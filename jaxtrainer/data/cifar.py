"""CIFAR-10, "python version" (https://www.cs.toronto.edu/~kriz/cifar.html, `cifar-10-batches-py/`):
`data_batch_1..5` and `test_batch`, pickled dicts of b"data", uint8 (N, 3072) (the red, green then
blue 32x32 planes), and b"labels", N ints in 0..9.
"""

from __future__ import annotations

import io
import os
import pickle
from pickle import UnpicklingError
from typing import Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..registry import CIFAR_FOLDER
from .idx import find_files

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
FOLDER = CIFAR_FOLDER

# What the batches' pickles may construct: numpy arrays and nothing else. A pickle can run any
# code it names; a file that names anything else is refused instead of executed.
_NUMPY_CORE = (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
_ALLOWED = {(f"numpy.{core}.{module}", name) for core in ("core", "_core") for module, name in _NUMPY_CORE}
_ALLOWED |= {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # encode: bytes at protocol 2


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnpicklingError(
            f"refusing to load {module}.{name}: a CIFAR batch holds only numpy arrays, lists and bytes"
        )


def read_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one pickled batch."""
    with open(path, "rb") as f:  # read first: what fails below is the content, not the file
        encoded = f.read()
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(encoded), encoding="bytes").load()
    except Exception as e:  # a truncated, corrupt or refused pickle: UnpicklingError, EOFError...
        raise InputError(f"{path}: not a readable CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise InputError(f"{path}: expected a dict with b'data' and b'labels', found {keys}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise InputError(f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),):
        raise InputError(f"{path}: b'data' holds {len(data)} images but b'labels' holds {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise InputError(f"{path}: labels must be class indices 0..9, found [{labels.min()}, {labels.max()}]")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_split(folder: str, names) -> Tuple[np.ndarray, np.ndarray]:
    """The named batch files of a CIFAR-10 folder, concatenated: (images, labels)."""
    images, labels = zip(*(read_batch(os.path.join(folder, name)) for name in names))
    return np.concatenate(images), np.concatenate(labels)


def read(folders: Sequence[str]):
    """Both splits from the first of `folders` holding all six batches (a `registry.DATASETS` reader)."""
    folder = find_files(folders, {name: name for name in TRAIN_FILES + TEST_FILES}, suffixes=("",))[0]
    return {"train": read_split(folder, TRAIN_FILES), "test": read_split(folder, TEST_FILES)}
