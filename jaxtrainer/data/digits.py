"""The embedded default: scikit-learn's bundled 8x8 digits made into a rotation-regression task.

Real images that need no download: each digit is upscaled to 20x20, centred in a 28x28 frame (as
MNIST centres its digits) and rotated by a seeded random integer angle in [0, 90], which is the target.
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .rotation import MAX_ANGLE, rotate
from .scaling import standardise, to_unit_range

N_TEST = 300


def load_digits(seed: int = 0) -> Dataset:
    from scipy import ndimage
    from sklearn.datasets import load_digits as sklearn_digits

    images = sklearn_digits().images.astype(np.float64) / 16.0  # (1797, 8, 8) in [0, 1]
    rng = np.random.default_rng(seed)
    angles = rng.integers(0, MAX_ANGLE + 1, size=len(images))
    frames = np.zeros((len(images), 28, 28))
    frames[:, 4:24, 4:24] = ndimage.zoom(images, (1, 2.5, 2.5), order=1)
    rotated = np.stack([rotate(f, a) for f, a in zip(frames, angles)])
    order = rng.permutation(len(images))
    test, train = order[:N_TEST], order[N_TEST:]
    X = to_unit_range(rotated[:, None])
    y_train, y_test = standardise(angles[train].astype(np.float64), angles[test].astype(np.float64))
    return Dataset("digits", X[train], y_train, X[test], y_test)
