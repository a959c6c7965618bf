"""The homework's mappings in one place: pixels to [-1, 1] by `(x - 0.5) / 0.5` after scaling to
[0, 1] (torchvision's ToTensor then Normalize(0.5, 0.5)); targets standardised with the train statistics.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def to_unit_range(images_01: np.ndarray) -> np.ndarray:
    """The homework's pixel mapping: (x - 0.5) / 0.5 after scaling to [0, 1]."""
    return ((images_01 - 0.5) / 0.5).astype(np.float32)


# Every value of an 8-bit and of a 16-bit pixel, mapped once: a look-up gives one float32 array,
# never the float64 temporary (1.8 GB for SVHN's training set).
_UNIT_TABLES = {
    np.dtype(np.uint8): to_unit_range(np.arange(2**8) / (2**8 - 1)),
    np.dtype(np.uint16): to_unit_range(np.arange(2**16) / (2**16 - 1)),
}


def pixels_to_unit_range(images: np.ndarray) -> np.ndarray:
    """`to_unit_range(images / max)` for unsigned integer pixels, max their type's full range
    (255 for uint8, 65535 for uint16), bit for bit."""
    table = _UNIT_TABLES.get(images.dtype)
    if table is None:
        raise TypeError(f"pixels must be uint8 or uint16, got {images.dtype}")
    return table[images]


def standardise(y_train: np.ndarray, y_test: np.ndarray):
    """Targets standardised with the train mean and unbiased std, as the homework does."""
    if len(y_train) < 2:
        raise InputError(f"{len(y_train)} training target(s): at least 2 are needed to standardise them")
    mean, std = y_train.mean(), y_train.std(ddof=1)
    if not std > 0:
        raise InputError(f"the training targets are constant ({float(mean)}): they cannot be standardised")
    scale = lambda y: ((y - mean) / std).astype(np.float32).reshape(-1, 1)  # noqa: E731
    return scale(y_train), scale(y_test)
