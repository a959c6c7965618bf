"""Datasets already prepared by tensorflow_datasets, read from its data dir without downloading.

tfds is optional and not a dependency: this path is taken only when `data_dir/<tfds name>/` exists
(a prepared dataset: `<name>/<version>/dataset_info.json`). It never calls `download_and_prepare`:
offline, tfds retries the network for minutes before failing.
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from ..errors import InputError
from ..registry import DATASETS


def prepared_folder(data_dir: str, name: str) -> str | None:
    """`data_dir/<tfds name>` if it holds a prepared version (a folder with dataset_info.json)."""
    tfds_name = DATASETS[name].tfds
    root = "" if tfds_name is None else os.path.join(data_dir, tfds_name)
    if not os.path.isdir(root):
        return None
    for version in sorted(os.listdir(root)):
        if os.path.isfile(os.path.join(root, version, "dataset_info.json")):
            return root
    return None


def load_tfds(name: str, data_dir: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8 (N, C, H, W), labels int64 (N,)), "test": ...} from a prepared tfds
    dataset; ImportError naming the way out when tensorflow_datasets is not installed."""
    tfds_name = DATASETS[name].tfds
    if tfds_name is None:
        raise InputError(f"{name!r} has no tensorflow_datasets version")
    try:
        import tensorflow_datasets as tfds  # optional  # pyright: ignore[reportMissingImports]
    except ImportError:
        raise ImportError(
            f"{os.path.join(data_dir, tfds_name)} is a tensorflow_datasets data dir, but "
            "tensorflow_datasets is not installed: pip install tensorflow-datasets tensorflow, or "
            f"point data_dir at the raw files instead (see README, Data)"
        ) from None
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"{os.path.join(data_dir, tfds_name)}: tfds's {tfds_name} is not "
            "prepared there (nothing is downloaded: prepare it where a network is)"
        )
    out = {}
    for split in ("train", "test"):
        ds = builder.as_dataset(split=split, batch_size=-1, as_supervised=True)  # one whole batch
        images, labels = tfds.as_numpy(ds)
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise InputError(
                f"tfds {tfds_name} {split}: images {images.dtype} {images.shape}, expected uint8 (N, H, W, C)"
            )
        out[split] = (
            np.ascontiguousarray(images.transpose(0, 3, 1, 2)),
            np.asarray(labels).astype(np.int64).reshape(-1),
        )
    return out
