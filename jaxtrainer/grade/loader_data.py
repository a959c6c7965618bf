"""The loader year's data, served offline: small real images in torchvision's own on-disk formats, so
that the students' unchanged `torchvision.datasets.SVHN(root='./data', download=True)` and
`CIFAR10(...)` read them (sandbox_boot.py skips their md5 checks and their downloads).

The images are the project's embedded digits (scikit-learn's 8x8 digits, `data.digits.frames`)
upscaled to 24x24 in 32x32 frames, the three channels the same digit at three intensities (so that a
channel mix-up shows), and the label is the digit: the same task in both formats. Runs in the
grader's process, never in the sandbox.
"""

from __future__ import annotations

import os
import pickle
from typing import Dict, Tuple

import numpy as np

from ..data import cifar, svhn
from ..data.digits import frames
from ..errors import InputError
from ..files import atomic_write

N_TRAIN = 500  # 4 batches of the template's 128, the last one short
N_TEST = 100
SEED = 0
CHANNEL_GAINS = (1.0, 0.8, 0.6)  # red, green, blue
LABEL_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
N_DIGITS = 1797  # scikit-learn's bundled digits


def loader_images(n_train: int = N_TRAIN, n_test: int = N_TEST) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images, labels), "test": ...}: uint8 (N, 3, 32, 32) and int64 (N,) digits 0..9, a
    seeded draw of distinct digits, the same on every call."""
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise InputError(f"{name} must be an integer of at least 2, got {n!r}")
    if n_train + n_test > N_DIGITS:
        raise InputError(
            f"n_train + n_test must be at most {N_DIGITS} (the embedded digits), got {n_train + n_test}"
        )
    from sklearn.datasets import load_digits

    gray = frames(side=32, digit=24)  # (1797, 32, 32) in [0, 1]
    colour = np.rint(gray[:, None] * np.asarray(CHANNEL_GAINS)[None, :, None, None] * 255).astype(np.uint8)
    labels = load_digits(return_X_y=True)[1].astype(np.int64)
    order = np.random.default_rng(SEED).permutation(N_DIGITS)
    train, test = order[:n_train], order[n_train : n_train + n_test]
    return {"train": (colour[train], labels[train]), "test": (colour[test], labels[test])}


def write_loader_data(root: str, n_train: int = N_TRAIN, n_test: int = N_TEST) -> dict:
    """Write SVHN's `train_32x32.mat`, `test_32x32.mat` and CIFAR-10's `cifar-10-batches-py/` under
    `root` (the folder a student's code gives as `root=`), each file whole or not at all.

    Returns {"train": (images, labels), "test": (images, labels), "files": [paths under root]}, the
    images uint8 (N, 3, 32, 32) as both data sets hand them to ToTensor and the labels int64 (N,),
    the same in both formats: what the grader computes its references from."""
    data = loader_images(n_train, n_test)
    os.makedirs(os.path.join(root, cifar.FOLDER), exist_ok=True)
    files = []
    for split, name in svhn.FILES.items():
        files.append(_write_svhn(os.path.join(root, name), *data[split]))
    train_parts = zip(*(np.array_split(part, len(cifar.TRAIN_FILES)) for part in data["train"]))
    batches = [*zip(cifar.TRAIN_FILES, train_parts), (cifar.TEST_FILES[0], data["test"])]
    for number, (name, (images, labels)) in enumerate(batches, start=1):
        title = (
            f"training batch {number} of {len(cifar.TRAIN_FILES)}"
            if number <= len(cifar.TRAIN_FILES)
            else "testing batch 1 of 1"
        )
        files.append(_write_cifar(os.path.join(root, cifar.FOLDER, name), images, labels, title))
    meta = {_Py2Str(k): v for k, v in _cifar_meta(n_train).items()}
    files.append(_write_pickle(os.path.join(root, cifar.FOLDER, "batches.meta"), meta))
    return {**data, "files": [os.path.relpath(f, root) for f in files]}


def _write_svhn(path: str, images: np.ndarray, labels: np.ndarray) -> str:
    """SVHN format 2: X uint8 (32, 32, 3, N), y uint8 (N, 1) with 10 for the digit 0."""
    from scipy.io import savemat

    X = np.ascontiguousarray(images.transpose(2, 3, 1, 0))
    y = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]
    return atomic_write(path, lambda f: savemat(f, {"X": X, "y": y}), binary=True)


def _write_cifar(path: str, images: np.ndarray, labels: np.ndarray, title: str) -> str:
    batch = {
        "batch_label": _Py2Str(title),
        "labels": [int(v) for v in labels],
        "data": images.reshape(len(images), -1),  # each row the red, green then blue planes
        "filenames": [_Py2Str(f"{LABEL_NAMES[v]}_s_{i:06d}.png") for i, v in enumerate(labels)],
    }
    return _write_pickle(path, {_Py2Str(k): v for k, v in batch.items()})


def _cifar_meta(n_train: int) -> dict:
    per_batch = -(-n_train // len(cifar.TRAIN_FILES))
    return {
        "num_cases_per_batch": per_batch,
        "label_names": [_Py2Str(n) for n in LABEL_NAMES],
        "num_vis": 3072,
    }


class _Py2Str(str):
    """A string pickled as Python 2 wrote CIFAR-10's (a byte string), so that it loads as `str` with
    encoding="latin1" (torchvision reads entry["data"]) and as `bytes` with encoding="bytes" (the
    reader on CIFAR's own page reads dict[b'data']), as the real files do."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler: the C one cannot emit a byte string
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin1")
        if len(data) < 256:
            # pickle._Pickler's write and memoize, which its stub leaves out
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)  # pyright: ignore[reportAttributeAccessIssue]
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)  # pyright: ignore[reportAttributeAccessIssue]
        self.memoize(obj)  # pyright: ignore[reportAttributeAccessIssue]

    dispatch[_Py2Str] = save_py2_str  # the pure-Python dispatch  # pyright: ignore[reportArgumentType]


def _write_pickle(path: str, obj) -> str:
    return atomic_write(path, lambda f: _Py2Pickler(f, protocol=2).dump(obj), binary=True)
