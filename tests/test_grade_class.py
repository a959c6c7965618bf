"""`jaxtrainer grade` on a class: the usual mistakes each caught by the right question and named,
correct code in real students' styles at full marks, and hostile submissions that change nothing
but their own verdict. One grading run serves most tests (it is the expensive part)."""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from grade_solutions import hostile, mistakes

from jaxtrainer import cli
from jaxtrainer.data import build
from jaxtrainer.grade import plan, rubric, sandbox

pytestmark = pytest.mark.slow  # one module fixture grades a whole class (minutes)

N_TRAIN, N_TEST = 150, 40  # batch 128: one full batch and a short one of 22 rows
FULL = 25.0

# name: {check id: words its message must hold}; the checks not named pass (or are n/a).
EXPECTED = {
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
    },
    "widely_copied": {
        "structure.cnn": ["an activation also follows the last Conv2d"],
        "activation_instances": ["one and the same ReLU instance"],
        "training_step": ["the loss alone"],
        "train_loop_logs": ["no log entry before training"],
    },
    "lr_ignored": {"training_step": ["lr ignored: the steps match Adam with lr=0.001 (the default)"]},
    "no_zero_grad": {"training_step": ["the gradients accumulate across steps: optimizer.zero_grad()"]},
    "adamw": {"training_step": ["trainer.optimizer is AdamW with weight_decay=0.01 (Adam's: 0)"]},
    "relu_hard_coded": {
        "structure.mlp": ["Tanh there (the builder was given Tanh(): is the activation argument ignored?)"],
        "structure.cnn": ["is the activation argument ignored?"],
    },
    "strides_ignored": {
        "structure.cnn": [
            "create_cnn (strides (1, 2)): position 3 is a Conv2d with stride=(1, 1), the reference's has "
            "stride=(2, 2) (are net_config.strides used?)"
        ]
    },
    "loss_swapped": {"loss_and_mae": ["(mae, loss): the two are swapped"]},
    "equivariance_stub": {"equivariance": ["draws nothing and returns nothing: it is still a stub"]},
    "equivariance_no_figure": {"equivariance": ["computes 3 maps but draws nothing"]},
    "two_backward": {"training_step": ["two backward calls: the gradient is that of MSE + MAE"]},
    "builder_calls_activation": {
        "structure.mlp": ["the builder calls the activation module it was given (activation())"],
        "structure.cnn": ["the builder calls the activation module it was given (activation())"],
    },
    "activation_class": {"activation_function": ["returned the class ReLU, not a module instance"]},
    "rmse_loss": {"loss_and_mae": ["the loss is the RMSE"]},
    "loss_detached": {"loss_and_mae": ["not a tensor that keeps the graph"]},
    # TODO stubs left (seen in real solutions) cost their own question alone
    "activation_not_implemented": {"activation_function": ["raised NotImplementedError (solution.py, line"]},
    "loss_stub": {"loss_and_mae": ["returned NoneType, not the pair (loss, mae)"]},
    "loss_not_implemented": {"loss_and_mae": ["raised NotImplementedError (solution.py, line"]},
    "loss_stub_no_zero_grad": {
        "loss_and_mae": ["returned NoneType"],
        "training_step": [
            "the gradients accumulate across steps: optimizer.zero_grad()",
            "(with a correct compute_loss_and_mae in place of its own)",
        ],
    },
}
STYLES = ("own_relu_module", "named_layers", "module_subclass", "hard_coded_cuda", "torch_spellings")
# Checks that may say "not graded" where an earlier one failed (the mistake costs once).
NOT_GRADED = {
    "builder_calls_activation": {"activation_instances", "init", "forward"},
    "rmse_loss": {"training_step", "evaluate"},
    "loss_detached": {"training_step"},
    "loss_swapped": {"training_step", "evaluate"},
    "loss_stub": {"training_step", "evaluate"},
    "loss_not_implemented": {"training_step", "evaluate"},
    "loss_stub_no_zero_grad": {"evaluate"},
}
TRAINING_CHECKS = {"loss_and_mae", "training_step", "evaluate"}


def write_tiny_data(folder):
    """A small rotated-PNG folder (random pixels: the checks compare with the reference, they do
    not need a learnable task)."""
    rng = np.random.default_rng(0)
    raw = {
        split: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), None)
        for split, n in (("train", N_TRAIN), ("test", N_TEST))
    }
    return build.write_rotated(raw, folder, n_train=N_TRAIN, n_test=N_TEST, progress=False)["out"]


def digest(folder) -> str:
    """A hash of every file under a folder (or of one file): what a hostile run must not change."""
    h = hashlib.sha256()
    paths = (
        [folder]
        if os.path.isfile(folder)
        else sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names)
    )
    for path in paths:
        h.update(path.encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def sandbox_processes() -> list:
    """The processes of this session's sandboxes (cli.main runs in this process)."""
    return [pid for slot in range(4) for pid in sandbox.processes_of(sandbox.uid_for(slot))]


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """One grading run of the whole class: mistakes, real styles, hostile submissions."""
    tmp = tmp_path_factory.mktemp("class")
    data = write_tiny_data(tmp / "data")
    out = tmp / "out"
    out.mkdir()
    (out / "grades.json").write_text("{}")  # a hostile run aims at these before they are written
    paths = mistakes.write(tmp / "subs", ["correct", *EXPECTED, *STYLES, "syntax_error"])
    paths.pop("correct")
    folder = tmp / "subs" / "correct"  # a folder submission, named by the folder
    folder.mkdir()
    (folder / "solution.py").write_text(mistakes.variant("correct"))
    paths = {"correct": str(folder), **paths}
    (tmp / "outside").mkdir()
    targets = {
        "out": str(out),
        "data": data,
        "other": paths["no_last_activation"],
        "source": os.path.join(os.path.dirname(os.path.abspath(plan.__file__)), "runner.py"),
        "marker": str(tmp / "outside" / "marker.txt"),
    }
    paths.update(hostile.write(tmp / "hostile", targets))
    protected = {name: digest(targets[name]) for name in ("data", "other", "source")}
    argv = ["grade", *paths.values(), "--dataset", data, "--out", str(out), "--overwrite", "--jobs", "2"]
    argv += ["--timeout", "240"]  # --overwrite: OUT holds the grades.json written above
    start = time.monotonic()
    code = cli.main([*argv, "--no-progress"])
    seconds = time.monotonic() - start
    time.sleep(2)  # a detached process that survived would write again by now
    with open(out / "grades.json") as f:
        grades = {s["name"]: s for s in json.load(f)["submissions"]}
    return {
        "code": code,
        "paths": paths,
        "grades": grades,
        "out": out,
        "targets": targets,
        "protected": protected,
        "seconds": seconds,
        "outside": tmp / "outside",
    }


def failed(graded: dict) -> dict:
    return {c["id"]: c["message"] for c in graded["checks"] if c["result"] == "failed"}


def test_every_submission_is_graded_in_the_order_given(graded_class):
    assert graded_class["code"] == 0
    assert list(graded_class["grades"]) == [
        os.path.basename(p).removesuffix(".py") for p in graded_class["paths"].values()
    ]
    for name, graded in graded_class["grades"].items():
        assert [c["id"] for c in graded["checks"]] == list(plan.CHECK_IDS), name
        assert graded["max_score"] == FULL
        assert graded["score"] == pytest.approx(sum(q["score"] for q in graded["questions"]))
        assert all((c["message"] == "") == (c["result"] == "passed") for c in graded["checks"]), name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_mistake_is_caught_by_its_check_and_named(graded_class, name):
    graded = graded_class["grades"][name]
    assert graded["status"] == "graded", graded
    found = failed(graded)
    assert set(found) == set(EXPECTED[name]), (name, found)
    for check_id, words in EXPECTED[name].items():
        for word in words:
            assert word in found[check_id], (name, check_id, found[check_id])
    not_graded = {c["id"] for c in graded["checks"] if c["result"] == "not graded"}
    allowed = NOT_GRADED.get(name, set()) | ({"train_loop_logs"} if TRAINING_CHECKS & set(found) else set())
    assert not_graded <= allowed, (name, not_graded)
    lost = {c["question"] for c in graded["checks"] if c["score"] < c["max_score"]}
    assert lost == {rubric.RULES[c].question for c in EXPECTED[name]} - {None}, (name, lost)
    assert graded["variant"] == "tensor"


@pytest.mark.parametrize("name", ["correct", *STYLES])
def test_correct_code_in_real_styles_scores_full_marks(graded_class, name):
    graded = graded_class["grades"][name]
    assert (graded["score"], graded["status"], failed(graded)) == (FULL, "graded", {})
    assert [q["score"] for q in graded["questions"]] == [1, 5, 6, 4, 6, 3]


def test_a_mistake_costs_once(graded_class):
    """RMSE in compute_loss_and_mae costs Q4 alone: the steps and evaluate follow from it."""
    graded = graded_class["grades"]["rmse_loss"]
    assert graded["score"] == FULL - 4
    by_id = {c["id"]: c for c in graded["checks"]}
    for check_id in ("training_step", "evaluate"):
        assert by_id[check_id]["message"].startswith("not graded: depends on loss_and_mae"), by_id[check_id]


def test_an_import_error_scores_zero_and_says_why(graded_class):
    broken = graded_class["grades"]["syntax_error"]
    assert (broken["status"], broken["score"]) == ("did not import", 0.0)
    assert broken["checks"][0]["message"].startswith("importing solution.py raised SyntaxError")


def test_the_tables_have_a_column_per_question(graded_class):
    with open(graded_class["out"] / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    grades = graded_class["grades"]
    assert [row["name"] for row in rows] == list(grades)
    for row in rows:
        graded = grades[row["name"]]
        assert float(row["score"]) == graded["score"] and row["status"] == graded["status"]
        assert [float(row[q["id"]]) for q in graded["questions"]] == [q["score"] for q in graded["questions"]]
        assert [row[c] for c in plan.CHECK_IDS] == [c["result"] for c in graded["checks"]]
    report = (graded_class["out"] / "submissions" / "no_last_activation" / "report.md").read_text()
    assert report.startswith("# no_last_activation: 20 of 25 points")
    assert "| Q3 `create_cnn` | 1 / 6 |" in report


# -- hostile submissions --------------------------------------------------------------------------


def log_of(graded_class, name) -> str:
    return (graded_class["out"] / "submissions" / name / "output.log").read_text(errors="replace")


@pytest.mark.parametrize(
    "name",
    [
        "patches_the_checks",
        "edits_grader_source",
        "detached_rewriter",
        "reads_others",
        "writes_outside",
        "memory_bomb",
        "output_flood",
        "kills_the_parent",
        "network",
        "leaves_a_sleeper",
        "ships_sitecustomize",
        "grades.json",
        "links_to_others",
    ],
)
def test_a_failed_attack_leaves_the_honest_score(graded_class, name):
    graded = graded_class["grades"][name]
    assert (graded["score"], graded["status"], failed(graded)) == (FULL, "graded", {}), name


@pytest.mark.parametrize(
    "name,status", [("forges_result_file", "crashed"), ("exits_at_import", "did not import")]
)
def test_a_run_that_ends_at_import_scores_zero(graded_class, name, status):
    graded = graded_class["grades"][name]
    assert (graded["score"], graded["status"]) == (0.0, status)


@pytest.mark.parametrize(
    "name",
    [
        "garbles_its_result_at_exit",
        "nests_its_result_deep_at_exit",
        "leaves_a_fifo_for_its_result",
        "links_its_result_folder_to_the_system",
    ],
)
def test_a_result_tampered_with_is_that_submissions_crash_only(graded_class, name):
    """Garbled JSON, JSON nested too deep for Python's parser (it crashed the whole class), a FIFO
    where the result goes (the grader must not block on it), the result folder replaced by a link to
    /etc (the grader, as root, must not read the host's files)."""
    graded = graded_class["grades"][name]
    assert graded["status"] == "crashed" and graded["score"] == 0.0
    assert "the grader cannot read" in graded["checks"][1]["message"]


def test_nothing_outside_a_submissions_folder_changes(graded_class):
    targets = graded_class["targets"]
    assert {name: digest(targets[name]) for name in graded_class["protected"]} == graded_class["protected"]
    assert os.listdir(graded_class["outside"]) == []  # the marker was never written
    assert not (graded_class["out"] / "injected.txt").exists()
    for name in (
        "patches_the_checks",
        "edits_grader_source",
        "reads_others",
        "writes_outside",
        "network",
        "links_to_others",
    ):
        log = log_of(graded_class, name)
        for word in ("IMPORTED", "EDITED", "READ /", "WROTE", "REMOVED", "CONNECTED"):
            assert word not in log, (name, word, log[-2000:])
    assert "blocked import of jaxtrainer" in log_of(graded_class, "patches_the_checks")
    assert "blocked: MemoryError" in log_of(graded_class, "memory_bomb")
    assert "blocked: stolen.py did not come along" in log_of(graded_class, "links_to_others")


def test_no_process_outlives_the_run(graded_class):
    assert sandbox_processes() == []
    assert "sleep 1000" not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_an_output_flood_is_cut_at_10_mb(graded_class):
    path = graded_class["out"] / "submissions" / "output_flood" / "output.log"
    assert 10 << 20 <= path.stat().st_size < (10 << 20) + 65536
    assert "[output cut here: over 10 MB]" in path.read_text(errors="replace")


def test_the_fork_bomb_changes_no_one_elses_score(graded_class):
    grades = graded_class["grades"]
    assert "fork_bomb" in grades and sandbox_processes() == []
    assert grades["correct"]["score"] == FULL


# -- the grader's tests, a timeout, bad usage -------------------------------------------------------

GRADER_TESTS = """
import unittest

from solution import NetworkConfiguration, Trainer


class TestHomework(unittest.TestCase):
    def test_default_data_is_the_embedded_digits(self):
        trainer = Trainer("mlp", NetworkConfiguration(dense_hiddens=(8,)))
        self.assertEqual(tuple(trainer.train[0].shape), (1497, 1, 28, 28))

    def test_fails(self):
        self.assertEqual(len(NetworkConfiguration().n_channels), 4, "four conv layers expected")
"""


def test_grader_tests_ignore_a_submissions_pytest_hooks_and_a_hang_is_cut(tmp_path):
    folders = hostile.write(
        tmp_path / "subs", {k: str(tmp_path / k) for k in ("out", "data", "other", "source", "marker")}
    )
    sleeper = mistakes.write(tmp_path / "subs", ["sleeps_forever"])["sleeps_forever"]
    (tmp_path / "test_homework.py").write_text(GRADER_TESTS)
    out = tmp_path / "out"
    argv = ["grade", folders["ships_sitecustomize"], sleeper, "--tests", str(tmp_path / "test_homework.py")]
    assert cli.main([*argv, "--out", str(out), "--timeout", "60", "--jobs", "2", "--no-progress"]) == 0
    with open(out / "grades.json") as f:
        grades = {s["name"]: s for s in json.load(f)["submissions"]}
    tests = {t["id"].split("::")[-1]: t for t in grades["ships_sitecustomize"]["tests"]}
    assert tests["test_default_data_is_the_embedded_digits"]["outcome"] == "passed"
    assert tests["test_fails"]["outcome"] == "failed"  # its conftest.py would have made it pass
    assert "four conv layers expected" in tests["test_fails"]["message"]
    assert not (tmp_path / "marker").exists()  # sitecustomize.py and usercustomize.py never ran
    hung = grades["sleeps_forever"]
    assert hung["status"] == "timed out after 60 s" and hung["score"] == 0.0
    assert 60 <= hung["seconds"] < 75
    assert sandbox_processes() == []


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.py"], "submission 'missing.py' does not exist"),
        (["notes.txt"], "submission 'notes.txt' is not a .py file or a folder holding solution.py"),
        (["empty"], "submission folder 'empty' holds no solution.py"),
        (["a.py", "b/a.py"], "submissions 'a.py' and 'b/a.py' are both named 'a'"),
        (["a.py", "--jobs", "0"], "--jobs must be an integer >= 1, got '0'"),
        (["a.py", "--timeout", "nan"], "--timeout must be a number of seconds > 0, got 'nan'"),
        (["a.py", "--dataset", "empty"], "--dataset 'empty' is not a folder with train/ and test/"),
        (["a.py", "--tests", "nothing.py"], "--tests 'nothing.py' is not a .py file"),
        (["a.py", "--tests", "b/solution.py"], "the grader's file cannot be named solution.py"),
        (["a.py", "--rubric", "a.py"], "--rubric 'a.py' is not a .toml file"),
        (
            ["a.py", "--similarity-threshold", "2"],
            "--similarity-threshold must be a fraction in [0, 1], got '2'",
        ),
        (["a.py", "--rubric", "bad.toml"], "--rubric 'bad.toml': unknown check 'nope'"),
        (["a.py", "--out", "notes.txt"], "--out"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    for path in ("a.py", "b/a.py", "b/solution.py", "notes.txt"):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        open(path, "w").close()
    (tmp_path / "bad.toml").write_text("[checks.nope]\npoints = 1\n")
    os.mkdir("empty")
    assert cli.main(["grade", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxtrainer: error: ") and message in err and err.count("\n") == 1, err
    assert not os.path.exists("grades")


def test_a_rubric_file_changes_the_points(tmp_path):
    path = tmp_path / "rubric.toml"
    path.write_text(
        "[checks.structure_cnn]\npoints = 3\npartial = true\n"
        '[checks."equivariance"]\nquestion = "Q3"\npoints = 2\n'
    )
    custom = rubric.load(str(path))
    assert custom.max_score == FULL
    verdicts = [{"id": c, "result": "passed", "message": ""} for c in plan.CHECK_IDS]
    verdicts[3] = {"id": "structure.cnn", "result": "failed", "message": "x", "fraction": 0.5}
    checks, questions, total = custom.score(verdicts, imported=True)
    assert total == FULL - 1.5 and dict((q["id"], q["score"]) for q in questions)["Q3"] == 4.5
    checks, questions, total = custom.score(verdicts, imported=False)
    assert total == 0.0


def test_a_grader_bug_on_one_check_costs_that_check_alone_and_is_said(tmp_path, monkeypatch, capsys):
    """A check that raises something the grader did not plan for (a bug of ours, met on one student's
    code) is that check's `grader error`, with its traceback in grader_error.log: the class is still
    graded, grades.json written, and exit status 1 with a warning line says to grade again."""
    from torch_compat import grade_checks

    def broken(self):
        raise TypeError("'int' object is not iterable")

    monkeypatch.setattr(grade_checks.Judge, "check_forward", broken)
    paths = mistakes.write(tmp_path / "subs", ["correct", "rmse_loss"])
    out = tmp_path / "out"
    code = cli.main(["grade", *paths.values(), "--out", str(out), "--no-progress", "--jobs", "2"])
    captured = capsys.readouterr().out
    assert code == 1
    assert (
        "jaxtrainer: warning: the grader itself failed on 2 submissions (correct, rmse_loss): their scores "
        "lack those checks; each one's grader_error.log holds the traceback to report"
    ) in captured
    with open(out / "grades.json") as f:
        grades = {s["name"]: s for s in json.load(f)["submissions"]}
    for name, lost in (("correct", 1), ("rmse_loss", 1 + 4)):  # forward's point; and rmse's Q4
        graded = grades[name]
        assert (graded["status"], graded["score"]) == ("grader error", FULL - lost)
        forward = {c["id"]: c for c in graded["checks"]}["forward"]
        assert forward["result"] == "grader error" and forward["score"] == 0
        assert forward["message"].startswith(
            "the grader failed on this check (TypeError: 'int' object is not iterable in "
            "test_grade_class.py, line"
        )
        log = (out / "submissions" / name / grade_checks.GRADER_ERROR_LOG).read_text()
        assert log.startswith("check forward:\nTraceback (most recent call last):") and "in broken" in log
        assert (
            "| `forward` | Q3 | **grader error** | 0 / 1 |"
            in (out / "submissions" / name / "report.md").read_text()
        )


# -- the loader year ------------------------------------------------------------------------------


def test_the_loader_year_is_graded_offline_on_the_same_rubric(tmp_path):
    """SVHN and CIFAR-10 through torchvision DataLoaders, served locally: both score 25; the silent
    (B,) against (B, 1) broadcast is caught by Q4, named, and costs nothing more; so does a stub."""
    names = ["loader_correct", "loader_cifar", "loader_broadcast", "loader_loss_stub"]
    paths = mistakes.write(tmp_path / "subs", names)
    out = tmp_path / "out"
    argv = ["grade", *paths.values(), "--out", str(out), "--jobs", "2"]
    assert cli.main([*argv, "--no-progress"]) == 0
    with open(out / "grades.json") as f:
        grades = {s["name"]: s for s in json.load(f)["submissions"]}
    for name in ("loader_correct", "loader_cifar"):
        graded = grades[name]
        assert (graded["score"], graded["status"], graded["variant"], failed(graded)) == (
            FULL,
            "graded",
            "loader",
            {},
        )
        not_applicable = {c["id"] for c in graded["checks"] if c["result"] == "not applicable"}
        assert not_applicable == {"train_loop_logs", "equivariance"}
    broadcast = grades["loader_broadcast"]
    assert broadcast["score"] == FULL - 4
    assert set(failed(broadcast)) == {"loss_and_mae"}
    assert (
        "labels of shape (B,) broadcast against predictions (B, 1) to a B x B table; use y.view(-1, 1)"
        in (failed(broadcast)["loss_and_mae"])
    )
    stub = grades["loader_loss_stub"]
    assert (stub["score"], list(failed(stub))) == (FULL - 4, ["loss_and_mae"])
    assert "raised NotImplementedError" in failed(stub)["loss_and_mae"]
    assert sandbox_processes() == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_an_interrupt_kills_every_run_and_keeps_the_finished_grades(tmp_path, sig):
    paths = mistakes.write(tmp_path / "subs", ["correct", "sleeps_forever"])
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=os.pathsep.join(sys.path))
    argv = [sys.executable, "-m", "jaxtrainer.cli", "grade", paths["correct"], paths["sleeps_forever"]]
    proc = subprocess.Popen(
        [*argv, "--out", str(out), "--no-progress", "--jobs", "2"], env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not (out / "submissions" / "correct" / "report.md").exists():  # one finished, one hangs
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.5)
    proc.send_signal(sig)
    printed, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert f"jaxtrainer: interrupted; 1 of 2 graded; reports in {out}" in printed
    with open(out / "grades.json") as f:
        assert [s["name"] for s in json.load(f)["submissions"]] == ["correct"]
    left = [name for name in os.listdir(scratch) if name.startswith("jaxtrainer-grade-")]
    assert left == []  # the runs' folders and the data are gone (torch keeps its own cache there)
    ps = subprocess.run(["ps", "-eo", "pid,ppid,stat,args"], capture_output=True, text=True).stdout
    left = [line for line in ps.splitlines() if "/grader/collector.py" in line or "bwrap --" in line]
    assert left == [], ps
