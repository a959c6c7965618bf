"""The rotated-Fashion-MNIST folder: train/ and test/ of grayscale PNGs named <index>_<angle>.png.

The decoded pixels are cached in the folder (`cache.py`): the second load of 62,000 PNGs reads one
.npz instead of decoding every file again.
"""

from __future__ import annotations

import os
import re

import numpy as np

from . import cache
from .dataset import Dataset
from .rotation import rotation_dataset

NAME = re.compile(r"^(\d+)_(-?\d+)(?:\.\d+)?\.png$", re.IGNORECASE)


def _read_split(folder: str):
    """(images uint8 (N, H, W), angles int64 (N,)) in index order."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"expected a folder {folder!r} of PNGs named <index>_<angle>.png")
    from PIL import Image

    entries = []
    for name in os.listdir(folder):
        if not name.lower().endswith(".png"):
            continue
        m = NAME.match(name)
        if m is None:
            raise ValueError(
                f"{os.path.join(folder, name)}: the name must be <index>_<angle>.png "
                "(the angle is the integer after the underscore)"
            )
        entries.append((int(m.group(1)), name, int(m.group(2))))
    if not entries:
        raise ValueError(f"{folder} holds no PNG named <index>_<angle>.png")
    entries.sort()  # by index, then name: the same order on every file system
    images, shape = [], None
    for _, name, _ in entries:
        path = os.path.join(folder, name)
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("L"), dtype=np.uint8)
        except Exception as e:  # PIL raises several types for truncated or corrupt files
            raise ValueError(f"{path}: not a readable PNG ({e})") from None
        if shape is None:
            shape = pixels.shape
        elif pixels.shape != shape:
            raise ValueError(
                f"{path} is {pixels.shape[0]}x{pixels.shape[1]}, the first image was "
                f"{shape[0]}x{shape[1]}: all images must have one size"
            )
        images.append(pixels)
    return np.stack(images), np.array([e[2] for e in entries], dtype=np.int64)


def load_rotated_folder(root: str) -> Dataset:
    key = cache.folder_key(root)
    splits = cache.read(root, key) if key is not None else None
    if splits is None:
        splits = {s: _read_split(os.path.join(root, s)) for s in cache.SPLITS}
        if key is not None and cache.folder_key(root) == key:  # not changed while it was read
            cache.write(root, key, splits)
    return rotation_dataset(os.path.basename(os.path.normpath(root)), splits)
