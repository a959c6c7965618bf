"""The real datasets by name, from files the user already has in `data_dir`; never downloaded. Each
`registry.DATASETS` entry names its reader (a dotted path, imported when used), given data_dir's
folders that exist among the entry's sub-folders; without the files, a prepared tfds data dir is read.
"""

from __future__ import annotations

import os
import pkgutil
from typing import Dict, Tuple

import numpy as np

from ..errors import InputError
from ..registry import DATASETS
from .dataset import Dataset, pixels_to_unit_range
from .rotation import N_TEST, rotated_splits, rotation_dataset
from .tfds import is_prepared, load_tfds

DATA_DIR_ENV = "JAXTRAINER_DATA_DIR"  # data_dir's default, as TFDS_DATA_DIR is tfds's


def read_raw(name: str, data_dir) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8, labels int), "test": ...} as the files hold them (IDX images are
    (N, H, W), the others (N, C, H, W)); FileNotFoundError naming what was expected, and where.
    `data_dir` None means $JAXTRAINER_DATA_DIR."""
    entry = DATASETS[name]
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir is None:
        raise FileNotFoundError(
            f"dataset {name!r} is read from files you already have: pass data_dir= (CLI --data-dir, "
            f"or set $JAXTRAINER_DATA_DIR) to a folder with {entry.expected}, or a prepared "
            f"tensorflow_datasets data dir. Nothing is downloaded; the README says where to get them."
        )
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"data_dir {data_dir!r} is not a folder (dataset {name!r} expects {entry.expected})"
        )
    folders = [os.path.normpath(os.path.join(data_dir, sub)) for sub in entry.subfolders]
    try:
        return pkgutil.resolve_name(entry.reader)([f for f in folders if os.path.isdir(f)])
    except FileNotFoundError as missing:
        if entry.tfds and is_prepared(os.path.join(data_dir, entry.tfds)):
            return load_tfds(entry.tfds, data_dir)
        raise FileNotFoundError(
            f"dataset {name!r}: {missing}. Expected {entry.expected} in {data_dir} (or its "
            f"sub-folder {', '.join(repr(s) for s in entry.subfolders if s)}), or a prepared "
            f"tensorflow_datasets data dir with {entry.tfds}/. Nothing is downloaded."
        ) from None


def read_grey(name: str, data_dir) -> Dict:
    """`read_raw` of a grayscale (tensor variant) set, its images (N, H, W) whatever the source."""
    raw = read_raw(name, data_dir)
    for split, (images, labels) in raw.items():
        if images.ndim == 4:  # from tfds: (N, 1, H, W)
            if images.shape[1] != 1:
                raise InputError(f"{name} {split}: expected grayscale images, got {images.shape}")
            raw[split] = (images[:, 0], labels)
    return raw


def load_named(name: str, data_dir, seed: int = 0) -> Dataset:
    """The named dataset: the loader variant with class-index targets; the tensor variant as the
    rotation task, angles drawn with `seed` (all training images, the first 2,000 test ones)."""
    if DATASETS[name].variant == "tensor":
        raw = read_grey(name, data_dir)
        n_train, n_test = len(raw["train"][0]), min(N_TEST, len(raw["test"][0]))
        return rotation_dataset(name, rotated_splits(raw, seed=seed, n_train=n_train, n_test=n_test))
    raw = read_raw(name, data_dir)
    (X, y), (Xt, yt) = raw["train"], raw["test"]
    if X.shape[1:] != Xt.shape[1:]:
        raise InputError(f"{name}: train images {X.shape[1:]} and test images {Xt.shape[1:]} differ")
    labels = [a.astype(np.float32).reshape(-1, 1) for a in (y, yt)]
    return Dataset(name, pixels_to_unit_range(X), labels[0], pixels_to_unit_range(Xt), labels[1], "loader")
