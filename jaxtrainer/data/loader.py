"""Batches of (images, labels) numpy arrays, re-iterable: the loader variant's `self.train`/`self.test`,
like a torch DataLoader over a TensorDataset (drop_last=False). The order of pass k is drawn from
(seed, k) alone, so a run is reproducible and the engine can ask for an epoch's order (`order(k)`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError


class BatchLoader:
    """The loader year's data: an iterable of (images, labels) batches (the last one may be shorter),
    in a new seeded order at each pass with `shuffle`, else in the given one."""

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

    def __iter__(self):
        order = self.order(self.epoch) if self.shuffle else None  # drawn now, as iter() is called
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order):
        for start in range(0, len(self.X), self.batch_size):
            batch = slice(start, start + self.batch_size)  # unshuffled: views, no copy
            if order is not None:
                batch = order[batch]
            yield self.X[batch], self.y[batch]

    def __repr__(self) -> str:
        return (
            f"BatchLoader({len(self.X)} examples of {tuple(self.X.shape[1:])}, batch_size="
            f"{self.batch_size}, {len(self)} batches, shuffle={self.shuffle}, seed={self.seed})"
        )
