"""`jaxtrainer grade`: a class's solutions graded in one call, each mistake caught by its own check
with a message that names it; the grader's own tests; bad usage."""

import csv
import json
import os
import sys

import numpy as np
import pytest
import torch
from grade_solutions import mistakes

from jaxtrainer import cli
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.data import build
from jaxtrainer.grade import runner
from jaxtrainer.grade.plan import CHECK_IDS, TRAINING, Case
from torch_compat import bridge, grade_checks, grading

N_TRAIN, N_TEST = 150, 40  # batch 128: one full batch and a short one of 22 rows
TIMEOUT = 90  # the sleeper's run; the others take 10-45 s here (first ones compile, on a busy machine)

# name: {check id that fails: words its message must hold}; every other check passes.
EXPECTED_FAILURES = {
    "correct": {},
    "no_last_activation": {
        "structure.cnn": ["create_cnn", "is AdaptiveMaxPool2d, the reference has ReLU there", "last Conv2d"]
    },
    "shared_activation": {"activation_instances": ["one and the same ReLU instance", "children()"]},
    "step_returns_loss": {"training_step": ["the loss alone", "not (loss, mae)"]},
    "no_initial_log": {"train_loop_logs": ["no log entry before training"]},
    "shuffled_dropped_batches": {
        "train_loop_logs": ["batches are shuffled", f"short last batch ({N_TRAIN % 128} rows) is dropped"]
    },
    "wrong_optimizer": {
        "training_step": ["matches RMSprop, not Adam"],
        "train_loop_logs": ["see training_step"],
    },
    "widely_copied": {
        "structure.cnn": ["an activation also follows the last Conv2d"],
        "activation_instances": ["one and the same ReLU instance"],
        "training_step": ["the loss alone"],
        "train_loop_logs": ["no log entry before training"],
    },
    "sgd_no_initial_log": {
        "training_step": ["matches SGD, not Adam"],
        "train_loop_logs": ["no log entry before training", "see training_step"],
    },
}


def write_tiny_data(folder):
    """A small rotated-PNG folder (random pixels: the checks compare with the reference, they do
    not need a learnable task)."""
    rng = np.random.default_rng(0)
    raw = {
        split: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), None)
        for split, n in (("train", N_TRAIN), ("test", N_TEST))
    }
    return build.write_rotated(raw, folder, n_train=N_TRAIN, n_test=N_TEST, progress=False)["out"]


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """One compilation cache for this module's grading runs (the second compiles nothing)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax-cache")))
        yield


def read_grades(out):
    with open(os.path.join(out, "grades.json")) as f:
        return {s["name"]: s for s in json.load(f)["submissions"]}


def test_a_class_graded_in_one_call(tmp_path, capsys, jax_cache):
    order = ["sleeps_forever", *EXPECTED_FAILURES, "syntax_error"]  # the sleeper first: it overlaps
    paths = mistakes.write(tmp_path / "subs", order)
    folder = tmp_path / "subs" / "no_initial_log"  # a folder submission, named by the folder
    folder.mkdir()
    os.replace(paths["no_initial_log"], folder / "solution.py")
    paths["no_initial_log"] = str(folder)
    out = tmp_path / "out"
    argv = ["grade", *(str(paths[name]) for name in order), "--data", write_tiny_data(tmp_path / "data")]
    argv += ["--out", str(out), "--jobs", "2", "--timeout", str(TIMEOUT), "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "grades.json" in printed and "1.00  correct  (graded)" in printed

    grades = read_grades(out)
    assert list(grades) == order
    for name, graded in grades.items():
        assert [c["id"] for c in graded["checks"]] == list(CHECK_IDS), name
        assert graded["score"] == pytest.approx(sum(c["passed"] for c in graded["checks"]) / len(CHECK_IDS))
        assert all((c["message"] == "") == c["passed"] for c in graded["checks"]), name
    for name, expected in EXPECTED_FAILURES.items():
        graded = grades[name]
        failed = {c["id"]: c["message"] for c in graded["checks"] if not c["passed"]}
        assert set(failed) == set(expected), (name, failed)
        for check_id, words in expected.items():
            for word in words:
                assert word in failed[check_id], (name, check_id, failed[check_id])
        assert graded["status"] == "graded"
    assert grades["correct"]["score"] == 1.0

    broken = grades["syntax_error"]
    assert broken["status"] == "did not import" and broken["score"] == 0.0
    assert broken["checks"][0]["message"].startswith("importing solution.py raised SyntaxError")
    assert all(c["message"] == "not run: solution.py did not import" for c in broken["checks"][1:])
    hung = grades["sleeps_forever"]
    assert hung["status"] == f"timed out after {TIMEOUT} s" and hung["score"] == 0.0
    assert hung["checks"][0]["message"].startswith(f"the run timed out after {TIMEOUT} s during this check")
    assert all(c["message"] == "not run: the run timed out during import" for c in hung["checks"][1:])
    assert TIMEOUT <= hung["seconds"] < TIMEOUT + 15  # killed at the timeout, not later

    with open(out / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["name"] for row in rows] == order
    for row in rows:
        graded = grades[row["name"]]
        assert float(row["score"]) == graded["score"] and row["status"] == graded["status"]
        assert [int(row[c]) for c in CHECK_IDS] == [int(c["passed"]) for c in graded["checks"]]
    report = (out / "no_last_activation" / "report.md").read_text()
    assert report.startswith("# no_last_activation: 9 of 10 checks passed (score 0.9)")
    assert "| `structure.cnn` | **failed** | create_cnn (the default configuration): position 7" in report
    assert (out / "correct" / "output.log").read_text().count("[grade]") == len(CHECK_IDS)


GRADER_TESTS = """
import unittest

from solution import NetworkConfiguration, Trainer


class TestHomework(unittest.TestCase):
    def test_default_data_is_the_embedded_digits(self):
        trainer = Trainer("mlp", NetworkConfiguration(dense_hiddens=(8,)))
        self.assertEqual(tuple(trainer.train[0].shape), (1497, 1, 28, 28))
        self.assertEqual(tuple(trainer.test[0].shape), (300, 1, 28, 28))

    def test_fails(self):
        self.assertEqual(len(NetworkConfiguration().n_channels), 4, "four conv layers expected")
"""


def test_grader_tests_run_against_each_submission_on_the_default_data(tmp_path, jax_cache):
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "solution.py").write_text(mistakes.variant("correct"))
    (tmp_path / "test_homework.py").write_text(GRADER_TESTS)
    out = tmp_path / "out"
    argv = [
        "grade",
        str(folder),
        "--tests",
        str(tmp_path / "test_homework.py"),
        "--out",
        str(out),
        "--no-progress",
    ]
    assert cli.main(argv) == 0
    graded = read_grades(out)["alice"]
    assert graded["score"] == 1.0
    assert graded["tests"] == [
        {
            "id": "test_homework.TestHomework::test_default_data_is_the_embedded_digits",
            "outcome": "passed",
            "message": "",
        },
        {
            "id": "test_homework.TestHomework::test_fails",
            "outcome": "failed",
            "message": "AssertionError: 3 != 4 : four conv layers expected",
        },
    ]
    with open(out / "grades.csv") as f:
        row = next(csv.DictReader(f))
    assert row["test:test_homework.TestHomework::test_fails"] == "failed"
    assert (
        "| `test_homework.TestHomework::test_fails` | failed |" in (out / "alice" / "report.md").read_text()
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.py"], "submission 'missing.py' does not exist"),
        (["notes.txt"], "submission 'notes.txt' is not a .py file or a folder holding solution.py"),
        (["empty"], "submission folder 'empty' holds no solution.py"),
        (["a.py", "b/a.py"], "submissions 'a.py' and 'b/a.py' are both named 'a'"),
        (["a.py", "--jobs", "0"], "--jobs must be an integer >= 1, got '0'"),
        (["a.py", "--jobs", "two"], "--jobs must be an integer >= 1, got 'two'"),
        (["a.py", "--timeout", "-5"], "--timeout must be a number of seconds > 0, got '-5'"),
        (["a.py", "--timeout", "nan"], "--timeout must be a number of seconds > 0, got 'nan'"),
        (["a.py", "--data", "empty"], "--data 'empty' is not a folder with train/ and test/"),
        (["a.py", "--tests", "nothing.py"], "--tests 'nothing.py' is not a .py file"),
        (["a.py", "--tests", "a.py", "--out", "notes.txt"], "--out 'notes.txt' exists and is not a folder"),
        (["a.py", "--tests", "b/solution.py"], "the grader's file cannot be named solution.py"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    for path in ("a.py", "b/a.py", "b/solution.py", "notes.txt"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        open(path, "w").close()
    os.mkdir("empty")
    assert cli.main(["grade", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxtrainer: error: ") and message in err and err.count("\n") == 1, err
    assert not os.path.exists("grades")


# -- the orchestrator's reading of a run that did not finish ----------------------------------------


def test_a_run_cut_short_keeps_the_checks_it_finished(tmp_path):
    result, log = tmp_path / "result.json", tmp_path / "output.log"
    done = [{"id": check_id, "passed": True, "message": ""} for check_id in CHECK_IDS[:5]]
    result.write_text(json.dumps({"checks": done, "running": "forward"}))
    log.write_text("Traceback ...\nSegmentation fault\n")

    status, checks = runner._checks(str(result), None, 30, str(log))
    assert status == "timed out after 30 s" and checks[:5] == done
    assert checks[5]["message"].startswith("the run timed out after 30 s during this check")
    assert all(c["message"] == "not run: the run timed out during forward" for c in checks[6:])

    status, checks = runner._checks(str(result), -11, 30, str(log))
    assert status == "crashed" and checks[:5] == done
    assert checks[5]["message"] == (
        "the grading process died during this check (exit status -11): Segmentation fault (see output.log)"
    )
    assert [c["id"] for c in checks] == list(CHECK_IDS) and not any(c["passed"] for c in checks[5:])


# -- more mistakes, each check alone, in this process -----------------------------------------------


@pytest.fixture
def solution_of(tmp_path, monkeypatch):
    """A Context for the checks with the named variant of correct.py imported as `solution`, in a
    folder holding the tiny data as ./rotated_fashion_mnist."""
    write_tiny_data(tmp_path / "rotated_fashion_mnist")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def load(name):
        (tmp_path / "solution.py").write_text(mistakes.variant(name))
        monkeypatch.delitem(sys.modules, "solution", raising=False)
        ctx = grade_checks.Context()
        grade_checks.check_import(ctx)
        return ctx

    return load


@pytest.mark.parametrize(
    "name,check,words",
    [
        (
            "lr_ignored",
            "training_step",
            f"lr ignored: the steps match Adam with lr=0.001 (the default), "
            f"not the lr={TRAINING.lr:g} given to Trainer",
        ),
        ("no_zero_grad", "training_step", "the gradients accumulate across steps: optimizer.zero_grad()"),
        (
            "adamw",
            "training_step",
            "trainer.optimizer is AdamW with weight_decay=0.01 (Adam's: 0); the homework's is "
            f"torch.optim.Adam(network.parameters(), lr={TRAINING.lr:g})",
        ),
        (  # three steps cannot tell it from Adam: its settings can
            "amsgrad",
            "training_step",
            "trainer.optimizer is Adam with amsgrad=True (Adam's: False)",
        ),
        (
            "relu_hard_coded",
            "structure.mlp",
            "Tanh there (the builder was given Tanh(): is the activation argument ignored?)",
        ),
        (
            "strides_ignored",
            "structure.cnn",
            "create_cnn (strides (1, 2)): position 3 is a Conv2d with "
            "stride=(1, 1), the reference's has stride=(2, 2) (are net_config.strides used?)",
        ),
        ("loss_swapped", "loss_and_mae", "(mae, loss): the two are swapped"),
        ("loss_swapped", "training_step", "the steps minimise the MAE, not the MSE"),
    ],
)
def test_each_further_mistake_is_named(solution_of, name, check, words):
    ctx = solution_of(name)
    with pytest.raises(grade_checks.Mistake) as caught:
        grade_checks.CHECKS[check](ctx)
    assert words in str(caught.value)


def test_a_layer_the_reference_cannot_run_is_named(solution_of):
    ctx = solution_of("correct")
    build_cnn = ctx.module.Trainer.create_cnn
    ctx.module.Trainer.create_cnn = staticmethod(
        lambda c, cfg, act: torch.nn.Sequential(*build_cnn(c, cfg, act), torch.nn.Dropout())
    )
    with pytest.raises(grade_checks.Mistake) as caught:
        grade_checks.check_forward(ctx)
    assert str(caught.value).startswith(
        "create_cnn (the default configuration): the reference cannot run this network: layer 15: "
        "Dropout is not one of the homework's layers"
    )


# -- what the checks rely on -------------------------------------------------------------------------


def test_reference_init_is_the_grading_flavours():
    """init compares with torch layers built from the abstract reference network: the same draws
    as the grading flavour's builders, without drawing JAX weights first."""
    case = Case("tiny", "cnn", NetworkConfiguration((2, 3), (3, 2), (1, 2), (4,)), (1, 12, 12))
    torch.manual_seed(3)
    ours = bridge.to_torch(grade_checks._reference_network(case), copy_weights=False)
    torch.manual_seed(3)
    theirs = grading.Trainer.create_cnn(1, case.config, torch.nn.ReLU())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs.state_dict()[key]), key
