"""The rotation-regression task: each image turned (bilinear, zero fill) by a seeded random integer
angle in [0, max_angle], the angle the target; the same arrays for `build.py`'s PNGs and for
`load("fashion_mnist")` in memory.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from ..errors import InputError
from .dataset import Dataset, pixels_to_unit_range, standardise

MAX_ANGLE = 90  # short of a full turn: no image looks alike at both ends, the target never wraps
N_TRAIN, N_TEST = 60_000, 2_000  # the original folder: all training images, the first 2,000 of t10k
_SPLIT_STREAM = {"train": 0, "test": 1}  # each split its own random stream: n_train leaves test alone


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Bilinear rotation of a [0, 1] image about its centre, zero fill, clipped to [0, 1]."""
    from scipy import ndimage

    return np.clip(ndimage.rotate(image, angle, reshape=False, order=1, cval=0.0), 0.0, 1.0)


def rotate_uint8(image: np.ndarray, angle: int) -> np.ndarray:
    """`rotate` for uint8 images, rounded back to uint8."""
    return np.rint(rotate(image / 255.0, float(angle)) * 255.0).astype(np.uint8)


def check_args(seed: int, max_angle: int, n_train: int, n_test: int) -> None:
    """Refuses, by name, a seed, angle range or split size that cannot build a rotated set."""
    for name, value in (("seed", seed), ("max_angle", max_angle), ("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"{name} must be an integer, got {value!r}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    if not 1 <= max_angle <= 359:
        raise InputError(
            f"max_angle must be in 1..359 (angles are drawn in [0, max_angle]; 360 would "
            f"make 0 and 360 the same picture with different targets), got {max_angle}"
        )
    if n_train < 2:
        raise InputError(
            f"n_train must be >= 2 (the targets are standardised with the train std), got {n_train}"
        )
    if n_test < 1:
        raise InputError(f"n_test must be >= 1, got {n_test}")


def take(raw: Dict, split: str, n: int) -> np.ndarray:
    """The first `n` images of `raw[split]`; InputError when the source has fewer."""
    images = raw[split][0]
    if n > len(images):
        raise InputError(f"{n} {split} images asked for, the source has {len(images)}")
    return images[:n]


def rotated_splits(
    raw: Dict,
    seed: int = 0,
    max_angle: int = MAX_ANGLE,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    on_image=None,
) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{split: (rotated images uint8 (n, H, W), angles int64 (n,))} from the first n_train and n_test
    raw uint8 images {split: (images, labels)}; `on_image(split, index, angle, image)` is called
    after each image (the folder writer saves it there)."""
    check_args(seed, max_angle, n_train, n_test)
    sources = {"train": take(raw, "train", n_train), "test": take(raw, "test", n_test)}
    out = {}
    for split, images in sources.items():
        angles = np.random.default_rng([seed, _SPLIT_STREAM[split]]).integers(0, max_angle + 1, len(images))
        rotated = np.empty_like(images)
        for i, (image, angle) in enumerate(zip(images, angles)):
            rotated[i] = rotate_uint8(image, angle)
            if on_image is not None:
                on_image(split, i, int(angle), rotated[i])
        out[split] = (rotated, angles.astype(np.int64))
    return out


def rotation_dataset(name: str, splits) -> Dataset:
    """The rotation task from {split: (images uint8 or uint16 (N, H, W), integer angles (N,))}: pixels
    to [-1, 1] by their type's full range, angles standardised with the train mean and unbiased std."""
    (X_train, a_train), (X_test, a_test) = splits["train"], splits["test"]
    if X_train.shape[1:] != X_test.shape[1:]:
        raise InputError(
            f"{name}: train images are {X_train.shape[1:]} and test images {X_test.shape[1:]}: "
            "all images must have one size"
        )
    y_train, y_test = standardise(np.asarray(a_train, np.float64), np.asarray(a_test, np.float64))
    X_train, X_test = (pixels_to_unit_range(X[:, None]) for X in (X_train, X_test))
    return Dataset(name, X_train, y_train, X_test, y_test)
