"""A folder's decoded PNGs in one .npz inside it, keyed on each PNG's split, name, inode, size, mtime and
ctime (which no user can set back: a `cp -p` of another image of the same size shows). A stale,
unreadable or unwritable cache is never an error: the folder is read as if there were none.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Tuple

import numpy as np

from .. import files

NAME = ".jaxtrainer-cache.npz"
# Bump when what is cached, or how PNGs are decoded or named, changes. 2: 16-bit PNGs scaled by
# 65535, every image mode decoded or refused, angles -360..360, indices unique.
VERSION = 2
SPLITS = ("train", "test")


def folder_key(root: str) -> str | None:
    """The hash of the folder's PNG listing, or None when train/ or test/ is missing or cannot be
    listed (the read that follows says why)."""
    h = hashlib.sha256(f"jaxtrainer rotated folder cache v{VERSION}\n".encode())
    for split in SPLITS:
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            return None
        rows = []
        try:
            with os.scandir(folder) as entries:
                for e in entries:
                    if e.name.lower().endswith(".png"):
                        st = e.stat()
                        rows.append(
                            f"{split}/{e.name}\t{st.st_ino}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}\n"
                        )
        except OSError:  # a link loop, a dangling link, no permission
            return None
        for row in sorted(rows):
            h.update(row.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def read(root: str, key: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]] | None:
    """{split: (images uint8 or uint16 (N, H, W), angles int64 (N,))} when the cache matches `key`
    and holds arrays of that layout, else None."""
    try:
        with np.load(os.path.join(root, NAME), allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            splits = {s: (z[f"{s}_images"], z[f"{s}_angles"]) for s in SPLITS}
    except Exception:  # absent, truncated, corrupt, not an npz, other members: read the PNGs instead
        return None
    for images, angles in splits.values():
        if images.dtype not in (np.uint8, np.uint16) or images.ndim != 3 or len(images) == 0:
            return None
        if angles.dtype != np.int64 or angles.shape != (len(images),):
            return None
    return splits


def write(root: str, key: str, splits: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> bool:
    """Write the cache (whole or not at all); False if it could not be (a read-only folder, a full disk)."""
    arrays = {"key": np.array(key)}
    for s in SPLITS:
        arrays[f"{s}_images"] = np.ascontiguousarray(splits[s][0])
        arrays[f"{s}_angles"] = np.asarray(splits[s][1], dtype=np.int64)
    try:
        # numpy's stub takes **arrays for savez's allow_pickle
        files.atomic_write(os.path.join(root, NAME), lambda f: np.savez(f, **arrays), binary=True)  # pyright: ignore[reportArgumentType]
        return True
    except files.FileError:
        return False
