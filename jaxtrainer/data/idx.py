"""MNIST-family IDX files (Fashion-MNIST, MNIST), plain or gzipped, read with numpy alone; and Keras's
mnist.npz. IDX (Y. LeCun's MNIST page): a magic number 00 00 <type> <ndim>, each dimension as a
big-endian uint32, then the elements, row-major.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Dict, Sequence, Tuple

import numpy as np

from ..errors import InputError

DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}  # by type code

FILES = {  # (split, kind) -> the standard name, without the optional .gz
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # unsigned bytes, 3 and 1 dimensions


def read_idx(path: str) -> np.ndarray:
    """Any IDX file, gunzipped when it starts with gzip's magic, as a numpy array (native byte
    order), its size checked against its header."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(f"{path}: a truncated or corrupt gzip file ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
        raise InputError(
            f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}, "
            "expected 0000 then a type code such as 08 and the number of dimensions)"
        )
    dtype, ndim = np.dtype(DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated IDX header ({len(data)} bytes, {header} expected)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise InputError(
            f"{path}: {what}: the header says {shape} elements of {dtype.itemsize} "
            f"byte(s), {expected} bytes in all, the file has {len(data)}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_files(folders: Sequence[str], names: Dict = FILES, suffixes=("", ".gz")) -> Tuple[str, Dict]:
    """The first folder holding every file of `names`, each under its name plus one of `suffixes`
    (plain preferred, as torchvision's raw/ keeps both), and their paths; errors name what is missing."""
    best, best_found = None, {}
    shown = lambda n: n + "[.gz]" if ".gz" in suffixes else n
    for folder in folders:
        found = {}
        for key, name in names.items():
            paths = (os.path.join(folder, name + s) for s in suffixes)
            path = next((p for p in paths if os.path.isfile(p)), None)
            if path is not None:
                found[key] = path
        if len(found) == len(names):
            return folder, found
        if len(found) > len(best_found):
            best, best_found = folder, found
    if best_found:
        missing = [shown(names[k]) for k in names if k not in best_found]
        raise FileNotFoundError(
            f"{best} holds some of the files but not {', '.join(missing)}: "
            f"expected all of {', '.join(shown(n) for n in names.values())}"
        )
    raise FileNotFoundError(
        f"none of {', '.join(shown(n) for n in names.values())} in {' or '.join(folders) or 'no folder'}"
    )


def read_set(folders: Sequence[str]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8 (N, H, W), labels uint8 (N,)), "test": ...} from the four IDX files
    of the first folder that holds them all (a `registry.DATASETS` reader)."""
    files = find_files(folders)[1]
    out = {}
    for split in ("train", "test"):
        parts = {}
        for kind in ("images", "labels"):
            data = parts[kind] = read_idx(files[(split, kind)])
            if data.dtype != np.uint8 or (0x0800 | data.ndim) != MAGIC[kind]:
                raise InputError(
                    f"{files[(split, kind)]}: IDX of {data.dtype} with {data.ndim} dimension(s), expected "
                    f"magic number {MAGIC[kind]:08x} (uint8, {MAGIC[kind] & 0xFF} dimension(s)) for {kind}"
                )
        if len(parts["images"]) != len(parts["labels"]):
            raise InputError(
                f"{files[(split, 'images')]} holds {len(parts['images'])} images but "
                f"{files[(split, 'labels')]} holds {len(parts['labels'])} labels"
            )
        out[split] = (parts["images"], parts["labels"])
    return out


def read_mnist(folders: Sequence[str]) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """MNIST as `read_set` reads it, or else from Keras's mnist.npz in one of `folders`."""
    try:
        return read_set(folders)
    except FileNotFoundError:
        path = next((p for p in (os.path.join(f, "mnist.npz") for f in folders) if os.path.isfile(p)), None)
        if path is None:
            raise
    try:
        with np.load(path, allow_pickle=False) as z:
            parts = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in ("train", "test")}
    except Exception as e:
        raise InputError(f"{path}: not a readable Keras mnist.npz ({type(e).__name__}: {e})") from None
    for split, (x, y) in parts.items():
        if x.dtype != np.uint8 or x.ndim != 3 or len(x) != len(y):
            raise InputError(
                f"{path}: x_{split} {x.dtype} {x.shape} with {len(y)} labels, "
                "expected uint8 (N, 28, 28) and N labels"
            )
    return parts
