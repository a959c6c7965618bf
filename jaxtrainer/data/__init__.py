"""Datasets as NCHW float32 images in [-1, 1] and (N, 1) float32 targets: `load(source)` takes the
embedded "digits", a real dataset's name (`registry.DATASETS`: read from files the user already has
in `data_dir`, never downloaded), a rotated-PNG folder, or arrays.
"""

from __future__ import annotations

import os

from ..errors import InputError
from ..registry import DATA_DIR_DATASETS, DATASETS
from .dataset import Dataset, fingerprint, from_arrays
from .digits import load_digits
from .named import DATA_DIR_ENV, load_named
from .rotated import load_rotated_folder

DEFAULT_FOLDER = "rotated_fashion_mnist"
NAMES = tuple(DATASETS)

__all__ = ["DATA_DIR_ENV", "DEFAULT_FOLDER", "NAMES", "Dataset", "fingerprint", "from_arrays", "load"]


def load(source=None, *, seed: int = 0, data_dir=None) -> Dataset:
    """A dataset from a name, a folder, or arrays; where none is found, an error that says how
    to get one.

    Args:
        source: "digits", a name read from data_dir (DATA_DIR_DATASETS), a folder with train/ and test/
            PNGs named <i>_<angle>.png, arrays ((X_train, y_train), (X_test, y_test)) or a Dataset;
            None: ./rotated_fashion_mnist, as the original homework did.
        seed: draws the rotations of "digits", "fashion_mnist" and "mnist".
        data_dir: where the named datasets find their files (default: $JAXTRAINER_DATA_DIR).
    """
    if data_dir is not None and not _reads_files(source):
        given = repr(source) if isinstance(source, (str, os.PathLike, type(None))) else "arrays"
        raise InputError(
            f"data_dir is used with the dataset names {DATA_DIR_DATASETS}, not with dataset={given}"
        )
    if source is None:
        if not os.path.isdir(DEFAULT_FOLDER):
            raise FileNotFoundError(
                f"no dataset given and ./{DEFAULT_FOLDER} does not exist. Pass dataset='digits' "
                "(embedded, offline), a folder with train/ and test/ PNGs named <i>_<angle>.png, "
                "arrays ((X_train, y_train), (X_test, y_test)), or one of fashion_mnist, mnist, "
                "svhn, cifar10 with data_dir= where its files are. To make ./rotated_fashion_mnist "
                "from the Fashion-MNIST IDX files: jaxtrainer data build-rotated --source DIR --out "
                f"{DEFAULT_FOLDER}. Nothing is downloaded."
            )
        source = DEFAULT_FOLDER
    if isinstance(source, (tuple, list)):
        return from_arrays(source)
    if isinstance(source, Dataset):
        return source
    if not isinstance(source, (str, bytes, os.PathLike)):
        raise TypeError(
            f"dataset must be a name, a folder, arrays ((X_train, y_train), (X_test, y_test)) or a "
            f"Dataset, got a {type(source).__name__}"
        )
    source = os.fsdecode(source)  # a str, bytes or os.PathLike path: one str from here on
    if source == "digits":
        return load_digits(seed=seed)
    if _reads_files(source):
        return load_named(source, data_dir, seed=seed)
    if os.path.isdir(source):
        return load_rotated_folder(source)
    raise InputError(
        f"unknown dataset {source!r}: expected one of {NAMES}, an existing folder, "
        "or arrays ((X_train, y_train), (X_test, y_test))"
    )


def _reads_files(source) -> bool:
    return isinstance(source, str) and bool(getattr(DATASETS.get(source), "reader", ""))
