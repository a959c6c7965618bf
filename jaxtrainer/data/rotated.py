"""A folder in the homework's rotated-image format: train/ and test/ of PNGs named <index>_<angle>.png.

Names: `<index>_<angle>.png`, the extension in any case, index and angle in ASCII digits. The angle
is in degrees, in ANGLE_RANGE (-360..360: wider is surely a typo, and a 24-digit angle would
overflow); it may carry a decimal part, and its integer part is the target, as the homework reads
it. Images are ordered by index (numerically), and each index appears once in a split. Other
`.png` names are refused; files with other extensions are ignored.

Pixels: each image becomes one grey channel in [0, 1] (then [-1, 1]):
- 8-bit modes ('1', 'L', 'LA', 'P', 'PA', 'RGB', 'RGBA'): Pillow's `convert("L")`, as the
  homework's PIL pipeline reads them (colour to luma (299 R + 587 G + 114 B) / 1000, a palette
  looked up, alpha dropped, 1-bit to 0 or 255; 1, 2 and 4-bit PNGs arrive scaled to 0..255), / 255.
- 16-bit grey ('I;16', 'I;16B', 'I;16L', and Pillow's 32-bit 'I' when its values fit 16 bits):
  / 65535. Here the rule departs from `convert("L")`, which clips 16-bit values at 255 (it
  turned 42 % of a 16-bit set's pixels white).
- 16-bit colour or grey-and-alpha PNGs: Pillow decodes them to 8-bit 'RGB' or 'RGBA' (each
  sample's high byte), read as above: within 1/255 of the true value, never clipped.
- Any other mode Pillow opens ('CMYK', 'YCbCr', 'LAB', 'La', 'F', ...) is refused by name.
The content decides, not the name: a TIFF or JPEG named .png follows the same rules.
A split with a 16-bit image is kept as uint16, its 8-bit images times 257 (0..255 onto 0..65535
exactly); otherwise as uint8.

Errors name the file and what is allowed: ValueError for a bad name, a repeated index, an angle out
of range, an unreadable or unsupported image, anything but a regular file (a FIFO, a folder, a
device: refused before it is read, so a FIFO cannot block the load), images of different sizes,
an empty split or a link loop; FileNotFoundError for a missing train/ or test/. The dataset's name
is the folder's name, printable (bytes that are not UTF-8 and control characters escaped): it goes
into plot titles.

The decoded pixels are cached in the folder (`cache.py`): the second load of 62,000 PNGs reads one
.npz instead of decoding every file again.
"""

from __future__ import annotations

import io
import os
import re
import stat
from typing import List, Tuple

import numpy as np

from ..errors import InputError
from . import cache
from .dataset import Dataset
from .rotation import rotation_dataset

NAME = re.compile(r"^([0-9]+)_(-?[0-9]+)(?:\.[0-9]+)?\.png$", re.IGNORECASE | re.ASCII)
ANGLE_RANGE = (-360, 360)
MODES_8BIT = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
MODES_16BIT = ("I;16", "I;16B", "I;16L", "I")
_EXPECTED = "a folder of PNGs named <index>_<angle>.png"


def printable(text: str) -> str:
    """`text` safe to print and to put in a plot title: bytes that are not UTF-8 (a file name read
    with surrogateescape) and control characters as backslash escapes."""
    text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _list_split(folder: str) -> List[Tuple[int, str, int]]:
    """(index, file name, angle) of each PNG in `folder`, by index; names, angles and indices checked."""
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
    for name in names:
        if not name.lower().endswith(".png"):
            continue
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
    return [(index, *found[index]) for index in sorted(found)]


def decode_grey(path: str) -> np.ndarray:
    """One image file as (H, W) grey pixels: uint8 from an 8-bit mode, uint16 from a 16-bit one
    (the module's rules); ValueError naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    shown = printable(path)
    try:  # opened without blocking: a FIFO named *.png would wait for a writer forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind:
            os.close(fd)
            raise InputError(f"{shown}: cannot be read ({kind}, not a regular file)")
        with os.fdopen(fd, "rb") as f:
            encoded = f.read()
    except OSError as e:  # a link loop, a dangling link, no permission
        raise InputError(f"{shown}: cannot be read ({e.strerror})") from None
    pixels = None
    try:
        with Image.open(io.BytesIO(encoded)) as im:
            mode = im.mode
            if mode in MODES_8BIT:
                pixels = np.asarray(im.convert("L"), dtype=np.uint8)
            elif mode in MODES_16BIT:
                pixels = np.asarray(im)
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
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
        raise InputError(
            f"{shown}: a mode {mode!r} image with values in [{pixels.min()}, {pixels.max()}]: "
            "integer images must hold 16-bit values 0..65535"
        )
    return pixels.astype(np.uint16)


def _not_regular(mode: int) -> str | None:
    """What a file that is not a regular one is (a folder, a FIFO, a device...), or None."""
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in kinds.items() if test(mode)), "a special file")


def _read_split(folder: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 or uint16 (N, H, W), angles int64 (N,)) in index order."""
    entries = _list_split(folder)
    images = []
    for _, name, _ in entries:
        path = os.path.join(folder, name)
        pixels = decode_grey(path)
        if images and pixels.shape != images[0].shape:
            (h, w), (h0, w0) = pixels.shape, images[0].shape
            raise InputError(
                f"{printable(path)} is {h}x{w}, the first image was {h0}x{w0}: all images must have one size"
            )
        images.append(pixels)
    if any(p.dtype == np.uint16 for p in images):
        images = [p.astype(np.uint16) * np.uint16(257) if p.dtype == np.uint8 else p for p in images]
    return np.stack(images), np.array([angle for _, _, angle in entries], dtype=np.int64)


def load_rotated_folder(root: str) -> Dataset:
    """A folder built by `jaxtrainer data build-rotated` (train/ and test/ of PNG images and angles), read
    through its cache when the folder has not changed."""
    key = cache.folder_key(root)
    splits = cache.read(root, key) if key is not None else None
    if splits is None:
        splits = {s: _read_split(os.path.join(root, s)) for s in cache.SPLITS}
        if key is not None and cache.folder_key(root) == key:  # not changed while it was read
            cache.write(root, key, splits)
    return rotation_dataset(printable(os.path.basename(os.path.normpath(root))), splits)
