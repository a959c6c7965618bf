"""The homework's equivariance experiment: is a small conv net equivariant to shifts and rotations?"""

from __future__ import annotations

from typing import Dict

import jax
import numpy as np
from flax import nnx
from scipy import ndimage

from .layers import Conv2d

SHIFT = (5, 5)


def shift(image: np.ndarray) -> np.ndarray:
    """Translation by SHIFT pixels, zero fill, no interpolation."""
    return ndimage.shift(image, SHIFT, order=0, cval=0.0)


def rotate90(image: np.ndarray) -> np.ndarray:
    """90-degree rotation about the centre (exact on the pixel grid)."""
    return np.rot90(image).copy()


def equivariance_maps(image01: np.ndarray, seed: int = 0) -> Dict[str, np.ndarray]:
    """`relu(conv(relu(conv(x))))` with one random 3x3 conv 1->1 and the error maps
    |T(model(x)) - model(T(x))| for T = shift and rotate90; a draw whose output is mostly zero
    (trivially equivariant) is skipped for the next seed."""
    for attempt in range(seed, seed + 100):
        conv = Conv2d(1, 1, 3, rngs=nnx.Rngs(params=attempt))

        def model(img):
            x = img[None, :, :, None].astype(np.float32)  # NHWC
            return np.asarray(jax.nn.relu(conv(jax.nn.relu(conv(x)))))[0, :, :, 0]

        out = model(image01)
        if np.count_nonzero(out) > out.size // 4:
            break
    shift_map = np.abs(shift(out) - model(shift(image01)))
    rotation_map = np.abs(rotate90(out) - model(rotate90(image01)))
    return {  # out: the loop runs  # pyright: ignore[reportReturnType]
        "image": image01,
        "output": out,
        "shift_error_map": shift_map,
        "rotation_error_map": rotation_map,
        "shift_error": float(shift_map.mean()),
        "rotation_error": float(rotation_map.mean()),
    }
