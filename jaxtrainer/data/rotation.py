"""The rotation-regression task: images turned by seeded random integer angles, the angle the target.

Each image gets one seeded random integer angle in [0, max_angle] (default 90: a range short of a
full turn, so that no image looks alike at both ends and the target never wraps around at 0/360),
drawn from its split's own stream; `rotate` turns it (bilinear, zero fill). `rotated_splits` makes
the uint8 images that `build.py` writes as PNGs and that `load("fashion_mnist")` uses in memory,
the same arrays for the same seed. `rotation_dataset` makes the task's `Dataset` from images and
angles: pixels to [-1, 1], angles standardised with the train mean and unbiased std.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from ..errors import InputError
from .dataset import Dataset
from .scaling import pixels_to_unit_range, standardise

MAX_ANGLE = 90
N_TRAIN, N_TEST = 60_000, 2_000  # the original folder: all training images, the first 2,000 of t10k
_SPLIT_STREAM = {"train": 0, "test": 1}  # each split its own random stream: n_train leaves test alone


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Bilinear rotation of a [0, 1] image about its centre, zero fill, clipped to [0, 1]."""
    from scipy import ndimage

    return np.clip(ndimage.rotate(image, angle, reshape=False, order=1, cval=0.0), 0.0, 1.0)


def rotate_uint8(image: np.ndarray, angle: int) -> np.ndarray:
    """`image` (uint8) rotated by `angle` degrees, rounded back to uint8."""
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


def draw_angles(seed: int, split: str, n: int, max_angle: int = MAX_ANGLE) -> np.ndarray:
    """The angles of split `split`'s `n` images, in [0, max_angle], from a stream of their own: the train
    and test angles do not depend on each other's size."""
    return np.random.default_rng([seed, _SPLIT_STREAM[split]]).integers(0, max_angle + 1, size=n)


def take(raw: Dict, split: str, n: int) -> np.ndarray:
    """The first `n` images of `raw[split]`; ValueError when the source has fewer."""
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
    """{split: (rotated images uint8 (n, H, W), angles int64 (n,))} from raw uint8 images.

    Args:
        raw: {"train": (images, labels), "test": (images, labels)} as read from the source.
        seed: seeds the angles (each split its own stream, `draw_angles`).
        max_angle: angles are drawn in [0, max_angle] degrees.
        n_train, n_test: the first images of each split that are kept.
        on_image: called as `on_image(split, index, angle, image)` after each image (the folder
            writer saves it there).
    """
    check_args(seed, max_angle, n_train, n_test)
    sources = {"train": take(raw, "train", n_train), "test": take(raw, "test", n_test)}
    out = {}
    for split, images in sources.items():
        angles = draw_angles(seed, split, len(images), max_angle)
        rotated = np.empty_like(images)
        for i, (image, angle) in enumerate(zip(images, angles)):
            rotated[i] = rotate_uint8(image, angle)
            if on_image is not None:
                on_image(split, i, int(angle), rotated[i])
        out[split] = (rotated, angles.astype(np.int64))
    return out


def rotation_dataset(name: str, splits) -> Dataset:
    """The rotation task from {split: (images uint8 or uint16 (N, H, W), integer angles (N,))}:
    pixels to [-1, 1] by their type's full range, angles standardised with the train mean and
    unbiased std."""
    (X_train, a_train), (X_test, a_test) = splits["train"], splits["test"]
    if X_train.shape[1:] != X_test.shape[1:]:
        raise InputError(
            f"{name}: train images are {X_train.shape[1:]} and test images {X_test.shape[1:]}: "
            "all images must have one size"
        )
    y_train, y_test = standardise(np.asarray(a_train, np.float64), np.asarray(a_test, np.float64))
    return Dataset(
        name,
        pixels_to_unit_range(X_train[:, None]),
        y_train,
        pixels_to_unit_range(X_test[:, None]),
        y_test,
    )
