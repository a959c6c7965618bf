"""Datasets already prepared by tensorflow_datasets (optional, not a dependency), read from its data
dir only when `data_dir/<tfds name>/<version>/dataset_info.json` exists. Never `download_and_prepare`:
offline, tfds retries the network for minutes before failing.
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from ..errors import InputError


def is_prepared(root: str) -> bool:
    """Whether `root` (`data_dir/<tfds name>`) holds a prepared version (a folder with dataset_info.json)."""
    return os.path.isdir(root) and any(
        os.path.isfile(os.path.join(root, version, "dataset_info.json")) for version in os.listdir(root)
    )


def load_tfds(tfds_name: str, data_dir: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8 (N, C, H, W), labels int64 (N,)), "test": ...} from a prepared tfds
    dataset; ImportError naming the way out when tensorflow_datasets is not installed."""
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
        images, labels = (np.asarray(a) for a in tfds.as_numpy(ds))
        if images.ndim != 4 or images.dtype != np.uint8:
            raise InputError(
                f"tfds {tfds_name} {split}: images {images.dtype} {images.shape}, expected uint8 (N, H, W, C)"
            )
        out[split] = (np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels.astype(np.int64).reshape(-1))
    return out
