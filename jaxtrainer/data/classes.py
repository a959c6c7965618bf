"""Datasets for the classification labs: flat float32 pixels in [0, 1] and integer class labels, from
scikit-learn's digits, the grayscale named sets (`named.read_grey`) or arrays; `split_train_val`
makes the labs' seeded 90/10 split (the test set stays apart, to be used once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..errors import InputError
from ..registry import DATASETS
from .dataset import finite_float32
from .named import read_grey

NAMES = tuple(name for name, entry in DATASETS.items() if entry.variant == "tensor")  # grayscale
N_TEST_DIGITS = 300
FASHION_MNIST_CLASSES = tuple(
    "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot".split(",")
)


@dataclass(frozen=True)
class ClassificationSet:
    """A classification dataset as the labs use it: flat float32 features in [0, 1], integer labels."""

    name: str
    X_train: np.ndarray  # (N, D) float32 in [0, 1]
    y_train: np.ndarray  # (N,) int32 in [0, n_classes)
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: Tuple[str, ...]

    @property
    def n_features(self) -> int:
        """Inputs per example (pixels times channels)."""
        return int(self.X_train.shape[1])


def _checked(name: str, X_train, y_train, X_test, y_test) -> ClassificationSet:
    parts = []
    for split, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        X, y = np.asarray(X), np.asarray(y)
        if len(X) == 0:
            raise InputError(f"X_{split} is empty: at least one example is needed")
        if y.shape != (len(X),):
            raise InputError(
                f"y_{split} must hold one class index per example, shape ({len(X)},), got {y.shape}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"y_{split} must hold integer class indices, got dtype {y.dtype}")
        if y.min() < 0:
            raise InputError(f"y_{split} holds a negative class index ({y.min()})")
        parts.append((finite_float32(X.reshape(len(X), -1), f"X_{split}"), y.astype(np.int32)))
    (X_train, y_train), (X_test, y_test) = parts
    if X_train.shape[1] != X_test.shape[1]:
        raise InputError(f"train examples have {X_train.shape[1]} features, test examples {X_test.shape[1]}")
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise InputError("the labels hold a single class: at least two are needed")
    names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(map(str, range(n_classes)))
    return ClassificationSet(name, X_train, y_train, X_test, y_test, n_classes, names)


def load_classes(source, *, data_dir=None) -> ClassificationSet:
    """A dataset by name ("digits", bundled; the others from `data_dir`, default
    $JAXTRAINER_DATA_DIR) or from arrays ((X_train, y_train), (X_test, y_test))."""
    if isinstance(source, ClassificationSet):
        return source
    if isinstance(source, (tuple, list)):
        try:
            (X_train, y_train), (X_test, y_test) = source
        except (TypeError, ValueError):
            raise InputError("dataset arrays must be ((X_train, y_train), (X_test, y_test))") from None
        return _checked("arrays", X_train, y_train, X_test, y_test)
    if source == "digits":
        from sklearn.datasets import load_digits

        pixels, target = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(target))
        test, train = order[:N_TEST_DIGITS], order[N_TEST_DIGITS:]
        return _checked("digits", pixels[train] / 16.0, target[train], pixels[test] / 16.0, target[test])
    if source in NAMES:
        raw = read_grey(source, data_dir)
        (X, y), (Xt, yt) = raw["train"], raw["test"]
        return _checked(source, X / np.float32(255), y, Xt / np.float32(255), yt)
    raise InputError(
        f"unknown classification dataset {source!r}: expected one of {NAMES} or arrays "
        "((X_train, y_train), (X_test, y_test))"
    )


def split_train_val(X: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, seed: int = 0):
    """((X_train, y_train), (X_val, y_val)): a seeded random `val_fraction` of the examples held
    out (at least one on each side)."""
    if not 0 < val_fraction < 1:
        raise InputError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = int(round(len(X) * val_fraction))
    if not 0 < n_val < len(X):
        raise InputError(
            f"cannot hold out {val_fraction:g} of {len(X)} examples: each side needs at least one"
        )
    order = np.random.default_rng(seed).permutation(len(X))
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train]), (X[val], y[val])
