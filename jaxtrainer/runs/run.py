"""`Run`: a run folder owned by this process, the only writer of its files. No file is opened through
a link: read with O_NOFOLLOW, written by renaming over the name; a linked folder on the way to a file
is refused, and removing an old run removes links, never what they point to."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np

from .. import distributed, files
from . import manifest, resume
from .checkpoint import load_checkpoint, read_header, read_payload, save_checkpoint
from .lock import Lock
from .manifest import CHECKPOINT, MANIFEST, RunError, plain, read_json

log = logging.getLogger(__name__)


def check_writable_folder(folder: str, what: str = "output folder") -> str:
    """`files.check_writable_folder` by process 0 only: in a multi-process run the others never write."""
    return files.check_writable_folder(folder, what) if distributed.is_writer() else folder


def epochs_on_disk(folder: str) -> int:
    """The epochs saved in `folder`'s checkpoint (0 when it holds none or it is unreadable)."""
    try:
        return read_header(os.path.join(folder, CHECKPOINT))[0]
    except RunError:
        return 0


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
    """A run folder owned by this process, opened under the one resume rule (`resume.py`).

    Args:
        folder: the run folder, made if missing.
        identity: what makes two runs the same run (configuration, data; never the epoch count).
        mode: one of `resume.MODES`.
        epochs: the epochs asked (None: not checked); `epochs_done` is what the folder holds.
        writer: reads, writes and locks the folder (default: process 0, which tells the others).
        hint: how the caller asks to start over (`--overwrite`, `overwrite=True`).
    """

    def __init__(self, folder, identity, *, mode="continue", epochs=None, writer=None, hint="--overwrite"):
        self.folder, self.identity, self.hint = folder, plain(identity), hint
        self.writer = distributed.is_writer() if writer is None else writer
        self.lock, self.outputs, self.epochs_done, error = None, [], 0, None
        self._seconds, self._clock, self._logs_json = 0.0, time.perf_counter(), {}
        try:
            if self.writer:
                check_writable_folder(folder)
                self.lock = Lock(folder)
                self._open(mode, epochs)
        except BaseException as e:  # every process must learn that process 0 failed
            error = e
        if distributed.process_count() > 1:  # the others learn from process 0 if it opened, its epochs, time
            mine = {"ok": error is None, "epochs_done": self.epochs_done, "seconds": self._seconds}
            status = distributed.from_writer(mine)
            self.epochs_done, self._seconds = status["epochs_done"], status["seconds"]
            if not status["ok"] and error is None:
                error = RunError(f"process 0 could not open the run folder {self.folder} (see its message)")
        if error is not None:
            self.close()
            raise error
        if self.writer:
            for sub in {os.path.dirname(rel) for rel in self.outputs} | {""}:
                files.remove_stale_temporaries(self.path(sub))
        for folders in _OPENED:
            folders.append(folder)

    def _open(self, mode: str, epochs: int | None) -> None:
        checkpoint, payload = None, None
        if os.path.lexists(self.path(CHECKPOINT)):
            try:
                payload = read_payload(self.path(CHECKPOINT), hint=None)
                checkpoint = (payload["epoch"], payload["identity"])
            except RunError as e:
                checkpoint = str(e)
        found = manifest.read(self.path(MANIFEST))
        foreign = [name for name in os.listdir(self.folder) if not name.startswith(".")]
        plan = resume.plan(found, checkpoint, self.identity, mode, epochs, foreign, self.hint, self.folder)
        if plan.remove is not None:
            self._remove_outputs(plan.remove)
        self.outputs, self.epochs_done = list(plan.outputs), plan.epochs_done
        for rel in self.outputs:  # refused now, before anything is computed
            self._real_folders(rel)
        if payload is not None and plan.epochs_done:
            self._seconds, self._logs_json = payload["seconds"], payload["logs_json"]
        self._write_manifest()

    def path(self, *parts: str) -> str:
        """`parts` under the run folder; nothing is made or recorded (`output` does both)."""
        return os.path.join(self.folder, *parts)

    def _link_in(self, rel: str) -> str | None:
        """The first of `rel`'s folders (or `rel` itself) that is a link."""
        parts = [p for p in os.path.normpath(rel).split(os.sep) if p not in ("", ".")]
        for i in range(1, len(parts) + 1):
            if os.path.islink(self.path(*parts[:i])):
                return os.path.join(*parts[:i])
        return None

    def _real_folders(self, rel: str) -> None:
        """Refuses a link among the output `rel`'s folders: writing there would write outside."""
        if (link := self._link_in(os.path.dirname(rel))) is not None:
            raise RunError(
                f"{self.path(link)} is a symbolic link; jaxtrainer writes only into real folders "
                f"inside its run folder: remove the link, or use {self.hint} to start over"
            )

    def _write_manifest(self) -> None:
        record = {"format": manifest.FORMAT, "identity": self.identity, "epochs_done": self.epochs_done}
        files.write_json(self.path(MANIFEST), {**record, "outputs": self.outputs})  # by the writer only

    def _remove_outputs(self, listed: Sequence[str]) -> None:
        """Starts over: removes the old run's outputs, checkpoint, manifest and the folders left empty
        (a link, never what it points to); anything else in the folder is not ours and stays."""
        for rel in [*listed, CHECKPOINT, MANIFEST]:
            with contextlib.suppress(OSError):
                os.remove(self.path(self._link_in(rel) or rel))
        parts = [os.path.normpath(rel).split(os.sep) for rel in listed]
        subs = {os.path.join(*p[:i]) for p in parts for i in range(1, len(p))}
        for sub in sorted(subs, key=len, reverse=True):  # the deepest first; only those left empty
            if self._link_in(sub) is None:
                files.remove_stale_temporaries(self.path(sub))
                with contextlib.suppress(OSError):
                    os.rmdir(self.path(sub))
        log.info(f"{self.folder}: the previous run's files were removed ({self.hint})")

    def output(self, rel: str) -> str:
        """The path of an output file `rel` (its folders made, and recorded as this run's)."""
        path = self.path(rel)
        if self.writer:
            self._real_folders(rel)
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
        """`text` to the output `rel`, atomically, by the writer only; its path on every process."""
        return files.write_text(self.output(rel), text) if self.writer else self.path(rel)

    def write_json(self, rel: str, obj) -> str:
        """As `write_text`, `obj` as indented JSON."""
        return files.write_json(self.output(rel), obj) if self.writer else self.path(rel)

    def write_npz(self, rel: str, arrays: Dict[str, Any]) -> str:
        """As `write_text`, `arrays` as one .npz file."""
        write = lambda f: np.savez(f, **arrays)
        return files.atomic_write(self.output(rel), write, binary=True) if self.writer else self.path(rel)

    def write_logs(self, rel: str, logs: dict, meta: dict, epochs: int) -> Dict[str, str]:
        """`rel`/logs.json ({"config": meta with "epochs", "logs"}) and `rel`/logs.csv (one row per
        epoch); the next checkpoint holds the same logs.json, the truth it is rebuilt from."""
        paths = {"json": self.path(rel, "logs.json"), "csv": self.path(rel, "logs.csv")}
        if not self.writer:
            return paths
        self._logs_json[rel] = plain({"config": {**meta, "epochs": epochs}, "logs": logs})
        self.write_json(os.path.join(rel, "logs.json"), self._logs_json[rel])
        rows = enumerate(zip(*logs.values()))
        lines = [",".join(["epoch", *logs]), *(",".join([str(e), *map(repr, v)]) for e, v in rows)]
        files.write_text(self.output(os.path.join(rel, "logs.csv")), "\n".join(lines) + "\n")
        return paths

    def finished_logs(self, rels: Sequence[str]) -> List[dict]:
        """Each member folder's logs.json as the checkpoint holds it ([] but on the writer); one that
        disagrees (edited, deleted, a link) is rewritten from the checkpoint, with one warning."""
        if not self.writer:
            return []
        if missing := sorted(set(rels) - set(self._logs_json)):
            raise RunError(
                f"{self.path(CHECKPOINT)} lacks the logs of {missing}; use {self.hint} to start over"
            )
        rewritten = []
        for rel in rels:
            try:
                on_disk = None if self._link_in(rel) else read_json(self.path(rel, "logs.json"))
            except RunError:
                on_disk = None
            record = self._logs_json[rel]  # compared as JSON: NaN equals NaN, as written
            if json.dumps(on_disk, sort_keys=True) != json.dumps(record, sort_keys=True):
                self.write_logs(rel, record["logs"], record["config"], record["config"]["epochs"])
                rewritten.append(self.path(rel, "logs.json"))
        if rewritten:
            log.warning(f"{', '.join(rewritten)}: not what the checkpoint holds; rewritten from {CHECKPOINT}")
        return [self._logs_json[rel] for rel in rels]

    def elapsed(self) -> float:
        """Training seconds of this run so far: those its checkpoint holds and this process's."""
        return self._seconds + time.perf_counter() - self._clock

    def restore(self, template) -> Tuple[Any, Any]:
        """(tree, logs) of the last finished epoch, or (template, None) for a new run (read by
        process 0, sent to the others)."""
        tree, logs = template, None
        if self.writer and self.epochs_done:
            path = self.path(CHECKPOINT)
            tree, epoch, logs, _ = load_checkpoint(path, template, self.hint)
            log.info(f"resuming after epoch {epoch} from {path}")
        if distributed.process_count() > 1:
            logs = distributed.from_writer(logs)
            if logs is not None:
                tree = distributed.broadcast(tree)
        return tree, logs

    def checkpoint(self, tree, epoch: int, logs) -> None:
        """The state after `epoch`, the logs and every logs.json, then the manifest recording them."""
        if not self.writer:
            return
        header = dict(epoch=epoch, identity=self.identity, logs=logs, seconds=self.elapsed())
        save_checkpoint(self.path(CHECKPOINT), tree, {**header, "logs_json": self._logs_json})
        self.epochs_done = epoch
        self._write_manifest()

    def close(self) -> None:
        """Releases the folder's lock (the files stay); a second call does nothing."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
