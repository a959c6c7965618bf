"""Nothing lost, ever: faults injected into the command line and the facade.

Signals at several moments (before the first compile, during it, mid-training, during a write),
SIGKILL of a sweep and of the homework, a disk that fills up part-way through a write, read-only
folders, two writers on one folder, corrupted checkpoints, manifests and data. After each fault
the disk is checked: no temporary file, no lock left, the previous checkpoint loads whole, and the
same command then finishes with the logs of a run that was never interrupted (logs.csv equal
byte for byte).

The faults that need a process of their own (signals from outside, SIGKILL, a closed stdout, a
missing accelerator) start together in the background, while the uninterrupted reference runs
train in this process; the rest run in this process, with `os._exit` (the interrupt's way out)
turned into an exception.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from conftest import compiled_programs, write_png_folder
from test_datasets import make_idx_set

from jaxtrainer import data, files, models, presets, runs, state_dict, train
from jaxtrainer.cli import main
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.spec import Spec
from jaxtrainer.sweeps import init_sweep
from torch_compat import Trainer

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


def homework_argv(dataset, out) -> list:
    return ["homework", "--dataset", str(dataset), "--epochs", "2", "--out", str(out), "--no-progress"]


# -- what is on disk ---------------------------------------------------------------------------------
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
    state, epoch, saved, _ = runs.load_checkpoint(str(path), template or train_template())
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(state))
    members = saved["logs"]
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


# -- the processes of their own, in the background ---------------------------------------------------
def handlers_installed(proc) -> bool:
    """jaxtrainer's handlers are in place once SIGTERM is caught (Python leaves it at its default)."""
    with open(f"/proc/{proc.pid}/status") as f:
        caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def wait_until(ready, proc, what: str, timeout=240) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"exited before {what}: {proc.communicate()}"
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.005)


def signalled(out: Path, sig, moment: str, delay: float):
    proc = subprocess.Popen(
        command(*train_argv(out, LONG)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    ready = {
        "start": lambda: handlers_installed(proc),
        "compile": lambda: (out / runs.LOCK).exists(),
        "training": lambda: (out / runs.CHECKPOINT).exists(),
    }[moment]
    wait_until(ready, proc, moment)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=240)
    return SimpleNamespace(returncode=proc.returncode, stderr=err, out=out)


def killed(argv, out: Path, marker: Path):
    proc = subprocess.Popen(command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(marker.exists, proc, str(marker))
    proc.kill()
    proc.communicate()
    return SimpleNamespace(returncode=proc.returncode, pid=proc.pid, out=out)


def stdout_closed_after_the_first_line(out: Path):
    """`jaxtrainer train ... | head -n1`: the first line ("taking over a stale lock") is read, then
    the pipe is closed while the run trains on."""
    out.mkdir()
    (out / runs.LOCK).write_text(json.dumps({"pid": dead_pid(), "host": HOST}))
    proc = subprocess.Popen(
        command(*train_argv(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=240)
    return SimpleNamespace(returncode=proc.returncode, first=first, stderr=err, out=out)


def without_backend(out: Path):
    platform = "tpu" if jax.default_backend() == "gpu" else "gpu"  # one this machine lacks
    env = {**os.environ, "JAX_PLATFORMS": platform}
    done = subprocess.run(command(*train_argv(out)), capture_output=True, text=True, env=env, timeout=240)
    return SimpleNamespace(returncode=done.returncode, stderr=done.stderr, platform=platform, out=out)


SIGNALS = {  # name: (signal, moment, delay after it)
    "SIGINT before the first compile": (signal.SIGINT, "start", 0.0),
    "SIGTERM before the first compile": (signal.SIGTERM, "start", 0.0),
    "SIGINT as the first compile starts": (signal.SIGINT, "compile", 0.0),
    "SIGTERM during the first compile": (signal.SIGTERM, "compile", 0.05),
    "SIGINT later in the first compile": (signal.SIGINT, "compile", 0.3),
    "SIGINT mid-training": (signal.SIGINT, "training", 0.0),
    "SIGTERM mid-training": (signal.SIGTERM, "training", 0.0),
}


@pytest.fixture(scope="module")
def background(tmp_path_factory):
    """Every fault that needs a process of its own, started together; meanwhile the reference runs
    (never interrupted) train here. Returns the references and one future per fault."""
    root = tmp_path_factory.mktemp("background")
    png = write_png_folder(root / "png")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(SIGNALS) + 4)
    futures = {
        name: pool.submit(signalled, root / f"signal{i}", sig, moment, delay)
        for i, (name, (sig, moment, delay)) in enumerate(SIGNALS.items())
    }
    futures["sweep"] = pool.submit(
        killed,
        [*SWEEP, "--epochs", LONG, "--out", root / "sweep"],
        root / "sweep",
        root / "sweep" / runs.CHECKPOINT,
    )
    futures["homework"] = pool.submit(
        killed,
        homework_argv(png, root / "homework"),
        root / "homework",
        root / "homework" / "mlp" / runs.CHECKPOINT,
    )
    futures["stdout closed"] = pool.submit(stdout_closed_after_the_first_line, root / "piped")
    futures["no backend"] = pool.submit(without_backend, root / "nobackend")
    reference = SimpleNamespace(
        train=root / "reference_train",
        sweep=root / "reference_sweep",
        homework=root / "reference_homework",
        png=png,
    )
    for argv in (
        train_argv(reference.train, LONG),
        [*SWEEP, "--epochs", LONG, "--out", reference.sweep],
        homework_argv(png, reference.homework),
    ):
        assert main([str(a) for a in argv]) == 0
    yield SimpleNamespace(reference=reference, futures=futures)
    pool.shutdown(wait=True)


@pytest.mark.parametrize("name", SIGNALS)
def test_an_interrupt_exits_130_says_what_is_saved_and_the_same_command_finishes(name, background, capfd):
    result = background.futures[name].result()
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "Fatal Python error" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    n = saved_epochs(result.out)
    if n:
        assert last == saved_message(result.out, n)
    else:
        assert last in nothing_saved_messages(result.out)
    moment = SIGNALS[name][1]
    if moment == "start":
        assert n == 0
    if moment == "training":
        assert 1 <= n < LONG, n
    code, out, _ = run_main(train_argv(result.out, LONG), capfd)
    assert code == 0
    assert (f"resuming after epoch {n} from" in out) == (n > 0)
    assert csv_bytes(result.out) == csv_bytes(background.reference.train)
    assert leftovers(result.out) == []


def test_sigkill_mid_sweep_then_the_same_command_gives_every_members_uninterrupted_logs(background, capfd):
    result = background.futures["sweep"].result()
    assert result.returncode == -signal.SIGKILL
    members = [(lr, presets.SEED) for lr in SWEEP_LRS]
    template = init_sweep(Spec("mlp", HIDDEN, members=members), (1, 28, 28))[1]
    _, epoch, saved, _ = runs.load_checkpoint(str(result.out / runs.CHECKPOINT), template)
    logs = saved["logs"]
    assert 1 <= epoch < LONG and [len(m["test_mae"]) for m in logs] == [epoch + 1] * 2
    code, out, _ = run_main([*SWEEP, "--epochs", LONG, "--out", result.out], capfd)
    assert code == 0
    assert f"taking over a stale lock (pid {result.pid}, no longer running)" in out
    assert csv_bytes(result.out) == csv_bytes(background.reference.sweep)
    assert len(csv_bytes(result.out)) == 2
    assert leftovers(result.out) == []


def test_sigkill_mid_homework_then_the_same_command_gives_every_runs_uninterrupted_logs(background, capfd):
    result = background.futures["homework"].result()
    assert result.returncode == -signal.SIGKILL
    assert 1 <= runs.read_header(str(result.out / "mlp" / runs.CHECKPOINT))[0] <= 2
    code, _, _ = run_main(homework_argv(background.reference.png, result.out), capfd)
    assert code == 0
    resumed, reference = csv_bytes(result.out), csv_bytes(background.reference.homework)
    assert len(reference) == 9 and resumed == reference
    assert leftovers(result.out) == []


def test_a_closed_stdout_drops_the_output_but_the_run_writes_its_files(background):
    result = background.futures["stdout closed"].result()
    assert result.first.startswith(f"{result.out}: taking over a stale lock (pid ")
    assert result.returncode == 0 and "Traceback" not in result.stderr and result.stderr == "", result.stderr
    for name in ("logs.json", "logs.csv", "curves.png", runs.CHECKPOINT):
        assert (result.out / name).is_file()
    assert saved_epochs(result.out) == SHORT
    logs = json.loads((result.out / "logs.json").read_text())["logs"]
    reference = json.loads((background.reference.train / "logs.json").read_text())["logs"]
    assert logs == {k: v[: SHORT + 1] for k, v in reference.items()}


def test_a_missing_accelerator_is_one_line_before_anything_is_written(background):
    result = background.futures["no backend"].result()
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"jaxtrainer: error: JAX cannot start a backend with JAX_PLATFORMS='{result.platform}': "
    )
    assert result.stderr.count("\n") == 1 and not result.out.exists()


def test_a_closed_terminal_sighup_is_an_interrupt_that_keeps_the_checkpoint_and_releases_the_lock(
    tmp_path, capfd
):
    result = signalled(tmp_path / "run", signal.SIGHUP, "training", 0.0)
    assert result.returncode == 130, result.stderr
    n = saved_epochs(result.out)  # whole, with no lock and no temporary file left
    assert 1 <= n < LONG
    assert result.stderr.strip().splitlines()[-1] == saved_message(result.out, n)
    code, out, _ = run_main(train_argv(result.out, LONG), capfd)
    assert code == 0 and f"resuming after epoch {n} from" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_says_what_it_built_and_removed(sig, tmp_path, monkeypatch, capfd):
    from jaxtrainer.data import build

    make_idx_set(tmp_path / "src")
    real, written = build._write_png, []

    def then_interrupted(path, pixels):
        real(path, pixels)
        written.append(path)
        if len(written) == 7:
            signal.raise_signal(sig)

    monkeypatch.setattr(build, "_write_png", then_interrupted)
    out = tmp_path / "out"
    code, _, err = run_main(
        [
            "data",
            "build-rotated",
            "--source",
            tmp_path / "src",
            "--out",
            out,
            "--no-progress",
            "--n-train",
            12,
            "--n-test",
            6,
        ],
        capfd,
    )
    assert code == 130 and len(written) == 7
    assert err.strip().splitlines() == [
        f"jaxtrainer: interrupted; 7 of 18 images were built, then removed with the build's temporary "
        f"folder; {out} was not created: run the same command again to build it"
    ]
    assert sorted(os.listdir(tmp_path)) == ["src"]


# every spelling of a backend this machine lacks: a platform JAX knows, an alias, a list, a wrong case
LACKING = ["tpu", "rocm", "METAL", "Cuda", "gpu,cpu", "cuda,tpu"]
if jax.default_backend() == "cpu":
    LACKING += ["cuda", "gpu"]


@pytest.mark.parametrize("platforms", LACKING)
def test_any_jax_platforms_naming_a_missing_backend_is_the_one_line(platforms, tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": platforms}
    out = tmp_path / "run"
    done = subprocess.run(command(*train_argv(out)), capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"jaxtrainer: error: JAX cannot start a backend with JAX_PLATFORMS='{platforms}': "
    )
    assert done.stderr.count("\n") == 1 and not out.exists()


# -- interrupts and full disks inside a write, in this process -----------------------------------------
class Exited(BaseException):
    """os._exit, as the interrupt calls it, turned into an exception this process survives."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


@pytest.fixture
def exits(monkeypatch):
    def leave(code):
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", leave)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished SHORT-epoch run, never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_argv(out)) == 0
    return out


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


@pytest.mark.parametrize("write", WRITES)
def test_an_interrupt_inside_a_write_leaves_every_file_whole(
    write, exits, monkeypatch, reference, tmp_path, capfd
):
    out = tmp_path / "run"
    name, before, sig = WRITES[write]
    fired = fault_in_write(monkeypatch, named(name, before, out), lambda: signal.raise_signal(sig))
    with pytest.raises(Exited) as exited:
        main(train_argv(out))
    assert exited.value.code == 130 and fired
    _, err = capfd.readouterr()
    n = saved_epochs(out)
    assert n == before  # the write in progress is lost, nothing before it
    assert err.strip().splitlines()[-1] == saved_message(out, n)
    monkeypatch.undo()
    code, _, _ = run_main(train_argv(out), capfd)
    assert code == 0 and csv_bytes(out) == csv_bytes(reference) and leftovers(out) == []


@pytest.mark.parametrize("write", WRITES)
def test_a_full_disk_is_one_line_and_keeps_the_previous_version(
    write, monkeypatch, reference, tmp_path, capfd
):
    out = tmp_path / "run"
    name, before, _ = WRITES[write]
    fired = fault_in_write(monkeypatch, named(name, before, out), disk_full)
    path = out / name
    refused(
        train_argv(out),
        capfd,
        f"could not write {path}: No space left on device; the previous version, if any, is kept",
    )
    assert fired == [str(path)]
    assert saved_epochs(out) == before
    monkeypatch.undo()
    code, _, _ = run_main(train_argv(out), capfd)
    assert code == 0 and csv_bytes(out) == csv_bytes(reference) and leftovers(out) == []


def test_a_full_disk_during_the_export_keeps_the_run_and_the_same_command_exports(
    monkeypatch, reference, tmp_path, capfd
):
    out, export = tmp_path / "run", tmp_path / "w.npz"
    fault_in_write(monkeypatch, named("w.npz"), disk_full)
    refused(train_argv(out, SHORT, "--export", export), capfd, f"could not write {export}: No space left")
    assert not export.exists() and list(tmp_path.glob(".*.tmp")) == [] and saved_epochs(out) == SHORT
    monkeypatch.undo()
    code, out_text, _ = run_main(train_argv(out, SHORT, "--export", export), capfd)
    assert code == 0 and "resuming after epoch 3" in out_text
    assert set(state_dict.import_state_dict(str(export))) == {"1.weight", "1.bias", "3.weight", "3.bias"}


# -- read-only folders, files in the way, unknown formats: refused before any data is read ------------
@pytest.fixture
def nothing_read(monkeypatch):
    """Refusals come before the data is read (so before anything compiles)."""
    before = compiled_programs()

    def load(*args, **kwargs):
        raise AssertionError("the data was read before the refusal")

    monkeypatch.setattr(data, "load", load)
    yield
    assert compiled_programs() == before


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody can write to. Permissions do not stop root, so when they do not, sysfs,
    where even root cannot create a file."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder if not os.access(folder, os.W_OK) else Path("/sys/kernel")
    folder.chmod(0o755)


@pytest.mark.parametrize(
    "where,message",
    [
        ("read-only", "is not writable"),
        ("under read-only", "is not writable"),
        ("a file", "exists and is not a folder; choose another path"),
        ("under a file", "is not writable: Not a directory"),
    ],
)
@pytest.mark.parametrize("cmd", ["train", "sweep", "homework"])
def test_an_unwritable_out_is_refused_before_anything_is_read(
    cmd, where, message, read_only, nothing_read, tmp_path, capfd
):
    (tmp_path / "file").write_text("mine")
    out = {
        "read-only": read_only,
        "under read-only": read_only / "run",
        "a file": tmp_path / "file",
        "under a file": tmp_path / "file" / "run",
    }[where]
    argv = {"train": TRAIN, "sweep": SWEEP, "homework": ["homework", "--no-progress"]}[cmd]
    line = refused([*argv, "--out", out], capfd, str(out), message)
    assert len(line) < 300
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize(
    "export,message",
    [
        ("x.h5", "the extension must be one of ('.pt', '.npz', '.safetensors')"),
        ("folder.npz", "it is a folder"),
        ("read-only", "is not writable"),
    ],
)
def test_an_impossible_export_is_refused_before_anything_is_read(
    export, message, read_only, nothing_read, tmp_path, capfd
):
    (tmp_path / "folder.npz").mkdir()
    path = read_only / "w.npz" if export == "read-only" else tmp_path / export
    start = time.perf_counter()
    refused(train_argv(tmp_path / "run", SHORT, "--export", path), capfd, message)
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "run").exists()


# -- two writers on one folder, and runs that are not this run ----------------------------------------
def test_a_folder_in_use_is_refused_naming_its_owner_and_taken_over_once_it_died(reference, tmp_path, capfd):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from jaxtrainer import runs; runs.Lock(sys.argv[1]); print(1, flush=True); "
            "sys.stdin.read()",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "1\n"
    refused(train_argv(out), capfd, f"{out} is in use by pid {holder.pid} on {HOST}", "wait for it to finish")
    assert sorted(p.name for p in out.iterdir()) == [runs.LOCK]
    holder.communicate("")  # it ends without releasing: its lock file stays, stale
    code, printed, _ = run_main(train_argv(out), capfd)
    assert code == 0 and f"{out}: taking over a stale lock (pid {holder.pid}, no longer running)" in printed
    assert csv_bytes(out) == csv_bytes(reference) and leftovers(out) == []


@pytest.mark.parametrize("lock", ["a dead pid", "garbage", "empty"])
def test_a_stale_lock_is_taken_over(lock, reference, tmp_path, capfd):
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    content = {"a dead pid": json.dumps({"pid": pid, "host": HOST}), "garbage": "\x00{{", "empty": ""}[lock]
    (out / runs.LOCK).write_text(content)
    code, printed, _ = run_main(train_argv(out), capfd)
    assert code == 0
    assert (f"taking over a stale lock (pid {pid}, no longer running)" in printed) == (lock == "a dead pid")
    assert csv_bytes(out) == csv_bytes(reference) and leftovers(out) == []


def test_a_folder_open_in_this_process_is_refused(tmp_path, capfd):
    lock = runs.Lock(str(tmp_path))
    try:
        refused(train_argv(tmp_path), capfd, "is already open in this process")
    finally:
        lock.release()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["the lock file is created", "it is locked"])
def test_an_interrupt_while_the_lock_is_taken_leaves_no_lock_file(step, tmp_path, monkeypatch):
    """The signal lands between the lock file's creation (or its flock) and its registration for
    clean-up: it is held until the lock is registered, so the interrupt's clean-up removes it."""
    call = {"the lock file is created": "open", "it is locked": "flock"}[step]
    module = {"open": runs.os, "flock": runs.fcntl}[call]
    real = getattr(module, call)

    def then_interrupted(*args):
        result = real(*args)
        signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(module, call, then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs.Lock(str(tmp_path))
    monkeypatch.undo()
    runs.abandon()  # what the command line's interrupt does
    assert leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    assert main([*SWEEP, "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_train_into_a_sweeps_folder_is_refused_and_overwrite_replaces_it(
    finished_sweep, reference, tmp_path, capfd
):
    out = tmp_path / "run"
    shutil.copytree(finished_sweep, out)
    before = contents(out)
    refused(train_argv(out), capfd, f"{out} holds a 'sweep' run, not a 'train' one", "--overwrite")
    assert contents(out) == before
    code, printed, _ = run_main(train_argv(out, SHORT, "--overwrite"), capfd)
    assert code == 0 and f"{out}: the previous run's files were removed (--overwrite)" in printed
    assert sorted(contents(out)) == sorted(
        [runs.MANIFEST, runs.CHECKPOINT, "spec.json", "logs.json", "logs.csv", "curves.png"]
    )
    assert csv_bytes(out) == csv_bytes(reference)


def test_a_finished_run_is_never_replaced_by_another_configuration(reference, tmp_path, capfd):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = contents(out)
    refused(
        [*train_argv(out), "--lr", "0.01"],
        capfd,
        "refusing to continue it with a different configuration (members.lrs: saved [0.001], now [0.01])",
        "use --overwrite to start over",
    )
    refused(
        [*train_argv(out), "--seed", "7"],
        capfd,
        f"(members.seeds: saved [{presets.SEED}], now [7])",
    )
    assert contents(out) == before
    code, _, _ = run_main([*train_argv(out, 1), "--lr", "0.01", "--overwrite"], capfd)
    logs = json.loads((out / "logs.json").read_text())
    assert code == 0 and logs["config"]["lr"] == 0.01 and len(logs["logs"]["test_mae"]) == 2
    assert saved_epochs(out) == 1


@pytest.mark.parametrize("flags", [["--resume"], []], ids=["resume", "continue"])
def test_fewer_epochs_than_a_run_holds_are_refused(flags, reference, tmp_path, capfd):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    before = contents(out)
    refused(
        [*train_argv(out, 1), *flags],
        capfd,
        f"{out} already holds 3 epochs of this run and 1 were asked: ask 3 or more",
        "--overwrite",
    )
    assert contents(out) == before and json.loads((out / "logs.json").read_text())["config"]["epochs"] == 3


def test_files_that_are_no_run_are_never_written_over(tmp_path, capfd):
    (tmp_path / "logs.csv").write_text("mine")
    refused(
        train_argv(tmp_path), capfd, f"{tmp_path} holds files but no jaxtrainer run (logs.csv)", "--overwrite"
    )
    assert (tmp_path / "logs.csv").read_text() == "mine" and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--resume", "--overwrite"], "--resume and --overwrite contradict each other"),
        (["--resume"], "no run to resume in"),
    ],
)
def test_resume_flags_that_cannot_hold_are_refused(flags, message, tmp_path, capfd):
    refused([*train_argv(tmp_path / "run"), *flags], capfd, message)


# -- corrupted checkpoints, manifests and data ----------------------------------------------------------
def _rewrite_checkpoint(path: Path, header=None, leaves=None) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    if header is not None:
        arrays["header"] = np.array(json.dumps(header(json.loads(str(arrays["header"])))))
    if leaves is not None:
        arrays = leaves(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _without(key):
    return lambda header: {k: v for k, v in header.items() if k != key}


def _reshaped(arrays):
    arrays["leaf_0"] = np.zeros((3, 5), arrays["leaf_0"].dtype)
    return arrays


def _fewer(arrays):
    last = max((k for k in arrays if k.startswith("leaf_")), key=lambda k: int(k.removeprefix("leaf_")))
    return {k: v for k, v in arrays.items() if k != last}


CORRUPTIONS = {  # name: (file, what is done to it)
    "truncated checkpoint": (
        runs.CHECKPOINT,
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    ),
    "garbage checkpoint": (runs.CHECKPOINT, lambda p: p.write_bytes(b"\x00garbage" * 100)),
    "empty checkpoint": (runs.CHECKPOINT, lambda p: p.write_bytes(b"")),
    "checkpoint header without identity": (
        runs.CHECKPOINT,
        lambda p: _rewrite_checkpoint(p, _without("identity")),
    ),
    "checkpoint header without epoch": (runs.CHECKPOINT, lambda p: _rewrite_checkpoint(p, _without("epoch"))),
    "checkpoint header with a text epoch": (
        runs.CHECKPOINT,
        lambda p: _rewrite_checkpoint(p, lambda h: {**h, "epoch": "three"}),
    ),
    "checkpoint of other shapes": (runs.CHECKPOINT, lambda p: _rewrite_checkpoint(p, leaves=_reshaped)),
    "checkpoint with an array missing": (runs.CHECKPOINT, lambda p: _rewrite_checkpoint(p, leaves=_fewer)),
    "checkpoint of another run": (
        runs.CHECKPOINT,
        lambda p: _rewrite_checkpoint(p, lambda h: {**h, "identity": {**h["identity"], "lr": 0.5}}),
    ),
    "checkpoint missing": (runs.CHECKPOINT, lambda p: p.unlink()),
    "garbled manifest": (runs.MANIFEST, lambda p: p.write_text('{"format": 2, "identity": {')),
    "manifest not an object": (runs.MANIFEST, lambda p: p.write_text("[1, 2]")),
    "manifest with a text epoch count": (
        runs.MANIFEST,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "epochs_done": "3"})),
    ),
    "manifest without identity": (
        runs.MANIFEST,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "identity": None})),
    ),
    "manifest naming outputs outside the folder": (
        runs.MANIFEST,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "outputs": ["../precious"]})),
    ),
}


# also started over with --overwrite, which must spare what lies outside the folder
STARTED_OVER = ("truncated checkpoint", "garbled manifest", "manifest naming outputs outside the folder")


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupted_run_folder_is_one_line_naming_the_file_and_left_as_it_is(
    corruption, reference, tmp_path, capfd
):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (tmp_path / "precious").write_text("mine")
    name, corrupt = CORRUPTIONS[corruption]
    corrupt(out / name)
    before = contents(out)
    refused(train_argv(out), capfd, str(out / name), "use --overwrite to start over")
    assert contents(out) == before
    if corruption in STARTED_OVER:
        code, _, _ = run_main(train_argv(out, SHORT, "--overwrite"), capfd)
        assert code == 0 and csv_bytes(out) == csv_bytes(reference) and leftovers(out) == []
        assert (tmp_path / "precious").read_text() == "mine"


def test_a_corrupted_image_is_one_line_naming_it(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2)
    bad = png / "train" / sorted(os.listdir(png / "train"))[1]
    bad.write_bytes(b"\x89PNG garbage")
    refused(train_argv(tmp_path / "run", 1, "--dataset", png), capfd, str(bad))


def test_a_symlink_loop_in_a_data_folder_is_one_line_naming_it(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    os.symlink("9_2.png", png / "train" / "9_1.png")
    os.symlink("9_1.png", png / "train" / "9_2.png")
    refused(train_argv(tmp_path / "run", 1, "--dataset", png), capfd, str(png / "train" / "9_"))


def test_a_fifo_named_like_a_png_is_refused_by_name_and_never_blocks(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    fifo = png / "train" / "100_3.png"
    os.mkfifo(fifo)

    def writer_arrives():  # a load blocked on the FIFO is let go (it then reads no bytes)
        with contextlib.suppress(OSError):  # ENXIO: nobody has it open for reading
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    rescue = threading.Timer(20, writer_arrives)
    rescue.start()
    try:
        refused(
            train_argv(tmp_path / "run", 1, "--dataset", png),
            capfd,
            f"{fifo}: cannot be read (a FIFO (named pipe), not a regular file)",
        )
    finally:
        rescue.cancel()


def test_a_png_replaced_by_one_of_the_same_size_and_mtime_is_decoded_again(tmp_path):
    from PIL import Image

    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    target = png / "train" / sorted(os.listdir(png / "train"))[1]
    grey, white = tmp_path / "grey.png", tmp_path / "white.png"
    Image.fromarray(np.full((12, 12), 128, np.uint8)).save(grey)
    Image.fromarray(np.full((12, 12), 255, np.uint8)).save(white)
    assert grey.stat().st_size == white.stat().st_size  # the cache cannot tell them apart by size
    shutil.copy2(grey, target)  # cp -p: the content, and grey.png's mtime
    os.utime(white, ns=(grey.stat().st_atime_ns, grey.stat().st_mtime_ns))
    assert data.load(str(png)).X_train[1].max() == np.float32((128 / 255 - 0.5) / 0.5)
    assert (png / ".jaxtrainer-cache.npz").exists()
    shutil.copy2(white, target)  # same size, same mtime, other pixels
    assert data.load(str(png)).X_train[1].min() == 1.0


def test_a_data_folder_whose_name_is_not_utf8_trains_and_draws_its_figure(tmp_path, capfd):
    png = Path(os.fsdecode(bytes(tmp_path) + b"/rotated\xff"))
    write_png_folder(png, n_train=4, n_test=2, size=12)
    code, _, err = run_main(train_argv(tmp_path / "run", 1, "--dataset", png), capfd)
    assert code == 0 and err == "" and (tmp_path / "run" / "curves.png").stat().st_size > 0


# -- the facade's checkpoint folder ---------------------------------------------------------------------
def trainer(folder, **kwargs) -> Trainer:
    return Trainer("mlp", HIDDEN, dataset="digits", progress=False, checkpoint_dir=str(folder), **kwargs)


def test_the_facades_checkpoint_holds_every_calls_logs_and_resume_restores_them(tmp_path):
    first = trainer(tmp_path)
    first.train_loop(1)
    history = first.train_loop(2)
    assert len(history["test_mae"]) == 2 + 3
    epoch, logs, _ = runs.read_header(str(tmp_path / runs.CHECKPOINT))
    assert epoch == 3
    assert {k: logs["previous"][k] + logs["current"][k] for k in history} == history
    again = trainer(tmp_path)
    assert again.train_loop(2, resume=True) == history
    weights = lambda t: models.state_dict(t.network)  # noqa: E731
    assert all(np.array_equal(weights(first)[k], weights(again)[k]) for k in weights(first))
    with pytest.raises(ValueError, match=r"the checkpoint's call ran 2 epochs, 1 were asked"):
        trainer(tmp_path).train_loop(1, resume=True)


def test_another_trainer_on_a_used_checkpoint_folder_is_refused_without_resume_or_overwrite(tmp_path):
    trainer(tmp_path).train_loop(1)
    with pytest.raises(
        ValueError, match=r"holds a run of 1 epochs: pass resume=True to continue it or overwrite=True"
    ):
        trainer(tmp_path).train_loop(1)
    with pytest.raises(
        ValueError, match=r"different configuration \(lr: saved 0\.001, now 0\.01\).*overwrite=True"
    ):
        trainer(tmp_path, lr=0.01).train_loop(1, resume=True)
    fresh = trainer(tmp_path, lr=0.01)
    assert len(fresh.train_loop(1, overwrite=True)["test_mae"]) == 2
    assert runs.read_header(str(tmp_path / runs.CHECKPOINT))[2]["lr"] == 0.01
    assert leftovers(tmp_path) == []


def test_a_keyboard_interrupt_inside_the_facades_checkpoint_write_keeps_the_previous_one(
    monkeypatch, tmp_path
):
    t = trainer(tmp_path)
    t.train_loop(1)

    def interrupt():
        raise KeyboardInterrupt

    fault_in_write(monkeypatch, named(runs.CHECKPOINT), interrupt)
    with pytest.raises(KeyboardInterrupt):
        t.train_loop(2)
    assert leftovers(tmp_path) == []
    assert runs.load_checkpoint(str(tmp_path / runs.CHECKPOINT), t._state())[1] == 1


@pytest.mark.parametrize("method", ["evaluate", "training_step"])
def test_the_facades_batch_methods_refuse_empty_and_non_numeric_batches(method):
    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    call = getattr(t, method)
    y = np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match=r"must hold at least one example, got shape \(0, 1, 28, 28\)"):
        call(np.zeros((0, 1, 28, 28), np.float32), np.zeros((0, 1), np.float32))
    with pytest.raises(TypeError, match=r"must hold real numbers \(bool, int or float\), got dtype object"):
        call(np.empty((2, 1, 28, 28), object), y)
    with pytest.raises(TypeError, match=r"got dtype complex64"):
        call(np.zeros((2, 1, 28, 28), np.complex64), y)


# -- one seed range everywhere -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**32, 2**63, 2**64 + 5])
def test_seeds_outside_the_one_range_are_refused_everywhere(seed, capfd):
    message = f"seed must be an int in [0, 4294967295] (0 to 2**32 - 1), got {seed}"
    for argv in (["train", "--seed", str(seed)], ["sweep", "--seeds", "1", str(seed)]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capfd.readouterr().err
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\]"):
        Trainer("mlp", HIDDEN, dataset="digits", seed=seed)
    from jaxtrainer.spec import Spec, members_of

    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\]"):
        Spec(members=members_of([0.1], [0, seed]))


def test_distinct_seeds_in_the_range_draw_distinct_weights():
    draws = {
        seed: models.state_dict(models.build_network("mlp", (1, 4, 4), HIDDEN, seed=seed))["1.weight"]
        for seed in (0, 1, 2**31, 2**32 - 1)
    }
    assert len({w.tobytes() for w in draws.values()}) == 4


# -- a multi-process run asked wrong: refused before joining anything ---------------------------------
JOIN = ["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "0"]


@pytest.mark.parametrize(
    "args,environment,message",
    [
        (JOIN[:2], {}, "a multi-process run needs --coordinator HOST:PORT, --num-processes N and --process"),
        ([*JOIN[:3], "0", *JOIN[4:]], {}, "--num-processes must be >= 1, got 0"),
        ([*JOIN[:5], "2"], {}, "--process-id must be in [0, 1] for --num-processes 2, got 2"),
        (["--coordinator", "localhost", *JOIN[2:]], {}, "--coordinator must be HOST:PORT (a port in 1..6"),
        (["--coordinator", "h:99999", *JOIN[2:]], {}, "got 'h:99999'"),
        ([], {"JAXTRAINER_NUM_PROCESSES": "two"}, "$JAXTRAINER_NUM_PROCESSES must be an integer, got 'two'"),
        (JOIN, {"JAXTRAINER_HEARTBEAT_TIMEOUT": "30s"}, "$JAXTRAINER_HEARTBEAT_TIMEOUT must be an integer"),
        (JOIN, {"JAXTRAINER_HEARTBEAT_TIMEOUT": "0"}, "must be a whole number of seconds >= 1, got 0"),
    ],
)
def test_a_multi_process_run_asked_wrong_is_one_line(
    args, environment, message, tmp_path, monkeypatch, capfd
):
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    refused([*SWEEP, "--epochs", "1", "--out", tmp_path / "run", *args], capfd, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "given,named",
    [
        (["--process-id", "0"], "--process-id"),
        (["--process-id=1"], "--process-id"),
        (["--process", "0"], "--process-id"),  # argparse's abbreviation
        (["--num-processes", "2"], "--num-processes"),
        (["--coordinator", "127.0.0.1:1234", "--process-id", "1"], "--coordinator, --process-id"),
    ],
)
def test_launch_refuses_the_options_it_gives_each_process_before_starting_any(
    given, named, tmp_path, monkeypatch, capfd
):
    def started(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr("jaxtrainer.launch.launch", started)
    line = refused(
        ["launch", "-n", "2", "--", *SWEEP, "--epochs", "1", "--out", tmp_path / "run", *given],
        capfd,
        f"launch gives each process its {named} itself: remove",
    )
    assert "from the command" in line and not (tmp_path / "run").exists()


# -- the memory runs out: the environment's limit, said in one line ----------------------------------
@pytest.mark.parametrize(
    "error,said",
    [
        (jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 24393397224 bytes."), None),
        (MemoryError(), "MemoryError"),
        (RuntimeError("a bug"), "traceback"),
    ],
)
def test_out_of_memory_mid_run_is_one_line_saying_what_is_saved(error, said, tmp_path, monkeypatch, capfd):
    checkpoint = runs.Run.checkpoint

    def then_out_of_memory(self, tree, epoch, logs):
        checkpoint(self, tree, epoch, logs)
        if epoch == 2:
            raise error

    monkeypatch.setattr(runs.Run, "checkpoint", then_out_of_memory)
    out = tmp_path / "run"
    if said == "traceback":  # anything else is a bug, and keeps its traceback
        with pytest.raises(RuntimeError, match="a bug"):
            main(train_argv(out))
        return
    refused(
        train_argv(out),
        capfd,
        f"jaxtrainer: error: out of memory ({said or str(error)}); saved so far: {out} (2 epochs); "
        "try a smaller --batch-size, smaller layers or fewer sweep members",
    )
    assert saved_epochs(out) == 2


# -- names as long as a folder entry allows: the temporary names made from them fit too --------------
def test_build_rotated_into_a_240_byte_name_builds_it(tmp_path, capfd):
    make_idx_set(tmp_path / "src")
    out = tmp_path / ("é" * 120)  # 240 bytes in UTF-8, a valid name
    code, _, err = run_main(
        [
            "data",
            "build-rotated",
            "--source",
            tmp_path / "src",
            "--out",
            out,
            "--no-progress",
            "--n-train",
            12,
            "--n-test",
            6,
        ],
        capfd,
    )
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == sorted(["src", out.name])  # no temporary folder left
    assert data.load(str(out)).X_train.shape == (12, 1, 28, 28)


def test_an_export_to_a_254_byte_name_is_written(tmp_path, capfd):
    export = tmp_path / ("w" * 250 + ".npz")
    code, _, err = run_main(train_argv(tmp_path / "run", 1, "--export", export), capfd)
    assert code == 0, err
    assert set(state_dict.import_state_dict(str(export))) == {"1.weight", "1.bias", "3.weight", "3.bias"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- messages in the user's terms, not the libraries' internals ------------------------------------
def test_a_file_that_is_no_image_is_named_without_pillows_internals(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    bad = png / "train" / "7_3.png"
    bad.write_text("not an image")
    line = refused(
        train_argv(tmp_path / "run", 1, "--dataset", png),
        capfd,
        f"{bad}: not a readable PNG (no image format Pillow knows, in its 12 bytes)",
    )
    assert "BytesIO" not in line and "0x" not in line


def test_constant_targets_and_numpy_scalars_are_said_as_plain_numbers(tmp_path, capfd):
    from PIL import Image

    png = tmp_path / "png"
    for split, n in (("train", 3), ("test", 1)):
        (png / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((12, 12), 40 * i, np.uint8)).save(png / split / f"{i}_45.png")
    refused(
        train_argv(tmp_path / "run", 1, "--dataset", png),
        capfd,
        "the training targets are constant (45.0): they cannot be standardised",
    )
    for kwargs, message in (
        ({"lr": np.float64(-1.0)}, "lr must be a finite number > 0, got -1.0"),
        ({"seed": np.int64(-1)}, "got -1"),
        ({"batch_size": np.int32(0)}, "batch_size must be an int > 0, got 0"),
    ):
        with pytest.raises(ValueError) as error:
            Trainer("mlp", HIDDEN, dataset="digits", **kwargs)
        assert str(error.value).endswith(message) and "np." not in str(error.value)


def test_bfloat16_tensors_are_read_exactly_and_a_meta_tensor_is_one_line():
    import torch

    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    X = torch.randn(4, 1, 28, 28).bfloat16()
    y = torch.randn(4, 1).bfloat16()
    assert t.evaluate(X, y) == t.evaluate(X.float(), y.float())
    np.testing.assert_array_equal(t.network(X), t.network(X.float()))
    weights = {k: torch.from_numpy(np.array(v)).bfloat16() for k, v in t.network.state_dict().items()}
    t.network.load_state_dict(weights)
    assert all(np.array_equal(t.network.state_dict()[k], weights[k].float().numpy()) for k in weights)
    meta = torch.empty((4, 1, 28, 28), device="meta")
    for call, label in (
        (lambda: t.training_step(meta, y), "X_batch"),
        (lambda: t.evaluate(X, meta[:, 0, 0, :1]), "y"),
        (lambda: t.network(meta), "the input"),
        (lambda: t.network.load_state_dict({**weights, "1.bias": meta[0, 0, 0, :8]}), "state_dict['1.bias']"),
    ):
        with pytest.raises(TypeError) as error:
            call()
        assert str(error.value) == (
            f"{label} is a meta tensor (a shape without values): create it on the cpu, with values"
        )


# -- the facade acts as torch where students rely on it --------------------------------------------
def test_a_learning_rate_set_in_param_groups_is_the_next_steps_as_in_torch_without_recompiling():
    import torch

    from torch_compat import to_torch

    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    module = to_torch(t.network)
    reference = torch.optim.Adam(module.parameters(), lr=t.lr)
    X, y = (np.asarray(a[:32]) for a in t.train)

    def both_step():
        t.training_step(X, y)
        reference.zero_grad()
        torch.nn.functional.mse_loss(module(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        reference.step()

    both_step()  # compiles the step
    programs = train.train_step._cache_size()
    for lr in (0.05, 0.0, 1e-2, 3e-4):  # a warm-up from 0 included
        before = models.state_dict(t.network)
        t.optimizer.param_groups[0]["lr"] = lr
        reference.param_groups[0]["lr"] = lr
        both_step()
        assert t.optimizer.param_groups[0]["lr"] == lr
        for key, value in module.state_dict().items():
            np.testing.assert_allclose(models.state_dict(t.network)[key], value.numpy(), rtol=1e-4, atol=1e-6)
        if lr == 0.0:
            assert all(np.array_equal(before[k], models.state_dict(t.network)[k]) for k in before)
    assert train.train_step._cache_size() == programs  # a new learning rate compiled nothing
    t.optimizer.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"\['lr'\] must be a finite number >= 0, got -1\.0$"):
        t.training_step(X, y)


@pytest.mark.parametrize("flavour", ["facade", "grading"])
def test_a_deep_copy_of_a_trainer_trains_apart_from_the_original(flavour):
    import copy

    from torch_compat import grading

    kind = {"facade": Trainer, "grading": grading.Trainer}[flavour]
    t = kind("mlp", HIDDEN, dataset="digits", progress=False)

    def weights(trainer):
        state = trainer.network.state_dict()
        return {k: np.asarray(v.detach() if hasattr(v, "detach") else v) for k, v in state.items()}

    X, y = t.train
    twin = copy.deepcopy(t)
    start = weights(t)
    twin.training_step(X[:32], y[:32])
    twin_logs = twin.train_loop(1)
    assert all(np.array_equal(start[k], weights(t)[k]) for k in start)  # the original did not move
    assert not all(np.array_equal(start[k], weights(twin)[k]) for k in start)
    t.training_step(X[:32], y[:32])
    assert t.train_loop(1) == twin_logs  # the same start, the same training, the same numbers
    assert all(np.array_equal(weights(t)[k], weights(twin)[k]) for k in start)


def test_the_facade_network_and_its_parameters_move_as_torch_modules_do():
    import torch

    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    net, X, y = t.network, *(np.asarray(a[:16]) for a in t.train)
    for device in ("cpu", torch.device("cpu")):
        assert net.to(device) is net
    assert net.cpu() is net and net.eval() is net and net.train() is net
    p = next(net.parameters())
    assert p.cpu() is p and p.to("cpu") is p
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if gpus:  # placed on the GPU, and trained there
        assert net.to("cuda:0") is net
        assert {leaf.devices().pop() for leaf in jax.tree.leaves(nnx_params(net))} == {gpus[0]}
    else:
        for move in (lambda: net.to("cuda"), net.cuda, lambda: net.to(torch.device("cuda:0")), p.cuda):
            with pytest.raises(RuntimeError, match=r"^cannot use cuda(:0)?: JAX sees no GPU, only cpu on"):
                move()
    for wrong in ("gpu", "CUDA", "cuda:x"):
        with pytest.raises(RuntimeError, match=rf"^device must be 'cpu', 'cuda' or 'cuda:N' .*'{wrong}'$"):
            net.to(wrong)
    before = models.state_dict(net)
    t.training_step(X, y)  # the moved network still trains
    assert not np.array_equal(before["1.weight"], models.state_dict(net)["1.weight"])


def nnx_params(net):
    from flax import nnx

    return nnx.state(net, nnx.Param)
