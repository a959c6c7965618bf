"""Faults: interrupts. Signals at several moments (before the first compile, during it,
mid-training, during a write), SIGKILL of a sweep and of the homework, a closed terminal or stdout.
After each, the disk holds no temporary file and no lock, the previous checkpoint loads whole, and
the same command then finishes with the logs of a run that was never interrupted (logs.csv equal
byte for byte).

The faults that need a process of their own start together in the background while the
uninterrupted reference runs train in this process; the rest run in this process, with `os._exit`
(the interrupt's way out) turned into an exception."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_idx_set, write_png_folder
from fault_helpers import (
    HIDDEN,
    HOST,
    LONG,
    SHORT,
    SWEEP,
    SWEEP_LRS,
    WRITES,
    build_rotated_argv,
    command,
    csv_bytes,
    dead_pid,
    fault_in_write,
    homework_argv,
    leftovers,
    named,
    nothing_saved_messages,
    run_main,
    saved_epochs,
    saved_message,
    train_argv,
)

from jaxtrainer import presets, runs
from jaxtrainer.cli import main
from jaxtrainer.spec import Spec
from jaxtrainer.sweeps import init_sweep

pytestmark = pytest.mark.slow  # its module fixture runs every signalled and killed command (minutes)


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
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(SIGNALS) + 3)
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
    _, epoch, logs, _ = runs.load_checkpoint(str(result.out / runs.CHECKPOINT), template)
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
        build_rotated_argv(tmp_path / "src", out),
        capfd,
    )
    assert code == 130 and len(written) == 7
    assert err.strip().splitlines() == [
        f"jaxtrainer: interrupted; 7 of 18 images were built, then removed with the build's temporary "
        f"folder; {out} was not created: run the same command again to build it"
    ]
    assert sorted(os.listdir(tmp_path)) == ["src"]


# -- interrupts inside a write, in this process --------------------------------------------------------------
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
