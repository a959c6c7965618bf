"""Gradescope's format (`jaxtrainer.grade.gradescope`) and its recipe: results.json holds exactly
Gradescope's keys with one test per check, and `run_autograder` grades the one submission of a fake
/autograder layout through a stand-in `jaxtrainer` that records how it was called."""

import json
import os
import subprocess
import sys

import pytest

from jaxtrainer.grade import gradescope

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_AUTOGRADER = os.path.join(gradescope.RECIPE, "run_autograder")

# Gradescope's documented keys (https://gradescope-autograders.readthedocs.io/en/latest/specs/)
TOP_KEYS = {"score", "execution_time", "output", "visibility", "stdout_visibility", "extra_data", "tests"}
TOP_KEYS |= {"output_format", "test_output_format", "test_name_format", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format"}
TEST_KEYS |= {"tags", "visibility", "extra_data"}


def check(id, question, result, message, score, max_score):
    return dict(id=id, question=question, result=result, message=message, score=score, max_score=max_score)


GRADED = {
    "name": "alice",
    "path": "/class/alice.py",
    "status": "graded",
    "variant": "tensor",
    "seconds": 41.6,
    "score": 6.5,
    "max_score": 12.0,
    "questions": [
        {"id": "Q1", "title": "create_activation_function", "score": 1.0, "max_score": 1.0},
        {"id": "Q2", "title": "create_mlp", "score": 2.5, "max_score": 5.0},
        {"id": "Q3", "title": "create_cnn", "score": 3.0, "max_score": 6.0},
    ],
    "checks": [
        check("activation_function", "Q1", "passed", "", 1.0, 1.0),
        check("structure.mlp", "Q2", "failed", "layer 3 is Tanh, the reference has ReLU there", 0.0, 2.5),
        check("forward.mlp", "Q2", "passed", "", 2.5, 2.5),
        check("structure.cnn", "Q3", "passed", "", 3.0, 3.0),
        check("init.cnn", "Q3", "not graded", "not graded: depends on structure.cnn", 0.0, 3.0),
        check(
            "equivariance", None, "not applicable", "the loader year has no equivariance question", 0.0, 0.0
        ),
    ],
    "tests": [{"id": "test_shapes", "outcome": "failed", "message": "AssertionError: (4, 1) != (4,)"}],
}


def test_results_json_has_gradescope_keys_one_test_per_check_and_the_score():
    results = gradescope.results_json(GRADED)
    assert set(results) <= TOP_KEYS and all(set(test) <= TEST_KEYS for test in results["tests"])
    assert results["score"] == 6.5 == sum(test["score"] for test in results["tests"])
    assert sum(test["max_score"] for test in results["tests"]) == GRADED["max_score"]
    assert results["execution_time"] == 42 and results["stdout_visibility"] == "hidden"
    assert results["output"] == "graded (tensor year): 6.5 of 12 points; Q1 1/1, Q2 2.5/5, Q3 3/6"
    assert "\n" not in results["output"]
    tests = {test["name"]: test for test in results["tests"]}
    assert list(tests) == [
        "Q1 activation_function",
        "Q2 structure.mlp",
        "Q2 forward.mlp",
        "Q3 structure.cnn",
        "Q3 init.cnn",
        "equivariance",
        "test test_shapes",
    ]
    assert {test["visibility"] for test in results["tests"]} == {"visible"}  # 0-point ones too
    assert tests["Q2 structure.mlp"] == {
        "name": "Q2 structure.mlp",
        "score": 0.0,
        "max_score": 2.5,
        "status": "failed",
        "output": "failed: layer 3 is Tanh, the reference has ReLU there",
        "visibility": "visible",
    }
    assert tests["Q1 activation_function"]["output"] == "passed"
    assert tests["Q3 init.cnn"]["output"] == "not graded: depends on structure.cnn"
    assert tests["Q3 init.cnn"]["status"] == "failed"
    assert tests["equivariance"]["status"] == "passed" and tests["equivariance"]["max_score"] == 0
    assert tests["test test_shapes"]["output"] == "failed: AssertionError: (4, 1) != (4,)"
    assert json.loads(json.dumps(results)) == results  # plain JSON types only


def test_a_submission_that_did_not_import_scores_zero_with_its_status():
    graded = dict(GRADED, status="did not import", score=0.0, questions=[], checks=[])
    del graded["tests"]
    results = gradescope.results_json(graded)
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"] == "did not import (tensor year): 0 of 12 points"
    results = gradescope.results_json(dict(graded, variant=None))  # no code, so no year detected
    assert results["output"] == "did not import: 0 of 12 points"


def test_write_results_writes_the_json(tmp_path):
    path = gradescope.write_results(GRADED, str(tmp_path / "results.json"))
    with open(path) as f:
        assert json.load(f) == gradescope.results_json(GRADED)
    assert os.listdir(tmp_path) == ["results.json"]  # no temporary file left


# A stand-in for `jaxtrainer`: records its arguments and the files it was given, then writes
# GRADED's results.json where `--format gradescope` writes it (OUT/submissions/<name>/results.json), or fails.
FAKE_JAXTRAINER = """\
#!{python}
import json, os, sys
sys.path.insert(0, {root!r})
from jaxtrainer.grade import gradescope
args = sys.argv[1:]
folder, out = args[1], args[args.index("--out") + 1]
files = {{name: open(os.path.join(folder, name)).read() for name in sorted(os.listdir(folder))}}
with open(os.environ["FAKE_RECORD"], "w") as f:
    json.dump({{"args": args, "files": files}}, f)
if os.environ.get("FAKE_FAIL"):
    print("Traceback (most recent call last):", file=sys.stderr)
    print("jaxtrainer: error: the sandbox could not start", file=sys.stderr)
    sys.exit(1)
target = os.path.join(out, "submissions", os.path.basename(folder))
os.makedirs(target)
gradescope.write_results({graded!r}, os.path.join(target, "results.json"))
"""


@pytest.fixture
def autograder(tmp_path):
    """A fake /autograder (AUTOGRADER_ROOT) and a way to run the recipe's run_autograder in it."""
    (tmp_path / "submission").mkdir()
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    fake = bin_folder / "jaxtrainer"
    fake.write_text(FAKE_JAXTRAINER.format(python=sys.executable, root=ROOT, graded=GRADED))
    fake.chmod(0o755)
    record = tmp_path / "record.json"

    def run(fail=False):
        env = dict(os.environ, AUTOGRADER_ROOT=str(tmp_path), FAKE_RECORD=str(record))
        env["PATH"] = f"{bin_folder}{os.pathsep}{env['PATH']}"
        if fail:
            env["FAKE_FAIL"] = "1"
        done = subprocess.run([RUN_AUTOGRADER], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        with open(tmp_path / "results" / "results.json") as f:
            results = json.load(f)
        called = json.loads(record.read_text()) if record.exists() else None
        return results, called, done

    return tmp_path, run


def test_run_autograder_grades_the_submission_and_copies_its_results(autograder):
    root, run = autograder
    (root / "submission" / "solution.py").write_text("from helpers import model\n")
    (root / "submission" / "helpers.py").write_text("model = 1\n")
    (root / "submission" / "notes.txt").write_text("not code")
    results, called, _ = run()
    assert results == gradescope.results_json(GRADED)
    args = called["args"]
    staged, out = args[1], args[args.index("--out") + 1]
    assert args == ["grade", staged, "--format", "gradescope", "--out", out, "--no-progress"]
    assert os.path.basename(staged) == "submission" and staged != str(root / "submission")
    assert called["files"] == {"helpers.py": "model = 1\n", "solution.py": "from helpers import model\n"}
    assert not os.path.exists(staged) and not os.path.exists(out)  # its work folder is removed


def test_run_autograder_takes_the_only_py_file_or_solution_py_in_a_folder(autograder):
    root, run = autograder
    (root / "submission" / "devoir2.py").write_text("x = 2\n")
    _, called, _ = run()
    assert called["files"] == {"solution.py": "x = 2\n"}
    # a zip of a folder: solution.py and its helpers there, a notebook export elsewhere
    (root / "submission" / "devoir2.py").unlink()
    (root / "submission" / "hw" / "sub").mkdir(parents=True)
    (root / "submission" / "hw" / "solution.py").write_text("import util\n")
    (root / "submission" / "hw" / "util.py").write_text("y = 3\n")
    (root / "submission" / "hw" / "sub" / "export.py").write_text("z = 4\n")
    _, called, _ = run()
    assert called["files"] == {"solution.py": "import util\n", "util.py": "y = 3\n"}


def test_run_autograder_writes_a_zero_score_when_grading_fails(autograder):
    root, run = autograder
    (root / "submission" / "solution.py").write_text("x = 1\n")
    results, called, done = run(fail=True)
    assert called is not None  # the grader was called, and failed
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith("Not graded: the grader failed (exit status 1): ")
    assert results["output"].endswith("jaxtrainer: error: the sandbox could not start")
    assert "the sandbox could not start" in done.stderr  # for the instructor, in Gradescope's stdout


def test_run_autograder_without_a_solution_says_what_to_hand_in(autograder):
    root, run = autograder
    (root / "submission" / "a.py").write_text("a = 1\n")
    (root / "submission" / "b.py").write_text("b = 1\n")
    results, called, _ = run()
    assert called is None  # nothing to grade: the grader is not called
    assert results == {
        "score": 0.0,
        "output": "Not graded: no solution to grade: hand in solution.py, or one .py file "
        "(found 2 .py files: a.py, b.py)",
        "tests": [],
    }


# Stand-ins for what setup.sh runs on Gradescope's image: each records its command line; python3
# makes a venv whose pip records too (the real python3 answers everything else).
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$SETUP_RECORD"
"""
FAKE_PYTHON3 = f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin" && cp "$(dirname "$0")/apt-get" "$3/bin/pip" && exit 0
fi
exec {sys.executable} "$@"
"""


def run_setup(tmp_path, wheels):
    source = tmp_path / "source"
    source.mkdir()
    for wheel in wheels:
        (source / wheel).write_text("")
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    for name, text in (
        ("apt-get", RECORDER),
        ("ln", RECORDER),
        ("jaxtrainer", RECORDER),
        ("python3", FAKE_PYTHON3),
    ):
        (bin_folder / name).write_text(text)
        (bin_folder / name).chmod(0o755)
    record = tmp_path / "record.txt"
    env = dict(os.environ, AUTOGRADER_ROOT=str(tmp_path), SETUP_RECORD=str(record))
    env["PATH"] = f"{bin_folder}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", os.path.join(gradescope.RECIPE, "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, record.read_text().splitlines()


def test_setup_installs_bubblewrap_pinned_cpu_torch_and_the_wheel_with_its_grade_extra(tmp_path):
    done, commands = run_setup(tmp_path, ["jaxtrainer-0.1.0-py3-none-any.whl"])
    assert done.returncode == 0, done.stderr
    wheel = tmp_path / "source" / "jaxtrainer-0.1.0-py3-none-any.whl"
    assert commands == [
        "apt-get update",
        "apt-get install -y --no-install-recommends python3 python3-venv bubblewrap",
        "pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0",
        f"pip install {wheel}[grade] torch==2.13.0",
        f"ln -sf {tmp_path}/venv/bin/jaxtrainer /usr/local/bin/jaxtrainer",
        "jaxtrainer grade --help",
    ]


@pytest.mark.parametrize(
    "wheels", [[], ["jaxtrainer-0.1.0-py3-none-any.whl", "jaxtrainer-0.2.0-py3-none-any.whl"]]
)
def test_setup_needs_exactly_one_wheel(tmp_path, wheels):
    done, commands = run_setup(tmp_path, wheels)
    assert done.returncode == 1
    assert "setup.sh: put exactly one jaxtrainer-*.whl in the autograder zip" in done.stderr
    assert not any(command.startswith("ln ") for command in commands)


def test_the_recipe_is_executable():
    for name in ("setup.sh", "run_autograder"):  # Gradescope runs them as they are
        assert os.access(os.path.join(gradescope.RECIPE, name), os.X_OK), name


@pytest.mark.slow
def test_run_autograder_end_to_end_with_the_real_grader(tmp_path):
    """The recipe on a fake /autograder with the real `jaxtrainer grade` (sandbox included): a
    correct solution handed in as the only .py file gets 25 points in Gradescope's file."""
    from grade_solutions import mistakes

    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "my_homework.py").write_text(mistakes.variant("correct"))
    env = dict(os.environ, AUTOGRADER_ROOT=str(tmp_path))
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    done = subprocess.run([RUN_AUTOGRADER], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "results" / "results.json") as f:
        results = json.load(f)
    assert results["score"] == 25.0, results["output"]
    assert results["output"].startswith("graded (tensor year): 25 of 25 points")
    assert {t["name"] for t in results["tests"]} >= {"Q1 activation_function", "Q6 evaluate"}
    assert all(t["score"] == t["max_score"] for t in results["tests"])
