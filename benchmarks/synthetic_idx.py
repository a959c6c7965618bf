"""A synthetic Fashion-MNIST-size set as the four IDX files, for timing the labs without a download:
10 learnable classes of 28x28 uint8 images, noisy shifted copies of smooth random prototypes.

    python -m benchmarks.synthetic_idx --out /tmp/synthetic_fashion    (60,000 + 10,000 images)
    jaxtrainer lab logreg --dataset fashion_mnist --data-dir /tmp/synthetic_fashion
"""

from __future__ import annotations

import argparse
import os
import struct

import numpy as np
from scipy import ndimage

from jaxtrainer.data.idx import FILES

CLASS_CONTRAST = 0.4


def write_idx(path: str, array: np.ndarray) -> None:
    """Unsigned-byte IDX: magic 0x00000800 + ndim, the dimensions big-endian, the bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x0800 + array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(np.ascontiguousarray(array, np.uint8).tobytes())


def synthetic_images(n: int, rng: np.random.Generator, prototypes: np.ndarray):
    """`n` images drawn from class `prototypes`, shifted and noised: (images, labels)."""
    labels = rng.integers(0, len(prototypes), n)
    shifts = rng.integers(-3, 4, (n, 2))
    images = np.empty((n, 28, 28), np.float32)
    for i, (label, (dy, dx)) in enumerate(zip(labels, shifts)):
        images[i] = np.roll(prototypes[label], (dy, dx), axis=(0, 1))
    images += rng.normal(0, 60, images.shape).astype(np.float32)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_set(out: str, n_train: int = 60_000, n_test: int = 10_000, seed: int = 0) -> None:
    """An MNIST-shaped set of IDX files in `out`."""
    rng = np.random.default_rng(seed)
    # a shared base plus a faint class-specific part: hard enough that a linear model is not
    # perfect (about Fashion-MNIST's difficulty for logistic regression)
    smooth = ndimage.gaussian_filter(rng.uniform(0, 1, (11, 28, 28)), (0, 2, 2))
    smooth = (smooth - smooth.min()) / np.ptp(smooth)
    prototypes = 255 * (0.7 * smooth[:1] + CLASS_CONTRAST * smooth[1:])
    os.makedirs(out, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = synthetic_images(n, rng, prototypes)
        write_idx(os.path.join(out, FILES[(split, "images")]), images)
        write_idx(os.path.join(out, FILES[(split, "labels")]), labels)


def main(argv=None) -> int:
    """`python -m benchmarks.synthetic_idx`."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--n-train", type=int, default=60_000)
    p.add_argument("--n-test", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    write_set(args.out, args.n_train, args.n_test, args.seed)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
