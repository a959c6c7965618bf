"""A folder in the homework's rotated-image format: train/ and test/ of PNGs named <index>_<angle>.png,
read in index order, each image one grey channel, the angle's integer part the target; the decoded
pixels are cached in the folder (`cache.py`). Errors name the file and what is allowed.
"""

from __future__ import annotations

import io
import os
import re
import stat
from typing import Tuple

import numpy as np

from ..errors import InputError
from . import cache
from .dataset import Dataset
from .rotation import rotation_dataset

# ASCII digits, the extension in any case; the angle may carry a decimal part (the homework reads its
# integer part) and lies in ANGLE_RANGE (wider is surely a typo; a 24-digit one would overflow).
NAME = re.compile(r"^([0-9]+)_(-?[0-9]+)(?:\.[0-9]+)?\.png$", re.IGNORECASE | re.ASCII)
ANGLE_RANGE = (-360, 360)
# 8-bit modes go through Pillow's convert("L") as the homework's PIL pipeline (16-bit colour arrives
# as 8-bit RGB(A)); 16-bit grey keeps its 16 bits (convert("L") would clip it at 255). Others: refused.
MODES_8BIT = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
MODES_16BIT = ("I;16", "I;16B", "I;16L", "I")
_EXPECTED = "a folder of PNGs named <index>_<angle>.png"
_NOT_REGULAR = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def printable(text: str) -> str:
    """`text` safe to print and to put in a plot title: bytes that are not UTF-8 (a file name read
    with surrogateescape) and control characters as backslash escapes."""
    text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _list_split(folder: str) -> Tuple[list, list]:
    """The PNG names of `folder` and their angles, by index; names, angles and indices checked."""
    shown = printable(folder)
    if not os.path.isdir(folder):
        if not os.path.lexists(folder):
            raise FileNotFoundError(f"{shown} does not exist: expected {_EXPECTED}")
        what = "a file" if os.path.exists(folder) else "a symbolic link loop or a link to nothing"
        raise InputError(f"{shown} is {what}: expected {_EXPECTED}")
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise InputError(f"{shown}: cannot be listed ({e.strerror})") from None
    found = {}  # index -> (name, angle)
    for name in (n for n in names if n.lower().endswith(".png")):
        path = printable(os.path.join(folder, name))
        m = NAME.match(name)
        if m is None:
            raise InputError(
                f"{path}: the name must be <index>_<angle>.png "
                "(the angle is the integer after the underscore)"
            )
        index, angle = int(m.group(1)), int(m.group(2))
        if not ANGLE_RANGE[0] <= angle <= ANGLE_RANGE[1]:
            raise InputError(
                f"{path}: angle {m.group(2)} is outside {ANGLE_RANGE[0]}..{ANGLE_RANGE[1]} degrees"
            )
        if index in found:
            first, second = sorted((found[index][0], name))
            raise InputError(
                f"{printable(os.path.join(folder, first))} and {printable(os.path.join(folder, second))} "
                f"have the same index {index}: each index must appear once in a split"
            )
        found[index] = (name, angle)
    if not found:
        raise InputError(f"{shown} holds no PNG named <index>_<angle>.png")
    return [found[i][0] for i in sorted(found)], [found[i][1] for i in sorted(found)]


def decode_grey(path: str) -> np.ndarray:
    """One image file as (H, W) grey pixels: uint8 from an 8-bit mode, uint16 from a 16-bit one;
    ValueError naming the file otherwise (the content decides, not the name)."""
    from PIL import Image, UnidentifiedImageError

    shown = printable(path)
    try:  # opened without blocking: a FIFO named *.png would wait for a writer forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        st_mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(st_mode):
            os.close(fd)
            kind = next((kind for test, kind in _NOT_REGULAR.items() if test(st_mode)), "a special file")
            raise InputError(f"{shown}: cannot be read ({kind}, not a regular file)")
        with os.fdopen(fd, "rb") as f:
            encoded = f.read()
    except OSError as e:  # a link loop, a dangling link, no permission
        raise InputError(f"{shown}: cannot be read ({e.strerror})") from None
    try:
        with Image.open(io.BytesIO(encoded)) as im:
            mode = im.mode
            if mode in MODES_8BIT:
                return np.asarray(im.convert("L"), dtype=np.uint8)
            pixels = np.asarray(im) if mode in MODES_16BIT else None
    except UnidentifiedImageError:  # its message names the in-memory buffer, not the file
        raise InputError(
            f"{shown}: not a readable PNG (no image format Pillow knows, in its {len(encoded)} bytes)"
        ) from None
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, zlib and struct errors...
        raise InputError(f"{shown}: not a readable PNG ({type(e).__name__}: {e})") from None
    if pixels is None:
        raise InputError(
            f"{shown}: image mode {mode!r} is not supported; allowed: "
            f"{', '.join(map(repr, MODES_8BIT + MODES_16BIT))}"
        )
    if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):  # Pillow's 32-bit 'I'
        raise InputError(
            f"{shown}: a mode {mode!r} image with values in [{pixels.min()}, {pixels.max()}]: "
            "integer images must hold 16-bit values 0..65535"
        )
    return pixels.astype(np.uint16)


def _read_split(folder: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8, or uint16 when one is 16-bit (8-bit ones times 257), (N, H, W); angles int64)."""
    names, angles = _list_split(folder)
    images = []
    for name in names:
        pixels = decode_grey(os.path.join(folder, name))
        if images and pixels.shape != images[0].shape:
            (h, w), (h0, w0) = pixels.shape, images[0].shape
            raise InputError(
                f"{printable(os.path.join(folder, name))} is {h}x{w}, the first image was {h0}x{w0}: "
                "all images must have one size"
            )
        images.append(pixels)
    if any(p.dtype == np.uint16 for p in images):
        images = [p.astype(np.uint16) * np.uint16(257) if p.dtype == np.uint8 else p for p in images]
    return np.stack(images), np.array(angles, dtype=np.int64)


def load_rotated_folder(root: str) -> Dataset:
    """A folder built by `jaxtrainer data build-rotated`, read through its cache when the folder has
    not changed; the dataset is named after the folder, printable."""
    key = cache.folder_key(root)
    splits = cache.read(root, key) if key is not None else None
    if splits is None:
        splits = {s: _read_split(os.path.join(root, s)) for s in cache.SPLITS}
        if key is not None and cache.folder_key(root) == key:  # not changed while it was read
            cache.write(root, key, splits)
    return rotation_dataset(printable(os.path.basename(os.path.normpath(root))), splits)
