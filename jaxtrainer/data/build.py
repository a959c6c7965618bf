"""Rotated Fashion-MNIST, built from the four Fashion-MNIST IDX files: SPEC's folder format.

The original zip is no longer served. Each image gets one seeded random integer angle in
[0, max_angle] (default 90, as the embedded digits set: a range short of a full turn, so that no
image looks alike at both ends and the regression target never wraps around at 0/360); the
rotation is `digits.rotate` (bilinear, zero fill), the result rounded to uint8 and written as
`<split>/<index>_<angle>.png`, where index is the image's index in the source split. Defaults
follow the original: 60,000 training images and the first 2,000 of t10k as the test set.

`rotated_splits` computes the same uint8 images in memory: `load("fashion_mnist", data_dir=...)`
equals building the folder with the same seed and loading it, without the PNGs.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from typing import Dict, Tuple

import numpy as np

from . import cache
from .digits import MAX_ANGLE, rotate

N_TRAIN, N_TEST = 60_000, 2_000
_SPLIT_STREAM = {"train": 0, "test": 1}  # each split its own random stream: n_train leaves test alone


def check_args(seed: int, max_angle: int, n_train: int, n_test: int) -> None:
    for name, value in (("seed", seed), ("max_angle", max_angle), ("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 1 <= max_angle <= 359:
        raise ValueError(
            f"max_angle must be in 1..359 (angles are drawn in [0, max_angle]; 360 would "
            f"make 0 and 360 the same picture with different targets), got {max_angle}"
        )
    if n_train < 2:
        raise ValueError(
            f"n_train must be >= 2 (the targets are standardised with the train std), got {n_train}"
        )
    if n_test < 1:
        raise ValueError(f"n_test must be >= 1, got {n_test}")


def draw_angles(seed: int, split: str, n: int, max_angle: int = MAX_ANGLE) -> np.ndarray:
    return np.random.default_rng([seed, _SPLIT_STREAM[split]]).integers(0, max_angle + 1, size=n)


def rotate_uint8(image: np.ndarray, angle: int) -> np.ndarray:
    return np.rint(rotate(image / 255.0, float(angle)) * 255.0).astype(np.uint8)


def _take(raw: Dict, split: str, n: int) -> np.ndarray:
    images = raw[split][0]
    if n > len(images):
        raise ValueError(f"{n} {split} images asked for, the source has {len(images)}")
    return images[:n]


def rotated_splits(
    raw: Dict,
    seed: int = 0,
    max_angle: int = MAX_ANGLE,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    on_image=None,
) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{split: (rotated images uint8 (n, H, W), angles int64 (n,))} from raw uint8 images;
    `on_image(split, index, angle, image)` is called after each image (the folder writer)."""
    check_args(seed, max_angle, n_train, n_test)
    sources = {"train": _take(raw, "train", n_train), "test": _take(raw, "test", n_test)}
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


def _write_png(path: str, pixels: np.ndarray) -> None:
    """An 8-bit grayscale PNG. Pillow's encoder is deterministic: same pixels, same bytes. Encoded
    in memory then written once (one system call per file)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def _check_new_folder(out) -> str:
    """`out` as an absolute path, refused if it exists (a build never overwrites)."""
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out):
        raise FileExistsError(f"{out} already exists: remove it or choose another --out")
    return out


def build_rotated(
    source: str,
    out: str,
    *,
    seed: int = 0,
    max_angle: int = MAX_ANGLE,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    progress: bool = True,
) -> dict:
    """Write the folder `out` (train/, test/, and the load cache) from the IDX files in `source`
    (`write_rotated`); the arguments are checked before the source is read."""
    from .named import read_idx_source

    check_args(seed, max_angle, n_train, n_test)
    _check_new_folder(out)
    raw = read_idx_source(os.fspath(source), "fashion_mnist")
    return write_rotated(
        raw, out, seed=seed, max_angle=max_angle, n_train=n_train, n_test=n_test, progress=progress
    )


def write_rotated(
    raw: Dict,
    out: str,
    *,
    seed: int = 0,
    max_angle: int = MAX_ANGLE,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    progress: bool = True,
) -> dict:
    """Write the folder `out` (train/, test/, and the load cache) from raw uint8 images
    {split: (images (n, H, W), labels)}, the first n_train and n_test of each split rotated.

    Everything is written to a hidden temporary folder next to `out` and renamed to `out` at the
    end: an interrupted or failed build leaves no `out` (and removes its temporary folder, unless
    the process is killed outright, which leaves a `.<name>.partial-*` folder that nothing loads).
    """
    from tqdm.auto import tqdm

    check_args(seed, max_angle, n_train, n_test)
    out = _check_new_folder(out)
    for split, n in (("train", n_train), ("test", n_test)):
        _take(raw, split, n)  # fail on counts before writing anything
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.partial-{uuid.uuid4().hex[:8]}")
    os.mkdir(tmp)
    try:
        for split in ("train", "test"):
            os.mkdir(os.path.join(tmp, split))
        with tqdm(
            total=n_train + n_test,
            desc=f"build-rotated {name}",
            unit="img",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar:

            def write(split, index, angle, image):
                _write_png(os.path.join(tmp, split, f"{index}_{angle}.png"), image)
                bar.update()

            splits = rotated_splits(raw, seed, max_angle, n_train, n_test, on_image=write)
        cache.write(tmp, cache.folder_key(tmp), splits)  # the first load is fast too
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": out, "n_train": n_train, "n_test": n_test, "seed": seed, "max_angle": max_angle}
