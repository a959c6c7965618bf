"""The real datasets by name, from files the user already has in `data_dir`; never downloaded.

`data_dir` may be the folder holding the files or a cache that holds them in its usual sub-folder
(torchvision's root, Keras's ~/.keras/datasets), or a prepared tensorflow_datasets data dir. Raw
files are looked for first (numpy/scipy only); tfds is used only when they are absent and
`data_dir/<tfds name>/` is a prepared dataset.

- "fashion_mnist", "mnist": the rotation task (the homework's tensor variant) built in memory from
  the IDX files exactly as `jaxtrainer data build-rotated` builds its folder (same seed, same arrays).
- "svhn", "cifar10": the class index as a float (N, 1) target, not standardised (the homework's
  loader variant: the facade serves them as batch loaders).
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from ..errors import InputError
from ..registry import DATASETS
from . import cifar, idx, svhn
from .dataset import Dataset
from .rotation import N_TEST, rotated_splits, rotation_dataset
from .scaling import pixels_to_unit_range
from .tfds import load_tfds, prepared_folder

DATA_DIR_ENV = "JAXTRAINER_DATA_DIR"  # data_dir's default, as TFDS_DATA_DIR is tfds's


def _folders(data_dir: str, name: str):
    return [
        os.path.normpath(os.path.join(data_dir, sub))
        for sub in DATASETS[name].subfolders
        if os.path.isdir(os.path.join(data_dir, sub))
    ]


def _keras_mnist(folders):
    for folder in folders:
        path = os.path.join(folder, "mnist.npz")
        if os.path.isfile(path):
            try:
                with np.load(path, allow_pickle=False) as z:
                    parts = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in ("train", "test")}
            except Exception as e:
                raise InputError(
                    f"{path}: not a readable Keras mnist.npz ({type(e).__name__}: {e})"
                ) from None
            for split, (x, y) in parts.items():
                if x.dtype != np.uint8 or x.ndim != 3 or len(x) != len(y):
                    raise InputError(
                        f"{path}: x_{split} {x.dtype} {x.shape} with {len(y)} labels, "
                        "expected uint8 (N, 28, 28) and N labels"
                    )
            return parts
    return None


def _read_idx(name: str, folders) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    try:
        return idx.load_idx_set(idx.find_files(folders)[1])
    except FileNotFoundError:
        parts = _keras_mnist(folders) if name == "mnist" else None
        if parts is None:
            raise
        return parts


def _read_svhn(name: str, folders) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    _, files = idx.find_files(folders, svhn.FILES, suffixes=("",))
    return {split: svhn.read_mat(path) for split, path in files.items()}


def _read_cifar(name: str, folders) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    names = {("train", f): f for f in cifar.TRAIN_FILES} | {("test", f): f for f in cifar.TEST_FILES}
    folder, _ = idx.find_files(folders, names, suffixes=("",))
    return {
        "train": cifar.read_split(folder, cifar.TRAIN_FILES),
        "test": cifar.read_split(folder, cifar.TEST_FILES),
    }


READERS = {"idx": _read_idx, "svhn": _read_svhn, "cifar": _read_cifar}  # by `registry.DATASETS` reader


def read_raw(name: str, data_dir) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8, labels int), "test": ...} as the files hold them (IDX images are
    (N, H, W), the others (N, C, H, W)); FileNotFoundError naming what was expected, and where.
    `data_dir` None means $JAXTRAINER_DATA_DIR."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir is None:
        raise FileNotFoundError(
            f"dataset {name!r} is read from files you already have: pass data_dir= (CLI --data-dir, "
            f"or set $JAXTRAINER_DATA_DIR) to a folder with {DATASETS[name].expected}, or a prepared "
            f"tensorflow_datasets data dir. Nothing is downloaded; the README says where to get them."
        )
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"data_dir {data_dir!r} is not a folder (dataset {name!r} expects {DATASETS[name].expected})"
        )
    try:
        return READERS[DATASETS[name].reader](name, _folders(data_dir, name))
    except FileNotFoundError as missing:
        if prepared_folder(data_dir, name) is not None:
            return load_tfds(name, data_dir)
        raise FileNotFoundError(
            f"dataset {name!r}: {missing}. Expected {DATASETS[name].expected} in {data_dir} (or its "
            f"sub-folder {', '.join(repr(s) for s in DATASETS[name].subfolders if s)}), or a prepared "
            f"tensorflow_datasets data dir with {DATASETS[name].tfds}/. Nothing is downloaded."
        ) from None


def read_idx_source(source: str | None, name: str = "fashion_mnist") -> Dict:
    """Raw (N, H, W) uint8 images of an MNIST-family set, from IDX files or a tfds data dir."""
    raw = read_raw(name, source)
    for split, (images, _) in raw.items():
        if images.ndim == 4:  # from tfds: (N, 1, H, W)
            if images.shape[1] != 1:
                raise InputError(f"{name} {split}: expected grayscale images, got {images.shape}")
            raw[split] = (images[:, 0], raw[split][1])
    return raw


def load_named(name: str, data_dir, seed: int = 0) -> Dataset:
    """The named dataset as a `Dataset`: svhn/cifar10 with class-index targets; the MNIST family as
    the rotation task, angles drawn with `seed` (all training images, the first 2,000 test ones)."""
    if DATASETS[name].variant == "loader":
        raw = read_raw(name, data_dir)
        (X, y), (Xt, yt) = raw["train"], raw["test"]
        if X.shape[1:] != Xt.shape[1:]:
            raise InputError(f"{name}: train images {X.shape[1:]} and test images {Xt.shape[1:]} differ")
        return Dataset(
            name,
            pixels_to_unit_range(X),
            y.astype(np.float32).reshape(-1, 1),
            pixels_to_unit_range(Xt),
            yt.astype(np.float32).reshape(-1, 1),
            variant="loader",
        )
    raw = read_idx_source(data_dir, name)  # all training images, the first 2,000 test ones
    n_train, n_test = len(raw["train"][0]), min(N_TEST, len(raw["test"][0]))
    return rotation_dataset(name, rotated_splits(raw, seed=seed, n_train=n_train, n_test=n_test))
