"""Datasets as NCHW float32 images in [-1, 1] and (N, 1) standardised float32 targets.

`load(source)` takes a name ("digits"), a folder in the rotated-Fashion-MNIST format, or arrays
`((X_train, y_train), (X_test, y_test))` used as given; the names of real datasets ("fashion_mnist",
"mnist", "svhn", "cifar10") read files the user already has from `data_dir` (raw files or a prepared
tfds data dir, `named.py`). Nothing here ever downloads.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Tuple

import numpy as np

DEFAULT_FOLDER = "rotated_fashion_mnist"
DATA_DIR_NAMES = ("fashion_mnist", "mnist", "svhn", "cifar10")  # read from files in data_dir
NAMES = ("digits", *DATA_DIR_NAMES)
DATA_DIR_ENV = "JAXTRAINER_DATA_DIR"  # data_dir's default, as TFDS_DATA_DIR is tfds's


@dataclass(frozen=True)
class Dataset:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    # How the homework serves it (docs/homework.md): "tensor", whole (X, y) tuples, or "loader",
    # iterables of (images, labels) batches (SVHN, CIFAR-10).
    variant: str = "tensor"

    @property
    def train(self) -> Tuple[np.ndarray, np.ndarray]:
        return self.X_train, self.y_train

    @property
    def test(self) -> Tuple[np.ndarray, np.ndarray]:
        return self.X_test, self.y_test

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return tuple(self.X_train.shape[1:])


def fingerprint(train, test) -> dict:
    """Shapes and a checksum of a strided sample of (X, y) pairs (numpy or torch): enough to
    refuse resuming on other data."""
    arrays = [_numpy(a) for a in (*train, *test)]
    sample = b"".join(np.ascontiguousarray(a[::97], dtype=np.float32).tobytes() for a in arrays)
    return {"train": list(arrays[0].shape), "test": list(arrays[2].shape), "crc32": zlib.crc32(sample)}


def to_unit_range(images_01: np.ndarray) -> np.ndarray:
    """The homework's pixel mapping: (x - 0.5) / 0.5 after scaling to [0, 1]."""
    return ((images_01 - 0.5) / 0.5).astype(np.float32)


_UINT8_TO_UNIT = to_unit_range(np.arange(256) / 255.0)


def uint8_to_unit_range(images: np.ndarray) -> np.ndarray:
    """`to_unit_range(images / 255)` for uint8 pixels, bit for bit, by table look-up: one float32
    array, never the float64 temporary (1.8 GB for SVHN's training set)."""
    return _UINT8_TO_UNIT[images]


def standardise(y_train: np.ndarray, y_test: np.ndarray):
    """Targets standardised with the train mean and unbiased std, as the homework does."""
    mean, std = y_train.mean(), y_train.std(ddof=1)
    if not std > 0:
        raise ValueError(f"the training targets are constant ({mean!r}): they cannot be standardised")
    scale = lambda y: ((y - mean) / std).astype(np.float32).reshape(-1, 1)  # noqa: E731
    return scale(y_train), scale(y_test)


def from_arrays(arrays, name: str = "arrays") -> Dataset:
    """Arrays ((X_train, y_train), (X_test, y_test)), checked and converted, otherwise used as given."""
    try:
        (X_train, y_train), (X_test, y_test) = arrays
    except (TypeError, ValueError):
        raise ValueError("dataset arrays must be ((X_train, y_train), (X_test, y_test))") from None
    parts = {}
    for split, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        X, y = _numpy(X), _numpy(y)
        if X.ndim != 4:
            raise ValueError(f"X_{split} must be images (N, C, H, W), got shape {X.shape}")
        if len(X) == 0:
            raise ValueError(f"X_{split} is empty: at least one example is needed")
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.shape != (len(X), 1):
            raise ValueError(f"y_{split} must have shape ({len(X)}, 1) to match X_{split}, got {y.shape}")
        for label, a in ((f"X_{split}", X), (f"y_{split}", y)):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{label} contains NaN or Inf values")
        parts[split] = (X.astype(np.float32), y.astype(np.float32))
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise ValueError(
            f"train images {parts['train'][0].shape[1:]} and test images "
            f"{parts['test'][0].shape[1:]} differ in shape"
        )
    return Dataset(name, *parts["train"], *parts["test"])


def _numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def load(source=None, *, seed: int = 0, data_dir=None) -> Dataset:
    """A dataset from a name, a folder, or arrays; None means ./rotated_fashion_mnist as the
    original homework did, and an error that says how to get data when it is absent.

    `data_dir` (default: $JAXTRAINER_DATA_DIR) is where the names in DATA_DIR_NAMES find their
    files; `seed` draws the rotations of "digits", "fashion_mnist" and "mnist"."""
    if data_dir is not None and not (isinstance(source, str) and source in DATA_DIR_NAMES):
        given = repr(source) if isinstance(source, (str, os.PathLike, type(None))) else "arrays"
        raise ValueError(
            f"data_dir is used with the dataset names {DATA_DIR_NAMES}, not with dataset={given}"
        )
    if source is None:
        if os.path.isdir(DEFAULT_FOLDER):
            source = DEFAULT_FOLDER
        else:
            raise FileNotFoundError(
                f"no dataset given and ./{DEFAULT_FOLDER} does not exist. Pass dataset='digits' "
                "(embedded, offline), a folder with train/ and test/ PNGs named <i>_<angle>.png, "
                "arrays ((X_train, y_train), (X_test, y_test)), or one of fashion_mnist, mnist, "
                "svhn, cifar10 with data_dir= where its files are. To make ./rotated_fashion_mnist "
                "from the Fashion-MNIST IDX files: jaxtrainer data build-rotated --source DIR --out "
                f"{DEFAULT_FOLDER}. Nothing is downloaded."
            )
    if isinstance(source, (tuple, list)):
        return from_arrays(source)
    if isinstance(source, Dataset):
        return source
    source = os.fspath(source)
    if source == "digits":
        from .digits import load_digits

        return load_digits(seed=seed)
    if source in DATA_DIR_NAMES:
        from .named import load_named

        return load_named(source, data_dir, seed=seed)
    if os.path.isdir(source):
        from .rotated import load_rotated_folder

        return load_rotated_folder(source)
    raise ValueError(
        f"unknown dataset {source!r}: expected one of {NAMES}, an existing folder, "
        "or arrays ((X_train, y_train), (X_test, y_test))"
    )
