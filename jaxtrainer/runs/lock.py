"""The owner's lock (`.jaxtrainer.lock`): one owner per run folder. The kernel's flock decides who
owns it, so a dead owner (even SIGKILLed, its pid reused) never blocks it: its stale file is taken
over. The file holds the owner's pid and host, for the messages. A link there is refused, never
followed (writing the owner record through it would overwrite what it points to)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Dict, Iterator, List

from .. import files
from .manifest import RunError

log = logging.getLogger(__name__)
LOCK = ".jaxtrainer.lock"
_HELD: Dict[str, Lock] = {}  # released on exit, also by the CLI's interrupt path


class Lock:
    """The lock of `folder`, taken at once or refused with a RunError naming its owner."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, LOCK)
        with _signals_held():  # an interrupt between creating the file and `_HELD` would leave it
            for _ in range(5):
                self.fd = self._open_locked(folder)
                with contextlib.suppress(FileNotFoundError):
                    if os.path.samestat(os.fstat(self.fd), os.lstat(self.path)):
                        break
                os.close(self.fd)  # its owner removed it meanwhile: lock the new one
            else:
                raise RunError(f"{folder}: could not take its lock {self.path}")
            _HELD[self.path] = self
            stale = _read_owner(self.fd)
            if stale is not None:
                log.info(f"{folder}: taking over a stale lock (pid {stale['pid']}, no longer running)")
            os.ftruncate(self.fd, 0)
            me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            os.pwrite(self.fd, json.dumps(me).encode(), 0)

    def _open_locked(self, folder: str) -> int:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RunError(
                    f"{self.path} is a symbolic link, not jaxtrainer's lock; jaxtrainer never writes "
                    "through links: remove it, or choose another folder"
                ) from None
            raise RunError(f"cannot lock {folder}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            owner = _read_owner(fd)
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                why = f"cannot lock {folder} ({e.strerror}); choose a folder on a file system with locks"
            elif owner is None:
                why = f"{folder} is in use by another process (its lock is being written); try again"
            elif owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                why = f"{folder} is already open in this process; close that run first"
            else:
                why = (
                    f"{folder} is in use by pid {owner['pid']} on {owner.get('host')} (since "
                    f"{time.ctime(owner.get('since', 0))}); wait for it to finish or choose another folder"
                )
            raise RunError(why) from None

    def release(self) -> None:
        """Removes the lock file, then unlocks; a second call does nothing."""
        with _signals_held():  # unregistered, it must be gone too
            if _HELD.pop(self.path, None) is not None:
                with contextlib.suppress(OSError):
                    os.remove(self.path)  # before unlocking: whoever opened it meanwhile retries
                os.close(self.fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block ends, then act: what the block creates is
    registered for clean-up before an interrupt can leave the process."""
    sigs = files.INTERRUPTS
    if threading.current_thread() is not threading.main_thread() or None in map(signal.getsignal, sigs):
        yield  # only the main thread handles signals; a handler set outside Python is left alone
        return
    caught: List[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _: caught.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


def _read_owner(fd: int) -> dict | None:
    try:
        owner = json.loads(os.pread(fd, 4096, 0))
        int(owner["pid"])
        return owner
    except (OSError, ValueError, KeyError, TypeError):
        return None


def abandon() -> None:
    """What an interrupted process leaves: no temporary file, no lock (every file is whole)."""
    files.remove_temporaries()
    for lock in list(_HELD.values()):
        lock.release()
