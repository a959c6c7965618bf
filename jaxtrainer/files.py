"""Whole files or none, for every file jaxtrainer writes: each goes to `.NAME.PID.RANDOM.tmp`, fsynced,
then renamed over the old one; a failed write keeps the previous version. Interrupts and a folder's
new owner remove temporaries left behind. No JAX here: the grader and `bench` start without it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import tempfile
import uuid
from typing import Any, Callable, Set

from .errors import JaxtrainerError

# The signals that interrupt a command, all alike: Ctrl-C, a scheduler's stop, a closed terminal.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class FileError(JaxtrainerError, ValueError):
    """A file or folder cannot be written as asked; also a `ValueError`, as the facade's callers expect."""


_TEMPS: Set[str] = set()  # temporary files being written now
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")  # .NAME.PID.RANDOM.tmp
NAME_MAX = 255  # bytes in one directory entry (Linux, macOS)
PID_DIGITS = 7  # the most a pid takes (Linux's pid_max is at most 4194304)


def fitting(name: str, extra: int) -> str:
    """`name` when `extra` more bytes still fit in NAME_MAX, else its first bytes and a hash of it,
    so a temporary name made from a valid long name is valid too."""
    raw = os.fsencode(name)
    if len(raw) + extra <= NAME_MAX:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return os.fsdecode(raw[: NAME_MAX - extra - len(digest) - 1]) + "~" + digest


def atomic_write(path: str, write: Callable[[Any], None], binary: bool = False) -> str:
    """`write(file)` to a temporary name unique to this writer, then renamed over `path`."""
    folder, name = os.path.split(os.path.abspath(path))
    suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp = os.path.join(folder, f".{fitting(name, 1 + len(suffix))}{suffix}")
    _TEMPS.add(tmp)
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", newline="") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise FileError(
                f"could not write {path}: {e.strerror or e}; the previous version, if any, is kept"
            ) from None
        raise
    finally:
        _TEMPS.discard(tmp)
    return path


def write_text(path: str, text: str) -> str:
    """`atomic_write` of `text`; returns `path`."""
    return atomic_write(path, lambda f: f.write(text))


def write_json(path: str, obj) -> str:
    """`atomic_write` of `obj` as indented JSON; returns `path`."""
    return atomic_write(path, lambda f: json.dump(obj, f, indent=2))


def remove_temporaries() -> None:
    """The temporary files of the writes in progress (an interrupt leaves at once)."""
    for tmp in list(_TEMPS):
        with contextlib.suppress(OSError):
            os.remove(tmp)


def remove_stale_temporaries(folder: str) -> None:
    """Temporary files another process left (it was killed mid-write) in a folder we now own."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            match = _TEMP_NAME.match(name)
            if match and int(match.group(1)) != os.getpid():
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))


def check_writable_folder(folder: str, what: str = "output folder") -> str:
    """Make `folder` (and its parents) and prove it writable, before anything is computed."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileError(f"the {what} {folder!r} exists and is not a folder; choose another path")
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise FileError(f"the {what} {folder!r} is not writable: {e.strerror or e}") from None
    return folder


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading apostrophe before what it would read as a formula."""
    text = str(text)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text
