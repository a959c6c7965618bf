"""The embedded default: scikit-learn's bundled 8x8 digits (real images, no download) upscaled to
20x20, centred in a 28x28 frame as MNIST's, and rotated by a seeded integer angle, the target.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset, standardise, to_unit_range
from .rotation import MAX_ANGLE, rotate

N_TEST = 300


def frames(side: int = 28, digit: int = 20) -> np.ndarray:
    """The 1,797 digits upscaled to digit x digit and centred in side x side frames, (N, side, side)
    in [0, 1]: 20 in 28 as MNIST; the grader's SVHN and CIFAR-10 stand-ins take 24 in 32."""
    from scipy import ndimage
    from sklearn.datasets import load_digits as sklearn_digits

    images = sklearn_digits(return_X_y=True)[0].reshape(-1, 8, 8) / 16.0  # (1797, 8, 8) in [0, 1]
    out = np.zeros((len(images), side, side))
    start = (side - digit) // 2
    out[:, start : start + digit, start : start + digit] = ndimage.zoom(
        images, (1, digit / 8, digit / 8), order=1
    )
    return out


def load_digits(seed: int = 0) -> Dataset:
    """The bundled digits set as the rotation task (1,497 train, 300 test), for tests and first runs."""
    images = frames()
    rng = np.random.default_rng(seed)
    angles = rng.integers(0, MAX_ANGLE + 1, size=len(images))
    rotated = np.stack([rotate(f, a) for f, a in zip(images, angles)])
    order = rng.permutation(len(images))
    test, train = order[:N_TEST], order[N_TEST:]
    X = to_unit_range(rotated[:, None])
    y_train, y_test = standardise(angles[train].astype(np.float64), angles[test].astype(np.float64))
    return Dataset("digits", X[train], y_train, X[test], y_test)


def write_folder(out, *, seed: int = 0) -> dict:
    """The digits as a rotated-PNG folder, what the homework's own code reads from
    ./rotated_fashion_mnist (for tools that run students' code offline): uint8 frames rotated by
    `build.write_rotated`, so pixels and angles differ from `load_digits`'s; the task is the same."""
    from .build import write_rotated

    images = np.rint(frames() * 255.0).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    raw = {"test": (images[order[:N_TEST]], None), "train": (images[order[N_TEST:]], None)}
    return write_rotated(raw, out, seed=seed, n_train=len(images) - N_TEST, n_test=N_TEST, progress=False)
