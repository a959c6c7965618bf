"""THE run folder: its layout, its owner, its checkpoint and its one resume rule.

Every command that trains (`train`, `sweep`, `homework`, the labs) and `Trainer(checkpoint_dir=)`
write through a `Run`. A run folder holds:

    run.json           the manifest: what run this is (its identity), epochs done, files written
    checkpoint.npz     the training state after the last finished epoch, and the logs so far
    .jaxtrainer.lock   the owner's lock (pid and host inside)
    <member>/logs.json, logs.csv, figures, report.md ...   the run's outputs

The resume rule, the same everywhere: a folder holding a run of the same identity continues it
(the same command after an interruption gives the logs of an uninterrupted run); a different
identity is refused with the differing fields named; `overwrite` starts over. Asking fewer epochs
than a run already holds is refused too (its logs would disagree with what was asked). A folder
holding files but no run is refused as well: a run never writes over files it did not make.

Every file is written whole or not at all (`files.atomic_write`). The checkpoint is written before
the manifest and is the truth of how many epochs are done: a process killed between the two
renames loses nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import threading
import time
import zipfile
from typing import Any, Callable, Dict, Iterator, List, Tuple

import jax
import numpy as np

from . import distributed, files

MANIFEST = "run.json"
CHECKPOINT = "checkpoint.npz"
LOCK = ".jaxtrainer.lock"
MODES = ("continue", "resume", "overwrite")
FORMAT = 2  # the manifest's format; folders of other formats are refused, not misread


class RunError(files.FileError):
    """A run folder cannot be used as asked (another run's, in use, corrupt): the message says why
    and what to do."""


def read_json(path: str):
    """A JSON file we wrote; unreadable or not JSON is a RunError naming the file."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is not readable JSON ({getattr(e, 'strerror', None) or e})") from None


def check_writable_folder(folder: str, what: str = "output folder") -> str:
    """`files.check_writable_folder` by process 0 only: in a multi-process run the others never
    write."""
    return files.check_writable_folder(folder, what) if distributed.is_writer() else folder


# -- the owner's lock -----------------------------------------------------------------------------
_HELD: Dict[str, Lock] = {}  # released on exit, also by the CLI's interrupt path


class Lock:
    """One owner per run folder. The kernel's lock (flock) on `.jaxtrainer.lock` decides who owns
    the folder, so an owner that died (even by SIGKILL, even if its pid was reused since) never
    blocks it; the file holds the owner's pid and host, for the messages. A lock file left by a
    dead owner is stale: it is taken over, with a message."""

    def __init__(self, folder: str, say: Callable = print):
        self.path = os.path.join(folder, LOCK)
        with _signals_held():  # an interrupt between creating the file and `_HELD` would leave it
            self._take(folder, say)

    def _take(self, folder: str, say: Callable) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as e:
                raise RunError(f"cannot lock {folder}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                owner = _read_owner(fd)
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise RunError(
                        f"cannot lock {folder} ({e.strerror}); choose a folder on a file system with locks"
                    ) from None
                raise RunError(_in_use(folder, owner, me)) from None
            if not _same_file(fd, self.path):  # its owner removed it meanwhile: lock the new one
                os.close(fd)
                continue
            self.fd = fd
            _HELD[self.path] = self
            stale = _read_owner(fd)
            if stale is not None:
                say(f"{folder}: taking over a stale lock (pid {stale['pid']}, no longer running)")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            return
        raise RunError(f"{folder}: could not take its lock {self.path}")

    def release(self) -> None:
        with _signals_held():  # unregistered, it must be gone too
            if _HELD.pop(self.path, None) is not None:
                with contextlib.suppress(OSError):
                    os.remove(self.path)  # before unlocking: whoever opened it meanwhile retries
                os.close(self.fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """The interrupts (SIGINT, SIGTERM, SIGHUP) wait until the block ends, then act as they would
    have: whatever the block creates is registered for clean-up before an interrupt can leave the
    process."""
    sigs = files.INTERRUPTS
    if threading.current_thread() is not threading.main_thread() or None in map(signal.getsignal, sigs):
        yield  # only the main thread handles signals; a handler set outside Python is left alone
        return
    caught: List[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in sigs}
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


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _in_use(folder: str, owner: dict | None, me: dict) -> str:
    if owner is None:
        return f"{folder} is in use by another process (its lock is being written); try again"
    if owner.get("pid") == me["pid"] and owner.get("host") == me["host"]:
        return f"{folder} is already open in this process; close that run first"
    return (
        f"{folder} is in use by pid {owner['pid']} on {owner.get('host')} (since "
        f"{time.ctime(owner.get('since', 0))}); wait for it to finish or choose another folder"
    )


def release_all() -> None:
    for lock in list(_HELD.values()):
        lock.release()


def abandon() -> None:
    """What an interrupted process leaves: no temporary file, no lock (every file is whole)."""
    files.remove_temporaries()
    release_all()


# -- identities -----------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"cannot record {value!r} ({type(value).__name__}) in a run's identity")


def plain(value):
    """JSON round-trip, so tuples and lists (and ints and floats, numpy's or Python's) compare as
    they were saved."""
    return json.loads(json.dumps(value, default=_jsonable))


def _flat(config: Dict, prefix: str = "") -> Dict:
    """Nested keys as dotted names, so a difference is named down to the field."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(saved: Dict, current: Dict) -> List[str]:
    saved, current = _flat(plain(saved)), _flat(plain(current))
    return [
        f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
        for k in sorted(set(saved) | set(current))
        if saved.get(k) != current.get(k)
    ]


# -- the checkpoint file ----------------------------------------------------------------------------
def save_checkpoint(path: str, tree, epoch: int, logs, identity: dict) -> str:
    """Every leaf of `tree` and a JSON header (epoch, logs, identity), in one .npz."""
    header = json.dumps({"epoch": epoch, "logs": logs, "identity": identity}, default=_jsonable)
    leaves = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}
    # numpy's stub takes **leaves for savez's allow_pickle
    return files.atomic_write(path, lambda f: np.savez(f, header=np.array(header), **leaves), binary=True)  # pyright: ignore[reportArgumentType]


_UNREADABLE = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


def _unreadable(path: str, e: BaseException, hint: str) -> RunError:
    return RunError(
        f"{path} is not a readable jaxtrainer checkpoint ({type(e).__name__}: {e}); use {hint} to start over"
    )


def read_header(path: str, hint: str = "--overwrite") -> Tuple[int, Any, dict]:
    """(epoch, logs, identity) of the checkpoint at `path`, without its arrays."""
    try:
        with np.load(path) as f:
            header = json.loads(str(f["header"]))
        epoch, logs, identity = header["epoch"], header["logs"], header["identity"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r} is not a count")
        if not isinstance(identity, dict):
            raise TypeError(f"identity {identity!r} is not a JSON object")
    except _UNREADABLE as e:
        raise _unreadable(path, e, hint) from None
    return epoch, logs, identity


def load_checkpoint(path: str, template, hint: str = "--overwrite") -> Tuple[Any, int, Any, dict]:
    """(tree, epoch, logs, identity) from `path`; `template` is a tree of the same structure,
    shapes and dtypes."""
    epoch, logs, identity = read_header(path, hint)
    expected = jax.tree.leaves(template)
    try:
        with np.load(path) as f:
            if sorted(f.files) != sorted(["header", *(f"leaf_{i}" for i in range(len(expected)))]):
                raise RunError(
                    f"{path} holds {len(f.files) - 1} arrays, this run's state has {len(expected)}; "
                    f"use {hint} to start over"
                )
            leaves = [f[f"leaf_{i}"] for i in range(len(expected))]
    except _UNREADABLE as e:
        raise _unreadable(path, e, hint) from None
    for i, (a, b) in enumerate(zip(leaves, expected)):
        if a.shape != np.shape(b) or a.dtype != np.asarray(b).dtype:
            expected_array = f"{np.asarray(b).dtype}{list(np.shape(b))}"
            raise RunError(
                f"{path} holds a state of another shape than this run's (array {i}: "
                f"{a.dtype}{list(a.shape)}, expected {expected_array}); use {hint} to start over"
            )
    tree = jax.tree.unflatten(jax.tree.structure(template), [jax.numpy.asarray(a) for a in leaves])
    return tree, epoch, logs, identity


def epochs_on_disk(folder: str) -> int:
    """The epochs saved in `folder`'s checkpoint (0 when it holds none or it is unreadable)."""
    try:
        return read_header(os.path.join(folder, CHECKPOINT))[0]
    except RunError:
        return 0


# -- the run --------------------------------------------------------------------------------------
_OPENED: List[List[str]] = []  # the folders opened inside each active `tracking()` block


@contextlib.contextmanager
def tracking() -> Iterator[List[str]]:
    """The folders of the runs opened inside the block: what an interrupt reports on."""
    folders: List[str] = []
    _OPENED.append(folders)
    try:
        yield folders
    finally:
        _OPENED.remove(folders)


class Run:
    """A run folder owned by this process, opened under the one resume rule.

    `identity` is what makes two runs the same run (configuration, data fingerprint; never the
    epoch count). `mode`: "continue" (the default: a new run, or the same run continued),
    "resume" (there must be a run to continue), "overwrite" (start over). `epochs` is how many
    epochs are asked (None: not checked). After opening, `epochs_done` is what the folder holds.
    `writer` (default: this is process 0) reads, writes and locks the folder; in a multi-process
    run the other processes never touch it and learn its state from process 0. `hint` is how the
    caller asks to start over (`--overwrite`, `overwrite=True`).
    """

    def __init__(
        self,
        folder: str,
        identity: dict,
        *,
        mode: str = "continue",
        epochs: int | None = None,
        say: Callable = print,
        writer: bool | None = None,
        hint: str = "--overwrite",
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.folder, self.identity, self.say, self.hint = folder, plain(identity), say, hint
        self.writer = distributed.is_writer() if writer is None else writer
        self.lock, self.outputs, self.epochs_done, error = None, [], 0, None
        try:
            if self.writer:
                check_writable_folder(folder)
                self.lock = Lock(folder, say)
                self._open(mode, epochs)
        except BaseException as e:  # every process must learn that process 0 failed
            error = e
        self._agree(error)
        if error is not None:
            self.close()
            raise error
        if self.writer:
            for sub in {os.path.dirname(rel) for rel in self.outputs} | {""}:
                files.remove_stale_temporaries(self.path(sub))
        for folders in _OPENED:
            folders.append(folder)

    def _agree(self, error) -> None:
        """In a multi-process run, process 0 alone reads and writes the folder: the others learn
        from it whether the folder could be opened and how many epochs it holds."""
        if distributed.process_count() == 1:
            return
        status = distributed.from_writer({"ok": error is None, "epochs_done": self.epochs_done})
        self.epochs_done = status["epochs_done"]
        if not status["ok"] and error is None:
            raise RunError(f"process 0 could not open the run folder {self.folder} (see its message)")

    def _open(self, mode: str, epochs: int | None) -> None:
        try:
            manifest = self._manifest()
        except RunError:
            if mode != "overwrite":
                raise
            manifest = {}  # unreadable: what it listed cannot be removed, what it is can
        if manifest is None and os.path.exists(self.path(CHECKPOINT)):
            manifest = {"format": "older", "identity": {}}
        self.outputs: List[str] = []
        self.epochs_done = 0
        if manifest is not None and mode == "overwrite":
            self._remove_outputs(manifest)
            manifest = None
        if manifest is None:
            if mode == "resume":
                raise RunError(f"no run to resume in {self.folder}: it holds no {MANIFEST}")
            if mode == "continue":
                self._refuse_foreign_files()
            self._write_manifest()
            return
        if manifest.get("format") != FORMAT:
            raise RunError(
                f"{self.folder} holds a run written by another version of jaxtrainer; "
                f"use {self.hint} to start over, or choose another folder"
            )
        self._check_manifest(manifest)
        saved = manifest["identity"]
        if saved.get("kind") != self.identity.get("kind"):
            raise RunError(
                f"{self.folder} holds a {saved.get('kind')!r} run, not a {self.identity.get('kind')!r} "
                f"one; use {self.hint} to replace it, or choose another folder"
            )
        diffs = differences(saved, self.identity)
        if diffs:
            raise RunError(
                f"{self.folder} holds another run; refusing to continue it with a different "
                f"configuration ({'; '.join(diffs)}). Run the command that made it to continue it, "
                f"use {self.hint} to start over, or choose another folder"
            )
        self.outputs = list(manifest["outputs"])
        self.epochs_done = self._checkpointed_epochs(manifest["epochs_done"])
        if epochs is not None and epochs < self.epochs_done:
            raise RunError(
                f"{self.folder} already holds {self.epochs_done} epochs of this run and {epochs} were "
                f"asked: ask {self.epochs_done} or more to continue it, or use {self.hint} to start over"
            )

    def _checkpointed_epochs(self, recorded: int) -> int:
        """The epochs the checkpoint holds: it is renamed into place before the manifest is
        rewritten, so the manifest may record one epoch less (a kill between the two renames)."""
        path = self.path(CHECKPOINT)
        if not os.path.exists(path):
            if recorded:
                raise RunError(
                    f"{path} is missing although {MANIFEST} records {recorded} epochs; "
                    f"use {self.hint} to start over"
                )
            return 0
        epoch, _, identity = read_header(path, self.hint)
        if differences(identity, self.identity):
            raise RunError(f"{path} does not match {self.path(MANIFEST)}; use {self.hint} to start over")
        return epoch

    def path(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts)

    def _manifest(self) -> dict | None:
        path = self.path(MANIFEST)
        if not os.path.exists(path):
            return None
        try:
            manifest = read_json(path)
        except RunError as e:
            raise RunError(f"{e}; use {self.hint} to start over") from None
        if not isinstance(manifest, dict):
            raise RunError(f"{path} is not a run manifest (not a JSON object); use {self.hint} to start over")
        return manifest

    def _check_manifest(self, manifest: dict) -> None:
        """A manifest of our format whose fields are garbled (edited by hand, another tool) is
        refused by name: its outputs are what `overwrite` removes, so each must lie inside."""
        outputs, epochs = manifest.get("outputs"), manifest.get("epochs_done")
        problem = None
        if not isinstance(manifest.get("identity"), dict):
            problem = "its identity is not a JSON object"
        elif isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            problem = f"epochs_done {epochs!r} is not a count"
        elif not isinstance(outputs, list) or not all(_inside(rel) for rel in outputs):
            problem = f"outputs {outputs!r} are not paths inside the folder"
        if problem:
            raise RunError(
                f"{self.path(MANIFEST)} is not a valid run manifest ({problem}); "
                f"use {self.hint} to start over"
            )

    def _refuse_foreign_files(self) -> None:
        """A new run goes to a new or empty folder, never over files it did not write."""
        if not self.writer:
            return
        foreign = sorted(name for name in os.listdir(self.folder) if not name.startswith("."))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RunError(
                f"{self.folder} holds files but no jaxtrainer run ({shown}); choose a new or empty "
                f"folder, or use {self.hint} to write over them"
            )

    def _write_manifest(self) -> None:
        if self.writer:
            files.write_json(
                self.path(MANIFEST),
                {
                    "format": FORMAT,
                    "identity": self.identity,
                    "epochs_done": self.epochs_done,
                    "outputs": self.outputs,
                },
            )

    def _remove_outputs(self, manifest: dict) -> None:
        """Start over: remove what the old run wrote (its listed outputs, checkpoint, manifest, the
        folders that leaves empty); anything else in the folder is not ours and stays."""
        if not self.writer:
            return
        outputs = manifest.get("outputs")
        listed = [rel for rel in outputs if _inside(rel)] if isinstance(outputs, list) else []
        for rel in [*listed, CHECKPOINT, MANIFEST]:
            with contextlib.suppress(OSError):
                os.remove(self.path(rel))
        subs = set()
        for rel in listed:
            sub = os.path.dirname(os.path.normpath(rel))
            while sub:
                subs.add(sub)
                sub = os.path.dirname(sub)
        for sub in sorted(subs, key=len, reverse=True):  # the deepest first; only those left empty
            files.remove_stale_temporaries(self.path(sub))
            with contextlib.suppress(OSError):
                os.rmdir(self.path(sub))
        self.say(f"{self.folder}: the previous run's files were removed ({self.hint})")

    # -- writing -----------------------------------------------------------------------------
    def output(self, rel: str) -> str:
        """The path of an output file `rel` (made, and recorded as this run's)."""
        path = self.path(rel)
        if self.writer:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            except OSError as e:
                raise RunError(f"could not make {os.path.dirname(path)}: {e.strerror or e}") from None
            if rel not in self.outputs:
                self.outputs.append(rel)
                self._write_manifest()
        return path

    def figure(self, rel: str, draw: Callable[[str], Any]) -> str:
        """`draw(path)` draws a figure into the output file `rel` (on the writer only)."""
        path = self.output(rel)
        if self.writer:
            draw(path)
        return path

    def write_text(self, rel: str, text: str) -> str:
        return files.write_text(self.output(rel), text) if self.writer else self.path(rel)

    def write_json(self, rel: str, obj) -> str:
        return files.write_json(self.output(rel), obj) if self.writer else self.path(rel)

    def write_logs(self, rel: str, logs: dict, meta: dict, epochs: int) -> Dict[str, str]:
        """`rel`/logs.json ({"config": meta, "logs": logs}) and `rel`/logs.csv (one row per
        epoch). `epochs` is what the logs hold: it is recorded as meta's "epochs", so the two never
        disagree."""
        paths = {"json": self.path(rel, "logs.json"), "csv": self.path(rel, "logs.csv")}
        if not self.writer:
            return paths
        self.write_json(os.path.join(rel, "logs.json"), {"config": {**meta, "epochs": epochs}, "logs": logs})

        def rows(f):
            f.write(",".join(["epoch", *logs]) + "\n")
            for epoch, values in enumerate(zip(*logs.values())):
                f.write(",".join([str(epoch), *(repr(v) for v in values)]) + "\n")

        files.atomic_write(self.output(os.path.join(rel, "logs.csv")), rows)
        return paths

    # -- the checkpoint --------------------------------------------------------------------------
    def restore(self, template) -> Tuple[Any, Any]:
        """(tree, logs) of the last finished epoch, or (template, None) for a new run. In a
        multi-process run process 0 reads the checkpoint and sends it to the others."""
        tree, logs = template, None
        if self.writer and self.epochs_done:
            path = self.path(CHECKPOINT)
            tree, epoch, logs, _ = load_checkpoint(path, template, self.hint)
            self.say(f"resuming after epoch {epoch} from {path}")
        if distributed.process_count() > 1:
            logs = distributed.from_writer(logs)
            if logs is not None:
                tree = distributed.broadcast(tree)
        return tree, logs

    def checkpoint(self, tree, epoch: int, logs) -> None:
        """The state after `epoch` and the logs so far, then the manifest that records them."""
        if not self.writer:
            return
        save_checkpoint(self.path(CHECKPOINT), tree, epoch, logs, self.identity)
        self.epochs_done = epoch
        self._write_manifest()

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _inside(rel) -> bool:
    """A relative path that stays inside its folder."""
    return (
        isinstance(rel, str)
        and bool(rel)
        and not os.path.isabs(rel)
        and os.path.normpath(rel).split(os.sep)[0] not in ("..", ".")
    )
