"""THE run folder: its layout, its owner, its atomic writes, its checkpoint and its one resume rule.

Every command that trains (`train`, `sweep`, `homework`, the labs) and `Trainer(checkpoint_dir=)`
write through a `Run`. A run folder holds:

    run.json           the manifest: what run this is (its identity), epochs done, files written
    checkpoint.npz     the training state after the last finished epoch, and the logs so far
    .jaxtrainer.lock   while a process owns the folder: its pid and host
    <member>/logs.json, logs.csv, figures, report.md ...   the run's outputs

The resume rule, the same everywhere: a folder holding a run of the same identity continues it
(the same command after an interruption gives the logs of an uninterrupted run); a different
identity is refused with the differing fields named; `overwrite` starts over. Asking fewer epochs
than a run already holds is refused too (its logs would disagree with what was asked).

Every file is written to a temporary name unique to its writer, flushed, fsynced and renamed over
the old one, so each file on disk is always whole; a failed write (a full disk) removes its
temporary file and leaves the previous version in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

import jax
import numpy as np

from . import distributed

MANIFEST = "run.json"
CHECKPOINT = "checkpoint.npz"
LOCK = ".jaxtrainer.lock"
MODES = ("continue", "resume", "overwrite")
FORMAT = 2  # the manifest's format; folders of other formats are refused, not misread


class RunError(ValueError):
    """A run folder cannot be used as asked (another run's, in use, unwritable, corrupt): the
    message says why and what to do."""


# -- atomic writes --------------------------------------------------------------------------------
def atomic_write(path: str, write: Callable[[Any], None], binary: bool = False) -> str:
    """`write(file)` to a temporary name unique to this writer, then renamed over `path`."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise RunError(
                f"could not write {path}: {e.strerror or e}; the previous version, if any, is kept"
            ) from None
        raise
    return path


def write_text(path: str, text: str) -> str:
    return atomic_write(path, lambda f: f.write(text))


def write_json(path: str, obj) -> str:
    return atomic_write(path, lambda f: json.dump(obj, f, indent=2))


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


# -- preflight ------------------------------------------------------------------------------------
def check_writable_folder(folder: str, what: str = "output folder") -> str:
    """Make `folder` (and its parents) and prove it writable, before anything is computed (by
    process 0 only, in a multi-process run: the others never write)."""
    if not distributed.is_writer():
        return folder
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise RunError(f"the {what} {folder!r} exists and is not a folder; choose another path")
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".jaxtrainer-probe.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise RunError(f"the {what} {folder!r} is not writable: {e.strerror or e}") from None
    return folder


# -- the owner's lock -----------------------------------------------------------------------------
_HELD: Dict[str, Lock] = {}  # released on exit, also by the CLI's interrupt path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lock:
    """One owner per run folder: a file holding the owner's pid and host, created exclusively. A
    lock whose pid no longer runs on this host is stale and taken over, with a message."""

    def __init__(self, folder: str, say: Callable = print):
        self.path = os.path.join(folder, LOCK)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                fd = None
            if fd is not None:
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
                _HELD[self.path] = self
                return
            owner = self._owner()
            if owner is None or (owner.get("host") == me["host"] and not _alive(int(owner["pid"]))):
                who = "an unreadable lock" if owner is None else f"pid {owner['pid']}, no longer running"
                say(f"{folder}: taking over a stale lock ({who})")
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
                continue
            if owner.get("pid") == me["pid"] and owner.get("host") == me["host"]:
                raise RunError(f"{folder} is already open in this process; close that run first")
            raise RunError(
                f"{folder} is in use by pid {owner['pid']} on {owner.get('host')} (since "
                f"{time.ctime(owner.get('since', 0))}); wait for it to finish or choose another folder"
            )
        raise RunError(f"{folder}: could not take its lock {self.path}")

    def _owner(self) -> dict | None:
        try:
            owner = read_json(self.path)
            int(owner["pid"])
            return owner
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def release(self) -> None:
        if _HELD.pop(self.path, None) is not None:
            with contextlib.suppress(OSError):
                os.remove(self.path)


def release_all() -> None:
    for lock in list(_HELD.values()):
        lock.release()


# -- identities -----------------------------------------------------------------------------------
def plain(value):
    """JSON round-trip, so tuples and lists (and ints and floats) compare as they were saved."""
    return json.loads(json.dumps(value))


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
    header = json.dumps({"epoch": epoch, "logs": logs, "identity": identity})
    leaves = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}
    return atomic_write(path, lambda f: np.savez(f, header=np.array(header), **leaves), binary=True)


def _read(path: str, leaves: bool):
    try:
        with np.load(path) as f:
            header = json.loads(str(f["header"]))
            arrays = [f[f"leaf_{i}"] for i in range(len(f.files) - 1)] if leaves else []
        return int(header["epoch"]), header["logs"], header["identity"], arrays
    except Exception as e:  # zip, JSON, key or type errors: the file is not a whole checkpoint of ours
        raise RunError(
            f"{path} is not a readable jaxtrainer checkpoint ({type(e).__name__}: {e}); "
            "use --overwrite (overwrite=True) to start over"
        ) from None


def checkpoint_header(path: str) -> Tuple[int, dict]:
    """(epoch, identity) of a checkpoint, without reading its arrays."""
    epoch, _, identity, _ = _read(path, leaves=False)
    return epoch, identity


def load_checkpoint(path: str, template) -> Tuple[Any, int, Any, dict]:
    """(tree, epoch, logs, identity) from `path`; `template` is a tree of the same structure."""
    epoch, logs, identity, leaves = _read(path, leaves=True)
    expected = jax.tree.leaves(template)
    if len(leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(leaves, expected)):
        raise RunError(
            f"{path} holds a state of another shape than this run's; use --overwrite to start over"
        )
    tree = jax.tree.unflatten(
        jax.tree.structure(template), [jax.numpy.asarray(a, dtype=b.dtype) for a, b in zip(leaves, expected)]
    )
    return tree, epoch, logs, identity


# -- the run --------------------------------------------------------------------------------------
class Run:
    """A run folder owned by this process, opened under the one resume rule.

    `identity` is what makes two runs the same run (configuration, data fingerprint; never the
    epoch count). `mode`: "continue" (the default: a new run, or the same run continued),
    "resume" (there must be a run to continue), "overwrite" (start over). `epochs` is how many
    epochs are asked (None: not checked). After opening, `epochs_done` is what the folder holds.
    `writer` (default: this is process 0) reads, writes and locks the folder; in a multi-process
    run the other processes never touch it and learn its state from process 0.
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
        self.folder, self.identity, self.say = folder, plain(identity), say
        self.writer = distributed.is_writer() if writer is None else writer
        self.lock, self.outputs, self.epochs_done, error = None, [], 0, None
        try:
            if self.writer:
                check_writable_folder(folder)
                self.lock = Lock(folder, say)
                self._open(mode, epochs, hint)
        except BaseException as e:  # every process must learn that process 0 failed
            error = e
        self._agree(error)
        if error is not None:
            self.close()
            raise error
        if self.writer:
            _OPENED.append(self)

    def _agree(self, error) -> None:
        """In a multi-process run, process 0 alone reads and writes the folder: the others learn
        from it whether the folder could be opened and how many epochs it holds."""
        if distributed.process_count() == 1:
            return
        status = distributed.from_writer({"ok": error is None, "epochs_done": self.epochs_done})
        self.epochs_done = status["epochs_done"]
        if not status["ok"] and error is None:
            raise RunError(f"process 0 could not open the run folder {self.folder} (see its message)")

    def _open(self, mode: str, epochs: int | None, hint: str) -> None:
        manifest = self._manifest()
        if manifest is None and os.path.exists(self.path(CHECKPOINT)):
            manifest = {"format": "older", "identity": {}}
        if manifest is not None and mode == "overwrite":
            self._remove_outputs(manifest)
            manifest = None
        if manifest is None:
            if mode == "resume":
                raise RunError(f"no run to resume in {self.folder}: it holds no {MANIFEST}")
            self._write_manifest()
            return
        if manifest.get("format") != FORMAT:
            raise RunError(
                f"{self.folder} holds a run written by another version of jaxtrainer; "
                f"use {hint} to start over, or choose another folder"
            )
        diffs = differences(manifest.get("identity", {}), self.identity)
        if diffs:
            raise RunError(
                f"{self.folder} holds another run; refusing to continue it with a different "
                f"configuration ({'; '.join(diffs)}). Run the command that made it to continue it, "
                f"use {hint} to start over, or choose another folder"
            )
        self.outputs = list(manifest.get("outputs", []))
        self._remove_stale_temporaries()
        if os.path.exists(self.path(CHECKPOINT)):  # the checkpoint, written first, says how far the run got
            self.epochs_done, identity = checkpoint_header(self.path(CHECKPOINT))
            if differences(identity, self.identity):
                raise RunError(
                    f"{self.path(CHECKPOINT)} belongs to another run than {self.path(MANIFEST)}; "
                    f"use {hint} to start over"
                )
        if epochs is not None and epochs < self.epochs_done:
            raise RunError(
                f"{self.folder} already holds {self.epochs_done} epochs of this run and {epochs} were "
                f"asked: ask {self.epochs_done} or more to continue it, or use {hint} to start over"
            )

    def path(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts)

    def _manifest(self) -> dict | None:
        path = self.path(MANIFEST)
        if not os.path.exists(path):
            return None
        try:
            manifest = read_json(path)
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
            return manifest
        except (OSError, ValueError) as e:
            raise RunError(
                f"{path} is not a readable run manifest ({e}); use --overwrite to start over"
            ) from None

    def _write_manifest(self) -> None:
        if self.writer:
            write_json(
                self.path(MANIFEST), {"format": FORMAT, "identity": self.identity, "outputs": self.outputs}
            )

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of writers that were killed mid-write (their pid no longer runs)."""
        if not self.writer:
            return
        for name in os.listdir(self.folder):
            m = re.fullmatch(r"\..+\.(\d+)\.[0-9a-f]{8}\.tmp", name)
            if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    os.remove(self.path(name))

    def _remove_outputs(self, manifest: dict) -> None:
        """Start over: remove what the old run wrote (its listed outputs, checkpoint, manifest);
        anything else in the folder is not ours and stays."""
        if not self.writer:
            return
        for rel in [*manifest.get("outputs", []), CHECKPOINT, MANIFEST]:
            with contextlib.suppress(OSError):
                os.remove(self.path(rel))
        self.say(f"{self.folder}: the previous run's files were removed (--overwrite)")

    # -- writing -----------------------------------------------------------------------------
    def output(self, rel: str) -> str:
        """The path of an output file `rel` (made, and recorded as this run's)."""
        path = self.path(rel)
        if self.writer:
            os.makedirs(os.path.dirname(path), exist_ok=True)
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
        return write_text(self.output(rel), text) if self.writer else self.path(rel)

    def write_json(self, rel: str, obj) -> str:
        return write_json(self.output(rel), obj) if self.writer else self.path(rel)

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

        atomic_write(self.output(os.path.join(rel, "logs.csv")), rows)
        return paths

    # -- the checkpoint --------------------------------------------------------------------------
    def restore(self, template) -> Tuple[Any, Any]:
        """(tree, logs) of the last finished epoch, or (template, None) for a new run. In a
        multi-process run process 0 reads the checkpoint and sends it to the others."""
        path = self.path(CHECKPOINT)
        tree, logs = template, None
        if self.writer and os.path.exists(path):
            tree, epoch, logs, _ = load_checkpoint(path, template)
            self.say(f"resuming after epoch {epoch} from {path}")
        if distributed.process_count() > 1:
            logs = distributed.from_writer(logs)
            if logs is not None:
                tree = distributed.broadcast(tree)
        return tree, logs

    def checkpoint(self, tree, epoch: int, logs) -> None:
        """The state after `epoch` and the logs so far, then the manifest that points to them."""
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

    def __exit__(self, exc_type, *exc) -> None:
        self.close()
        if exc_type is None and self in _OPENED:  # only interrupted runs are reported
            _OPENED.remove(self)


_OPENED: List[Run] = []  # the runs open (or left by an exception) in this process


def saved_epochs() -> List[Tuple[str, int]]:
    """(folder, epochs saved) of the runs an interrupt cut short: what it leaves on disk."""
    return [(run.folder, run.epochs_done) for run in _OPENED]


def saved_epochs_reset() -> None:
    _OPENED.clear()
