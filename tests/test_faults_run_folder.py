"""Faults of the run folder (issue 22, items 1-3 and 8): nothing on disk that jaxtrainer did not
write is trusted. A link inside a run folder is never followed (the lock, the manifest, the
checkpoint, a member folder); starting over removes links, never what they point to; a finished
sweep's logs.json that disagrees with the checkpoint, or is missing, is rewritten from it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jaxtrainer import runs
from jaxtrainer.cli import main

SWEEP = ["sweep", "--hidden", "8", "--lr", "0.01", "0.001", "--seed", "0", "--no-progress", "--epochs"]
TRAIN = ["train", "--hidden", "8", "--no-progress", "--epochs"]
MEMBERS = ("lr_0.01_seed_0", "lr_0.001_seed_0")


def run(argv, out, capfd, *extra):
    code = main([*argv, "--out", str(out), *extra])
    return code, *capfd.readouterr()


def refused(argv, out, capfd, *fragments) -> str:
    """Exit 2 and one `jaxtrainer: error:` line holding every fragment."""
    code, _, err = run(argv, out, capfd)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxtrainer: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def files_under(folder: Path) -> dict:
    """Every file's bytes, links not followed (a link is recorded as its target)."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 1-epoch sweep and a finished 1-epoch train, made once, copied by each test."""
    root = tmp_path_factory.mktemp("finished")
    for argv, name in (([*SWEEP, "1"], "sweep"), ([*TRAIN, "1"], "train")):
        assert main([*argv, "--out", str(root / name)]) == 0
    return root


@pytest.fixture
def outside(tmp_path):
    """The user's own files, outside every run folder."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("my thesis")
    (folder / "logs.json").write_text('{"mine": true}')
    (folder / "logs.csv").write_text("mine")
    return folder


def copy(finished, name, tmp_path) -> Path:
    out = tmp_path / name
    shutil.copytree(finished / name, out, symlinks=True)
    return out


# -- item 1: a link is never followed -----------------------------------------------------------------
def test_a_link_where_the_lock_goes_is_refused_and_what_it_points_to_is_untouched(tmp_path, outside, capfd):
    out = tmp_path / "run"
    out.mkdir()
    os.symlink("../outside/precious.txt", out / runs.LOCK)
    refused([*TRAIN, "1"], out, capfd, f"{out / runs.LOCK} is a symbolic link", "remove it")
    assert (outside / "precious.txt").read_text() == "my thesis"
    assert os.readlink(out / runs.LOCK) == "../outside/precious.txt"  # left for the user to look at


@pytest.mark.parametrize("name", [runs.MANIFEST, runs.CHECKPOINT])
def test_a_manifest_or_checkpoint_that_is_a_link_is_not_read_through_it(name, finished, tmp_path, capfd):
    """The link points to a copy of the run's own file: read through it, the run would continue
    from a file it did not write."""
    out = copy(finished, "train", tmp_path)
    target = tmp_path / f"elsewhere-{name}"
    os.replace(out / name, target)
    os.symlink(target, out / name)
    before = target.read_bytes()
    refused([*TRAIN, "2"], out, capfd, str(out / name), "--overwrite")
    assert target.read_bytes() == before


def test_a_member_folder_that_is_a_link_is_never_written_through(finished, tmp_path, outside, capfd):
    out = copy(finished, "sweep", tmp_path)
    shutil.rmtree(out / MEMBERS[0])
    os.symlink(outside, out / MEMBERS[0])
    before = files_under(outside)
    refused([*SWEEP, "2"], out, capfd, f"{out / MEMBERS[0]} is a symbolic link", "--overwrite")
    assert files_under(outside) == before


# -- item 2: starting over removes links, never what they point to --------------------------------
def test_overwrite_removes_a_linked_member_folder_not_the_users_files_it_points_to(
    finished, tmp_path, outside, capfd
):
    out = copy(finished, "sweep", tmp_path)
    shutil.rmtree(out / MEMBERS[0])
    os.symlink(outside, out / MEMBERS[0])
    os.remove(out / MEMBERS[1] / "logs.csv")
    os.symlink(outside / "logs.csv", out / MEMBERS[1] / "logs.csv")
    before = files_under(outside)
    code, _, err = run([*SWEEP, "1"], out, capfd, "--overwrite")
    assert code == 0, err
    assert files_under(outside) == before
    for member in MEMBERS:
        assert not (out / member).is_symlink() and not (out / member / "logs.csv").is_symlink()
        assert json.loads((out / member / "logs.json").read_text())["config"]["epochs"] == 1


# -- items 3 and 8: the checkpoint is the truth of a finished run --------------------------------------
def edited(path: Path) -> None:
    """Hand-edited: a test MAE of 1e-5 and a best epoch of 2 for a 1-epoch run."""
    saved = json.loads(path.read_text())
    saved["logs"] = {k: [*v, 1e-5] for k, v in saved["logs"].items()}
    saved["logs"]["test_mae"] = [1e-5] * len(saved["logs"]["test_mae"])
    path.write_text(json.dumps(saved))


def reported(out: Path) -> list:
    """What summary.json (and report.md, from the same rows) reports of each member."""
    rows = json.loads((out / "summary.json").read_text())["runs"]
    return [{k: r[k] for k in ("final_test_mae", "best_test_mae", "best_epoch")} for r in rows]


DAMAGE = {
    "edited": edited,
    "another schema": lambda path: path.write_text('{"config": {}}'),
    "not JSON": lambda path: path.write_text("{"),
    "deleted": os.remove,
    "a link": lambda path: (os.remove(path), os.symlink("../../outside/logs.json", path)),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_finished_sweeps_logs_json_that_disagrees_is_rewritten_from_the_checkpoint(
    damage, finished, tmp_path, outside, capfd
):
    out = copy(finished, "sweep", tmp_path)
    truth = {m: (out / m / "logs.json").read_bytes() for m in MEMBERS}
    summary = reported(out)
    DAMAGE[damage](out / MEMBERS[0] / "logs.json")
    before = files_under(outside)
    code, stdout, err = run([*SWEEP, "1"], out, capfd)
    assert code == 0, err
    assert f"already finished in {out}, skipped" in stdout
    warnings = [line for line in (stdout + err).splitlines() if "not what the checkpoint holds" in line]
    assert len(warnings) == 1 and str(out / MEMBERS[0] / "logs.json") in warnings[0], warnings
    assert "rewritten from checkpoint.npz" in warnings[0]
    assert {m: (out / m / "logs.json").read_bytes() for m in MEMBERS} == truth
    assert reported(out) == summary  # the checkpoint's best epoch and test MAE
    assert files_under(outside) == before


def test_a_finished_sweep_whose_logs_agree_is_read_back_without_a_warning(finished, tmp_path, capfd):
    out = copy(finished, "sweep", tmp_path)
    before = files_under(out)
    code, stdout, err = run([*SWEEP, "1"], out, capfd)
    assert code == 0 and f"already finished in {out}, skipped" in stdout
    assert "not what the checkpoint holds" not in stdout + err
    assert {k: v for k, v in files_under(out).items() if k.endswith("logs.json")} == {
        k: v for k, v in before.items() if k.endswith("logs.json")
    }


# -- time: the checkpoint holds it (issue 21: `train` lost its earlier seconds when continued) -------
def test_a_continued_train_counts_the_seconds_of_its_earlier_epochs(tmp_path, capfd):
    out = tmp_path / "run"
    assert run([*TRAIN, "1"], out, capfd)[0] == 0
    first = json.loads((out / "logs.json").read_text())["config"]["seconds"]
    assert run([*TRAIN, "2"], out, capfd)[0] == 0  # epoch 2 alone, compiled already: less than first
    assert json.loads((out / "logs.json").read_text())["config"]["seconds"] > first
