"""Rotated Fashion-MNIST, built from the four Fashion-MNIST IDX files as a folder of PNGs.

The original zip is no longer served. `rotation.rotated_splits` turns each image by its seeded
angle; each result is written as an 8-bit grayscale `<split>/<index>_<angle>.png`, where index is the
image's index in the source split. Defaults follow the original: 60,000 training images and the
first 2,000 of t10k as the test set. `load("fashion_mnist", data_dir=...)` gives the same arrays
as building the folder with the same seed and loading it, without the PNGs.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import uuid
from typing import Dict

import numpy as np

from .. import files
from . import cache
from .named import read_idx_source
from .rotation import MAX_ANGLE, N_TEST, N_TRAIN, check_args, rotated_splits, take


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
    """Write the folder `out` (train/, test/, and the load cache) from the IDX files in `source`.

    Args:
        source: a folder holding Fashion-MNIST's four IDX files (gzipped or not).
        out: the folder to create; it must not exist (a build is never mixed with another).
        seed: seeds the rotation angles.
        max_angle: angles are drawn in [0, max_angle] degrees (1-359).
        n_train, n_test: images kept from the source's train and test splits.
        progress: show a progress bar.

    Returns:
        What was written (the folder, the counts, the settings).
    """
    check_args(seed, max_angle, n_train, n_test)
    out = _check_new_folder(out)
    raw = read_idx_source(os.fspath(source), "fashion_mnist")
    return write_rotated(
        raw, out, seed=seed, max_angle=max_angle, n_train=n_train, n_test=n_test, progress=progress
    )


def _partial_prefix(name: str) -> str:
    """The start of a build's temporary folder name, then PID-RANDOM; the whole fits in NAME_MAX."""
    tail = f".partial-{socket.gethostname()}-"
    return f".{files.fitting(name, 1 + len(os.fsencode(tail)) + files.PID_DIGITS + 9)}{tail}"


def _remove_dead_partials(parent: str, name: str) -> None:
    """The temporary folders of builds of `name` killed outright on this host (their pid is gone).
    A build still running, or one on another host sharing the folder, keeps its own."""
    prefix = _partial_prefix(name)
    for entry in os.scandir(parent):
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _images_in(tmp: str) -> int:
    """The PNGs a build has written so far in its temporary folder."""
    return sum(
        len(os.listdir(os.path.join(tmp, split)))
        for split in ("train", "test")
        if os.path.isdir(os.path.join(tmp, split))
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
    end: an interrupted or failed build leaves no `out` and removes its temporary folder (an
    interrupt's KeyboardInterrupt then says how many images were built and removed). A process
    killed outright leaves it; the next build of `out` removes it (`_remove_dead_partials`).
    """
    from tqdm.auto import tqdm

    check_args(seed, max_angle, n_train, n_test)
    out = _check_new_folder(out)
    for split, n in (("train", n_train), ("test", n_test)):
        take(raw, split, n)  # fail on counts before writing anything
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    _remove_dead_partials(parent, name)
    tmp = os.path.join(parent, f"{_partial_prefix(name)}{os.getpid()}-{uuid.uuid4().hex[:8]}")
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
        cache.write(tmp, cache.folder_key(tmp), splits)  # fast first load; a key: both splits exist  # pyright: ignore[reportArgumentType]
        os.rename(tmp, out)
    except BaseException as e:
        built = _images_in(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):  # what was done and undone, for the interrupt's message
            raise KeyboardInterrupt(
                f"{built} of {n_train + n_test} images were built, then removed with the build's "
                f"temporary folder; {out} was not created: run the same command again to build it"
            ) from None
        raise
    return {"out": out, "n_train": n_train, "n_test": n_test, "seed": seed, "max_angle": max_angle}
