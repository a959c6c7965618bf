"""Faults: two writers on one folder (a live owner is named, a dead one's lock is taken over), and
a folder that holds another run or files that are no run: refused, and left as it was."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest
from fault_helpers import (
    HOST,
    SHORT,
    SWEEP,
    contents,
    csv_bytes,
    dead_pid,
    leftovers,
    refused,
    run_main,
    saved_epochs,
    train_argv,
)

from jaxtrainer import presets, runs
from jaxtrainer.cli import main


# -- two writers on one folder -------------------------------------------------------------------------------
@pytest.mark.slow
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


@pytest.mark.slow
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


# -- a folder that holds another run, or files that are no run -----------------------------------------------
@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    assert main([*SWEEP, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
