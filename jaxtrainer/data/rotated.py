"""SPEC's rotated-Fashion-MNIST folder: train/ and test/ of grayscale PNGs named <index>_<angle>.png."""

from __future__ import annotations

import os
import re

import numpy as np

from . import Dataset, standardise, to_unit_range

NAME = re.compile(r"^(\d+)_(-?\d+)(?:\.\d+)?\.png$", re.IGNORECASE)


def _read_split(folder: str):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"expected a folder {folder!r} of PNGs named <index>_<angle>.png")
    from PIL import Image

    entries = []
    for name in os.listdir(folder):
        if not name.lower().endswith(".png"):
            continue
        m = NAME.match(name)
        if m is None:
            raise ValueError(f"{os.path.join(folder, name)}: the name must be <index>_<angle>.png "
                             "(the angle is the integer after the underscore)")
        entries.append((int(m.group(1)), name, int(m.group(2))))
    if not entries:
        raise ValueError(f"{folder} holds no PNG named <index>_<angle>.png")
    entries.sort()  # by index, then name: the same order on every file system
    images, shape = [], None
    for _, name, _ in entries:
        path = os.path.join(folder, name)
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        except Exception as e:  # PIL raises several types for truncated or corrupt files
            raise ValueError(f"{path}: not a readable PNG ({e})") from None
        if shape is None:
            shape = pixels.shape
        elif pixels.shape != shape:
            raise ValueError(f"{path} is {pixels.shape[0]}x{pixels.shape[1]}, the first image was "
                             f"{shape[0]}x{shape[1]}: all images must have one size")
        images.append(pixels)
    return np.stack(images)[:, None], np.array([e[2] for e in entries], dtype=np.float64)


def load_rotated_folder(root: str) -> Dataset:
    X_train, a_train = _read_split(os.path.join(root, "train"))
    X_test, a_test = _read_split(os.path.join(root, "test"))
    if X_train.shape[1:] != X_test.shape[1:]:
        raise ValueError(f"train images are {X_train.shape[2:]} and test images {X_test.shape[2:]}")
    y_train, y_test = standardise(a_train, a_test)
    return Dataset(os.path.basename(os.path.normpath(root)), to_unit_range(X_train), y_train,
                   to_unit_range(X_test), y_test)
