"""The one resume rule (`jaxtrainer.runs.resume.plan`) on plain dicts: no files, no JAX."""

import pytest

from jaxtrainer.errors import InputError
from jaxtrainer.runs.manifest import FORMAT, RunError
from jaxtrainer.runs.resume import Plan, plan

ME = {"kind": "train", "lr": 0.1, "net": {"hidden": [16]}}


def manifest(epochs=2, identity=ME, outputs=("logs.json", "a/curves.png"), **changed):
    return {
        "format": FORMAT,
        "identity": identity,
        "epochs_done": epochs,
        "outputs": list(outputs),
        **changed,
    }


@pytest.mark.parametrize("mode", ["continue", "append"])
def test_a_new_or_empty_folder_starts_a_new_run(mode):
    assert plan(None, None, ME, mode, 5, foreign=[]) == Plan(epochs_done=0, outputs=(), remove=None)


def test_the_same_run_continues_from_the_checkpoints_epochs_which_may_be_one_more_than_the_manifests():
    """A kill between the checkpoint's rename and the manifest's leaves the manifest one behind."""
    assert plan(manifest(epochs=2), (3, ME), ME, "continue", 5) == Plan(3, ("logs.json", "a/curves.png"))
    assert plan(manifest(epochs=3), (3, ME), ME, "resume", 3).epochs_done == 3
    assert plan(manifest(epochs=0), None, ME, "continue", 1).epochs_done == 0


def test_overwrite_removes_only_the_listed_outputs_inside_the_folder():
    listed = manifest(outputs=["logs.json", "../outside.txt", "/etc/passwd", "m/logs.json"])
    assert plan(listed, (2, ME), {"kind": "other"}, "overwrite").remove == ("logs.json", "m/logs.json")
    assert plan("run.json is not readable JSON", "garbled", ME, "overwrite").remove == ()  # ours by name only
    assert plan(None, (1, ME), ME, "overwrite").remove == ()  # a checkpoint alone: it and a manifest go
    assert plan(None, None, ME, "overwrite", foreign=["notes.txt"]).remove is None  # nothing of ours


@pytest.mark.parametrize(
    "args, message",
    [
        ((None, None, ME, "continue", 1), None),
        ((None, None, ME, "resume", 1), r"no run to resume in F: it holds no run\.json"),
        (
            (manifest(), (2, ME), {**ME, "lr": 0.2}, "continue", 5),
            r"configuration \(lr: saved 0\.1, now 0\.2\)",
        ),
        ((manifest(), (2, ME), {**ME, "net": {"hidden": [8]}}, "continue", 5), r"net\.hidden: saved \[16\]"),
        ((manifest(), (2, ME), {"kind": "sweep"}, "continue", 5), r"holds a 'train' run, not a 'sweep' one"),
        ((manifest(), (2, ME), ME, "continue", 1), r"already holds 2 epochs of this run and 1 were asked"),
        (
            (manifest(), None, ME, "continue", 5),
            r"F/checkpoint\.npz is missing although run\.json records 2 ep",
        ),
        ((manifest(), (2, {**ME, "lr": 9}), ME, "continue", 5), r"F/checkpoint\.npz does not match run"),
        ((manifest(), "F/checkpoint.npz is not a readable", ME, "continue", 5), r"not a readable; use --ov"),
        ((manifest(format=1), (2, ME), ME, "continue", 5), r"written by another version of jaxtrainer"),
        ((None, (2, ME), ME, "continue", 5), r"written by another version of jaxtrainer"),
        ((manifest(epochs="2"), (2, ME), ME, "continue", 5), r"epochs_done '2' is not a count"),
        (
            (manifest(outputs=["../x"]), (2, ME), ME, "continue", 5),
            r"outputs \['\.\./x'\] are not paths inside",
        ),
        ((manifest(identity=[]), (2, ME), ME, "continue", 5), r"its identity is not a JSON object"),
        (
            ("F/run.json is not readable JSON (Is a directory)", None, ME, "resume", 5),
            r"Is a directory\); use --",
        ),
        ((manifest(), (2, ME), ME, "append", 1), r"holds a run of 2 epochs: pass resume=True to continue it"),
    ],
)
def test_what_cannot_be_continued_is_refused_saying_why_and_how_to_start_over(args, message):
    if message is None:  # the same folder with a stranger's file in it
        with pytest.raises(
            RunError, match=r"F holds files but no jaxtrainer run \(a, b, c, \.\.\.\); choose"
        ):
            plan(*args, foreign=["d", "c", "b", "a"], folder="F")
        return
    with pytest.raises(RunError, match=message) as refused:
        plan(*args, folder="F")
    assert "\n" not in str(refused.value)
    assert "--overwrite" in str(refused.value) or "no run to resume" in message  # how to start over


def test_the_facades_append_continues_only_the_epochs_its_trainer_saved():
    assert plan(manifest(epochs=2), (2, ME), ME, "append", 2).epochs_done == 2
    with pytest.raises(RunError, match=r"F holds a run of 2 epochs: pass resume=True .* or overwrite=True"):
        plan(manifest(epochs=2), (2, ME), ME, "append", 0, folder="F", hint="overwrite=True")


def test_an_unknown_mode_is_an_input_error_naming_it():
    with pytest.raises(InputError, match=r"mode must be one of \('continue', .*\), got 'fresh'"):
        plan(None, None, ME, "fresh")
