"""Rotated Fashion-MNIST (the original zip is no longer served), built from the four IDX files as a
folder of 8-bit grayscale PNGs `<split>/<index>_<angle>.png`, index the image's index in its source
split: by default all 60,000 training images and the first 2,000 of t10k, as the original.
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
from .named import read_grey
from .rotation import MAX_ANGLE, N_TEST, N_TRAIN, check_args, rotated_splits


def _write_png(path: str, pixels: np.ndarray) -> None:
    """An 8-bit grayscale PNG (Pillow's encoder is deterministic), encoded in memory, written at once."""
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
    """Write the folder `out` (train/, test/, and the load cache) from the Fashion-MNIST IDX files
    (gzipped or not) in `source`; `write_rotated` says how. Returns what was written."""
    check_args(seed, max_angle, n_train, n_test)  # before the source is read
    out = _check_new_folder(out)
    raw = read_grey("fashion_mnist", os.fspath(source))
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
        pid = entry.name[len(prefix) :].split("-")[0]
        if entry.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


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

    Everything goes to a hidden temporary folder next to `out`, renamed to `out` at the end: a failed
    or interrupted build leaves no `out` and removes its temporary folder (an interrupt then says how
    many images were built). One killed outright is removed by the next build of `out`.
    """
    from tqdm.auto import tqdm

    check_args(seed, max_angle, n_train, n_test)  # rotated_splits checks the counts, before writing
    out = _check_new_folder(out)
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    _remove_dead_partials(parent, name)
    tmp = os.path.join(parent, f"{_partial_prefix(name)}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(tmp)
    total = n_train + n_test
    try:
        for split in ("train", "test"):
            os.mkdir(os.path.join(tmp, split))
        with tqdm(
            total=total, desc=f"build-rotated {name}", unit="img", disable=not progress, dynamic_ncols=True
        ) as bar:

            def write(split, index, angle, image):
                _write_png(os.path.join(tmp, split, f"{index}_{angle}.png"), image)
                bar.update()

            splits = rotated_splits(raw, seed, max_angle, n_train, n_test, on_image=write)
        cache.write(tmp, cache.folder_key(tmp), splits)  # fast first load; a key: both splits exist  # pyright: ignore[reportArgumentType]
        os.rename(tmp, out)
    except BaseException as e:
        built = sum(
            len(os.listdir(os.path.join(tmp, s)))
            for s in ("train", "test")
            if os.path.isdir(os.path.join(tmp, s))
        )
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):  # what was done and undone, for the interrupt's message
            raise KeyboardInterrupt(
                f"{built} of {total} images were built, then removed with the build's temporary "
                f"folder; {out} was not created: run the same command again to build it"
            ) from None
        raise
    return {"out": out, "n_train": n_train, "n_test": n_test, "seed": seed, "max_angle": max_angle}
