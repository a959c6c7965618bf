"""MNIST-family IDX files (Fashion-MNIST, MNIST), plain or gzipped, read with numpy alone.

The format (Y. LeCun's MNIST page, which Zalando's Fashion-MNIST copies): a magic number whose
first two bytes are 0, the third the element type (0x08 = unsigned byte) and the fourth the number
of dimensions; then each dimension as a big-endian uint32; then the elements, row-major.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Dict, Sequence, Tuple

import numpy as np

from ..errors import InputError

# element type code -> numpy dtype (multi-byte types are big-endian)
DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

FILES = {  # (split, kind) -> the standard name, without the optional .gz
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
MAGIC = {"images": 0x00000803, "labels": 0x00000801}  # unsigned bytes, 3 and 1 dimensions


def _read_bytes(path: str) -> bytes:
    """The file's bytes, gunzipped when it starts with gzip's magic (whatever its name says)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"{path}: a truncated or corrupt gzip file ({e})") from None


def read_idx(path: str) -> np.ndarray:
    """Any IDX file as a numpy array (native byte order), its size checked against its header."""
    data = _read_bytes(os.fspath(path))
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in DTYPES:
        raise InputError(
            f"{path}: not an IDX file (magic number {data[:4].hex() or 'missing'}, "
            "expected 0000 then a type code such as 08 and the number of dimensions)"
        )
    dtype, ndim = DTYPES[data[2]], data[3]
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


def read_images_or_labels(path: str, kind: str) -> np.ndarray:
    """An IDX file of uint8 images (N, H, W) or labels (N,), its magic number checked."""
    data = read_idx(path)
    if data.dtype != np.uint8 or (0x0800 | data.ndim) != MAGIC[kind]:
        raise InputError(
            f"{path}: IDX of {data.dtype} with {data.ndim} dimension(s), expected magic "
            f"number {MAGIC[kind]:08x} (uint8, {MAGIC[kind] & 0xFF} dimension(s)) for {kind}"
        )
    return data


def find_files(folders: Sequence[str], names: Dict = FILES, suffixes=("", ".gz")) -> Tuple[str, Dict]:
    """The first folder holding every file of `names`, each under its name plus one of `suffixes`
    (plain preferred when both are there, as torchvision's raw/ keeps both), and their paths.
    Errors name what is missing."""
    best = None
    shown = lambda n: n + "[.gz]" if ".gz" in suffixes else n  # noqa: E731
    for folder in folders:
        found = {}
        for key, name in names.items():
            for candidate in (name + s for s in suffixes):
                if os.path.isfile(os.path.join(folder, candidate)):
                    found[key] = os.path.join(folder, candidate)
                    break
        if len(found) == len(names):
            return folder, found
        if found and (best is None or len(found) > len(best[1])):
            best = (folder, found)
    if best is not None:
        folder, found = best
        missing = [shown(names[k]) for k in names if k not in found]
        raise FileNotFoundError(
            f"{folder} holds some of the files but not {', '.join(missing)}: "
            f"expected all of {', '.join(shown(n) for n in names.values())}"
        )
    raise FileNotFoundError(
        f"none of {', '.join(shown(n) for n in names.values())} in {' or '.join(folders) or 'no folder'}"
    )


def load_idx_set(files: Dict) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8 (N, H, W), labels uint8 (N,)), "test": ...} from find_files' paths."""
    out = {}
    for split in ("train", "test"):
        images = read_images_or_labels(files[(split, "images")], "images")
        labels = read_images_or_labels(files[(split, "labels")], "labels")
        if len(images) != len(labels):
            raise InputError(
                f"{files[(split, 'images')]} holds {len(images)} images but "
                f"{files[(split, 'labels')]} holds {len(labels)} labels"
            )
        out[split] = (images, labels)
    return out
