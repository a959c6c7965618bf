"""Faults: the environment's limits. A disk that fills up part-way through a write, read-only
folders and files in the way, memory that runs out, an accelerator that is not there, names as long
as a folder entry allows: each is one `jaxtrainer: error:` line, and what was saved stays whole."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import jax
import pytest
from conftest import compiled_programs, make_idx_set
from fault_helpers import (
    SHORT,
    SWEEP,
    TRAIN,
    WRITES,
    build_rotated_argv,
    command,
    csv_bytes,
    disk_full,
    fault_in_write,
    leftovers,
    named,
    refused,
    run_main,
    saved_epochs,
    train_argv,
)

from jaxtrainer import data, runs, state_dict
from jaxtrainer.cli import main


# -- a disk that fills up part-way through a write -----------------------------------------------------------
@pytest.mark.slow
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


@pytest.mark.slow
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


# -- read-only folders, files in the way, unknown formats: refused before any data is read -------------------
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


# -- the memory runs out: the environment's limit, said in one line ------------------------------------------
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


# -- an accelerator JAX_PLATFORMS names and this machine lacks -----------------------------------------------
# every spelling of a backend this machine lacks: a platform JAX knows, an alias, a list, a wrong case
LACKING = ["tpu", "rocm", "METAL", "Cuda", "gpu,cpu", "cuda,tpu"]


if jax.default_backend() == "cpu":
    LACKING += ["cuda", "gpu"]


@pytest.mark.slow
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


# -- names as long as a folder entry allows: the temporary names made from them fit too ----------------------
def test_build_rotated_into_a_240_byte_name_builds_it(tmp_path, capfd):
    make_idx_set(tmp_path / "src")
    out = tmp_path / ("é" * 120)  # 240 bytes in UTF-8, a valid name
    code, _, err = run_main(
        build_rotated_argv(tmp_path / "src", out),
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
