"""A property of the run folder (issue 22): whatever a random sequence of interrupts, edits,
deletions and links does inside a finished or interrupted sweep's folder, the same command then
never loses or changes a file outside the folder, and never reports a logs entry that the
checkpoint does not hold: it finishes with logs.json and summary.json agreeing with the checkpoint,
or it refuses in one line (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jaxtrainer import runs
from jaxtrainer.cli import main

SWEEP = ["sweep", "--hidden", "8", "--lr", "0.01", "0.001", "--seed", "0", "--no-progress", "--epochs"]
MEMBERS = ("lr_0.01_seed_0", "lr_0.001_seed_0")
TARGETS = [runs.MANIFEST, runs.CHECKPOINT, runs.LOCK, "summary.json", "report.md", "sweep.png"] + [
    f"{m}/{name}" for m in MEMBERS for name in ("", "logs.json", "logs.csv")
]


def readable(path: Path):
    """The JSON at `path` (not through a link), or None."""
    try:
        return None if path.is_symlink() else json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def manifest_edits(folder: Path) -> list:
    """Hand edits of run.json: garbled, and hostile (outputs outside the folder)."""
    saved = readable(folder / runs.MANIFEST)
    if not isinstance(saved, dict) or not isinstance(saved.get("epochs_done"), int):
        return ["{", "[]"]
    outputs = saved["outputs"] if isinstance(saved.get("outputs"), list) else []
    return [
        "{",
        json.dumps({**saved, "epochs_done": saved["epochs_done"] + 5}),
        json.dumps({**saved, "outputs": ["../outside/precious.txt", "../outside", *outputs]}),
        json.dumps({**saved, "outputs": "everything"}),
    ]


def damage(folder: Path, outside: Path, step: tuple) -> None:
    """One step done to the run folder, as a user, a crash or another program would."""
    kind, target, choice = step
    path = folder / target
    if kind == "interrupt":  # what a process killed at some instant leaves
        what = choice % 3
        saved = readable(folder / runs.MANIFEST)
        if what == 0 and isinstance(saved, dict) and isinstance(saved.get("epochs_done"), int):
            saved["epochs_done"] = max(0, saved["epochs_done"] - 1)  # killed between the two renames
            (folder / runs.MANIFEST).write_text(json.dumps(saved))
        elif what == 1:  # mid-write: its temporary file
            (folder / f".logs.json.{4_000_000 + choice}.0123abcd.tmp").write_text("half")
        elif what == 2 and not (folder / runs.LOCK).is_symlink():  # a lock whose owner died
            (folder / runs.LOCK).write_text(json.dumps({"pid": 4_000_000 + choice, "host": "gone"}))
        return
    if not os.path.lexists(path) or os.path.realpath(path.parent).startswith(os.path.realpath(outside)):
        return  # nothing there, or a file behind a link made by an earlier step: the user's own
    if kind == "delete":
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else os.remove(path)
    elif kind == "edit" and path.is_file() and not path.is_symlink():
        edits = manifest_edits(folder) if target == runs.MANIFEST else ['{"config": {}}', "{", "", "0,1\n"]
        if target.endswith("logs.json"):  # of the right schema, with better numbers than trained
            keys = ("train_loss", "test_loss", "train_mae", "test_mae")
            edits.append(json.dumps({"config": {"epochs": 9}, "logs": {k: [1e-5] * 3 for k in keys}}))
        path.write_text(edits[choice % len(edits)])
    elif kind == "link":
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else os.remove(path)
        os.symlink(outside if choice % 2 or target.endswith("/") else outside / "precious.txt", path)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A sweep stopped after epoch 1 of 2 (an interrupt between epochs leaves the same folder)."""
    root = tmp_path_factory.mktemp("sweeps")
    assert main([*SWEEP, "1", "--out", str(root / "sweep")]) == 0
    return root / "sweep"


steps = st.tuples(
    st.sampled_from(["interrupt", "edit", "delete", "link"]),
    st.sampled_from(TARGETS),
    st.integers(0, 7),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    sequence=st.lists(steps, min_size=1, max_size=4),
    epochs=st.sampled_from(["1", "2"]),
    overwrite=st.booleans(),
)
def test_damage_then_the_same_command_loses_nothing_outside_and_reports_only_the_checkpoint(
    sweeps, sequence, epochs, overwrite, capfd
):
    with tempfile.TemporaryDirectory() as tmp:
        out, outside = Path(tmp, "run"), Path(tmp, "outside")
        shutil.copytree(sweeps, out, symlinks=True)
        outside.mkdir()
        (outside / "precious.txt").write_text("my thesis")
        (outside / "logs.json").write_text('{"mine": true}')
        before = snapshot(outside)
        for step in sequence:
            damage(out, outside, step)
        argv = [*SWEEP, epochs, "--out", str(out)] + (["--overwrite"] if overwrite else [])
        code = main(argv)
        _, err = capfd.readouterr()
        event(f"exit {code}")
        assert snapshot(outside) == before
        if code == 2:  # refused: one line, and the user's folder is as it was
            assert len(err.strip().splitlines()) == 1 and err.startswith("jaxtrainer: error: "), err
            return
        assert code == 0, err
        epoch, logs, _ = runs.read_header(str(out / runs.CHECKPOINT))
        assert epoch == int(epochs)
        summary = json.loads((out / "summary.json").read_text())["runs"]
        for member, member_logs, row in zip(MEMBERS, logs, summary):
            assert not (out / member).is_symlink()
            assert json.loads((out / member / "logs.json").read_text())["logs"] == member_logs
            assert row["final_test_mae"] == member_logs["test_mae"][-1]
            assert row["best_test_mae"] == min(member_logs["test_mae"])  # no NaN: lr 0.01 and 0.001 converge
