"""The `Dataset` every loader returns (NCHW float32 images, (N, 1) float32 targets); `from_arrays`,
which refuses by name what would train on wrong numbers; the homework's pixel and target mappings;
and `fingerprint`, which ties a checkpoint to the exact data it was trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..errors import InputError

NUMERIC_KINDS = "biuf"  # numpy dtype kinds: bool, signed and unsigned integers, floating point
ALLOWED_DTYPES = "bool, integer or floating-point numbers"
FINGERPRINT_HASH = "sha256"  # with SHA CPU extensions the fastest of hashlib's (blake2b: half as fast)
_HASH_CHUNK_BYTES = 1 << 24  # the most a non-contiguous array is copied at once to be hashed


@dataclass(frozen=True)
class Dataset:
    """A dataset as the homework serves it: images, their targets, and how the homework's year
    hands them to the Trainer ("tensor": whole (X, y) tuples; "loader": batches, SVHN and CIFAR-10)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    variant: str = "tensor"

    @property
    def train(self) -> Tuple[np.ndarray, np.ndarray]:
        """(X_train, y_train)."""
        return self.X_train, self.y_train

    @property
    def test(self) -> Tuple[np.ndarray, np.ndarray]:
        """(X_test, y_test)."""
        return self.X_test, self.y_test

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """One image's (channels, height, width)."""
        return tuple(self.X_train.shape[1:])


def numeric_array(a, label: str) -> np.ndarray:
    """`a` (a numpy array, a torch tensor, nested lists) as a numpy array of numbers, not copied when it
    is one already (a bfloat16 or float8 tensor as float32, exactly); otherwise TypeError naming `label`."""
    if hasattr(a, "detach"):  # a torch tensor, without importing torch
        if getattr(a, "is_meta", False):
            raise TypeError(
                f"{label} is a meta tensor (a shape without values): create it on the cpu, with values"
            )
        a = a.detach().cpu()
        try:
            a = a.numpy()
        except TypeError:  # a dtype numpy lacks: bfloat16 and float8 fit float32 exactly
            if not a.dtype.is_floating_point:
                raise TypeError(f"{label} is a torch {a.dtype} tensor: expected {ALLOWED_DTYPES}") from None
            a = a.float().numpy()
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as e:  # ragged nested lists, objects numpy cannot read
        raise TypeError(f"{label} cannot be read as an array ({e}): expected {ALLOWED_DTYPES}") from None
    if a.dtype.kind not in NUMERIC_KINDS:
        raise TypeError(f"{label} has dtype {a.dtype}: expected {ALLOWED_DTYPES}")
    return a


def finite_float32(a: np.ndarray, label: str) -> np.ndarray:
    """`a` as float32; InputError naming `label` when a value is not finite, or is not once cast."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = a.astype(np.float32)
    if not np.all(np.isfinite(out)):
        if np.all(np.isfinite(a)):
            raise InputError(f"{label} holds values beyond float32's range (|x| > 3.4e38)")
        raise InputError(f"{label} contains NaN or Inf values")
    return out


def from_arrays(arrays, name: str = "arrays") -> Dataset:
    """Arrays ((X_train, y_train), (X_test, y_test)), checked and converted, otherwise used as given."""
    try:
        (X_train, y_train), (X_test, y_test) = arrays
    except (TypeError, ValueError):
        raise InputError("dataset arrays must be ((X_train, y_train), (X_test, y_test))") from None
    parts = {}
    for split, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        X, y = numeric_array(X, f"X_{split}"), numeric_array(y, f"y_{split}")
        if X.ndim != 4:
            raise InputError(f"X_{split} must be images (N, C, H, W), got shape {X.shape}")
        if len(X) == 0:
            raise InputError(f"X_{split} is empty: at least one example is needed")
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.shape != (len(X), 1):
            raise InputError(f"y_{split} must have shape ({len(X)}, 1) to match X_{split}, got {y.shape}")
        parts[split] = (finite_float32(X, f"X_{split}"), finite_float32(y, f"y_{split}"))
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise InputError(
            f"train images {parts['train'][0].shape[1:]} and test images "
            f"{parts['test'][0].shape[1:]} differ in shape"
        )
    return Dataset(name, *parts["train"], *parts["test"])


def to_unit_range(images_01: np.ndarray) -> np.ndarray:
    """The homework's pixel mapping (torchvision's ToTensor then Normalize(0.5, 0.5)): (x - 0.5) / 0.5
    after scaling to [0, 1]."""
    return ((images_01 - 0.5) / 0.5).astype(np.float32)


# Every value of an 8-bit and of a 16-bit pixel, mapped once: a look-up gives one float32 array,
# never the float64 temporary (1.8 GB for SVHN's training set).
_UNIT_TABLES = {
    np.dtype(t): to_unit_range(np.arange(np.iinfo(t).max + 1) / np.iinfo(t).max)
    for t in (np.uint8, np.uint16)
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
    scale = lambda y: ((y - mean) / std).astype(np.float32).reshape(-1, 1)
    return scale(y_train), scale(y_test)


def _hash_array(h, a: np.ndarray) -> None:
    """Feed `a`'s dtype, shape and every byte to `h`, little-endian (equal values, equal bytes); a
    contiguous array in place, without a copy."""
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h.update(f"{a.dtype.str} {a.shape}\n".encode())
    if a.flags.c_contiguous:
        h.update(a.reshape(-1).view(np.uint8))
        return
    rows = max(1, _HASH_CHUNK_BYTES // max(1, a[0].nbytes))
    for start in range(0, len(a), rows):
        h.update(np.ascontiguousarray(a[start : start + rows]).reshape(-1).view(np.uint8))


def fingerprint(train, test) -> dict:
    """{"train": X_train's shape, "test": X_test's shape, "sha256": the digest of X and y of both splits,
    dtype, shape and every byte}: one changed pixel or label changes it; numpy and torch give the same."""
    h = hashlib.new(FINGERPRINT_HASH, b"jaxtrainer data fingerprint v2\n")
    shapes = {}
    for split, (X, y) in (("train", train), ("test", test)):
        for label, a in ((f"X_{split}", X), (f"y_{split}", y)):
            a = numeric_array(a, label)
            h.update(f"{label}\n".encode())
            _hash_array(h, a)
            shapes.setdefault(split, list(a.shape))
    return {"train": shapes["train"], "test": shapes["test"], FINGERPRINT_HASH: h.hexdigest()}
