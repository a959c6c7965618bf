"""Batches of (images, labels) numpy arrays, re-iterable: the loader variant's `self.train`/`self.test`.

Like a torch DataLoader over a TensorDataset (drop_last=False): `len()` is the number of batches,
the last one shorter when the set does not divide; with `shuffle`, every pass (every `iter()`) is a
new permutation. The permutation of pass k is drawn from (seed, k) alone, so a run is reproducible
and the engine can ask for the order of an epoch (`order(k)`) without iterating.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError


class BatchLoader:
    """The loader year's data: an iterable of (images, labels) batches, like torch's DataLoader, shuffled
    with its own seed at each pass.

    Args:
        X, y: the images and their labels, as many of each.
        batch_size: examples per batch (the last one may be shorter).
        shuffle: draw a new order at each pass (`order(epoch)`), else keep the given one.
        seed: seeds the orders.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False, seed: int = 0):
        if len(X) != len(y):
            raise InputError(f"{len(X)} images but {len(y)} labels")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.X, self.y = X, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0  # passes drawn so far: the next iter() uses order(self.epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The example indices of pass `epoch` (0-based), in batch order."""
        if not self.shuffle:
            return np.arange(len(self.X))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.X))

    def next_order(self) -> np.ndarray:
        """The order of the next pass, which counts as drawn (as iterating the loader would)."""
        order = self.order(self.epoch)
        self.epoch += 1
        return order

    def __iter__(self):
        order = self.next_order()
        return self._batches(order if self.shuffle else None)

    def _batches(self, order):
        for start in range(0, len(self.X), self.batch_size):
            if order is None:  # consecutive slices: views, no copy
                yield self.X[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                yield self.X[idx], self.y[idx]

    def __repr__(self) -> str:
        return (
            f"BatchLoader({len(self.X)} examples of {tuple(self.X.shape[1:])}, batch_size="
            f"{self.batch_size}, {len(self)} batches, shuffle={self.shuffle}, seed={self.seed})"
        )
