"""What the test_faults_* files share: the commands they fault, what a fault must leave on disk
(no temporary file, no lock, a checkpoint that loads whole), and a write that fails part-way.
Their reference run (never interrupted) is conftest.py's `reference` fixture."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from jaxtrainer import files, runs
from jaxtrainer.cli import main
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.spec import Spec
from jaxtrainer.sweeps import init_sweep

HIDDEN = NetworkConfiguration(dense_hiddens=(8,))


TRAIN = ["train", "--hidden", "8", "--no-progress"]


SWEEP_LRS = (0.01, 0.001)


SWEEP = ["sweep", "--hidden", "8", "--lr", *map(str, SWEEP_LRS), "--no-progress"]


LONG = 30  # epochs of a run signalled from outside: long enough to be caught mid-training


SHORT = 3  # epochs of a run faulted from inside


HOST = socket.gethostname()


def command(*argv) -> list:
    return [sys.executable, "-m", "jaxtrainer", *map(str, argv)]


def train_argv(out, epochs=SHORT, *extra) -> list:
    return [*TRAIN, "--epochs", str(epochs), "--out", str(out), *map(str, extra)]


def build_rotated_argv(source, out) -> list:
    """`data build-rotated` of a small set (12 training, 6 test images) from the IDX files in `source`."""
    return [
        "data",
        "build-rotated",
        "--source",
        source,
        "--out",
        out,
        "--no-progress",
        "--n-train",
        12,
        "--n-test",
        6,
    ]


def homework_argv(dataset, out) -> list:
    return ["homework", "--dataset", str(dataset), "--epochs", "2", "--out", str(out), "--no-progress"]


def leftovers(folder: Path) -> list:
    """Temporary files and locks left anywhere under `folder`."""
    return sorted(str(p) for p in folder.rglob(".*") if p.name.endswith(".tmp") or p.name == runs.LOCK)


def train_template():
    """A train run's checkpointed state: a sweep of one member."""
    return init_sweep(Spec("mlp", HIDDEN), (1, 28, 28))[1]


def saved_epochs(folder: Path, template=None) -> int:
    """The epochs the checkpoint holds, after checking that it loads whole (0: none saved) and that
    nothing is left behind."""
    assert leftovers(folder) == [], leftovers(folder)
    path = folder / runs.CHECKPOINT
    if not path.exists():
        return 0
    state, epoch, logs, _ = runs.load_checkpoint(str(path), template or train_template())
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(state))
    members = logs if isinstance(logs, list) else [logs]
    assert all(len(values) == epoch + 1 for member in members for values in member.values())
    return epoch


def saved_message(folder, n: int) -> str:
    return (
        f"jaxtrainer: interrupted; the last finished epoch is saved in {folder} "
        f"({n} epoch{'s' * (n != 1)}): run the same command again to continue"
    )


def nothing_saved_messages(folder) -> set:
    return {
        "jaxtrainer: interrupted before the command started; nothing was written",
        "jaxtrainer: interrupted before anything was written",
        f"jaxtrainer: interrupted before any epoch was saved in {folder}; nothing to continue from",
    }


def csv_bytes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("logs.csv"))}


def contents(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_main(argv, capfd):
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def refused(argv, capfd, *fragments) -> str:
    """The command exits 2 with one `jaxtrainer: error:` line holding every fragment."""
    code, _, err = run_main(argv, capfd)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxtrainer: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class FillsUp:
    """A file that takes `room` bytes, then fails as a full disk does (with the bytes that fit
    written)."""

    def __init__(self, f, room: int, fault):
        self._f, self._room, self._fault = f, room, fault

    def write(self, data):
        if len(data) > self._room:
            self._f.write(data[: self._room])
            self._room = 0
            self._fault()
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def fault_in_write(monkeypatch, when, fault, room=64):
    """The first atomic write for which `when(path)` holds runs `fault()` part-way, after `room`
    bytes (every writer goes through files.atomic_write)."""
    real = files.atomic_write
    fired = []

    def atomic_write(path, write, binary=False):
        if not fired and when(path):
            fired.append(path)
            return real(path, lambda f: write(FillsUp(f, room, fault)), binary)
        return real(path, write, binary)

    monkeypatch.setattr(files, "atomic_write", atomic_write)
    return fired


def disk_full():
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def named(name, epochs_on_disk=None, folder=None):
    """A write of a file called `name`, optionally only once the checkpoint holds `epochs_on_disk`."""
    return lambda path: (
        os.path.basename(path) == name
        and (epochs_on_disk is None or runs.epochs_on_disk(str(folder)) == epochs_on_disk)
    )


WRITES = {  # a write interrupted or failing part-way: (file name, epochs on disk when it starts, signal)
    "the checkpoint of epoch 2": (runs.CHECKPOINT, 1, signal.SIGINT),
    "the manifest after the checkpoint of epoch 2": (runs.MANIFEST, 2, signal.SIGTERM),
    "logs.json of epoch 2": ("logs.json", 1, signal.SIGINT),
    "logs.csv of epoch 2": ("logs.csv", 1, signal.SIGTERM),
    "the figure after the last epoch": ("curves.png", SHORT, signal.SIGINT),
}
