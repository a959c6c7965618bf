"""Gradescope's autograder format: one graded submission as the `results/results.json` Gradescope
reads (https://gradescope-autograders.readthedocs.io/en/latest/specs/), and where the recipe that
runs `jaxtrainer grade` inside Gradescope (`setup.sh`, `run_autograder`) is shipped.

Every check is one Gradescope test named by its question and id ("Q2 structure.mlp"), so a student
sees on Gradescope the same verdicts and messages as in report.md. No JAX, no torch here.
"""

from __future__ import annotations

import os

from .. import files

RESULTS_FILE = "results.json"
RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradescope_recipe")
PASSING = ("passed", "not applicable")  # shown green; "failed" and "not graded" red


def _output(result: str, message: str) -> str:
    if not message:
        return result
    return message if message.startswith(result) else f"{result}: {message}"


def _check(check: dict) -> dict:
    name = f"{check['question']} {check['id']}" if check.get("question") else check["id"]
    return {
        "name": name,
        "score": float(check["score"]),
        "max_score": float(check["max_score"]),
        "status": "passed" if check["result"] in PASSING else "failed",
        "output": _output(check["result"], check["message"]),
        "visibility": "visible",
    }


def _ta_test(test: dict) -> dict:
    """One of the TA's own --tests: shown, worth no points (the rubric gives the points)."""
    return {
        "name": f"test {test['id']}",
        "score": 0.0,
        "max_score": 0.0,
        "status": "passed" if test["outcome"] == "passed" else "failed",
        "output": _output(test["outcome"], test["message"]),
        "visibility": "visible",
    }


def summary(graded: dict) -> str:
    """One line: the status, the points and each question's, e.g. `graded (tensor year): 21.5 of 25
    points; Q1 1/1, Q2 4/5, ...`."""
    questions = ", ".join(f"{q['id']} {q['score']:g}/{q['max_score']:g}" for q in graded["questions"])
    points = f"{graded['score']:g} of {graded['max_score']:g} points"
    year = f" ({graded['variant']} year)" if graded.get("variant") else ""  # unknown when it did not import
    line = f"{graded['status']}{year}: {points}"
    return f"{line}; {questions}" if questions else line


def results_json(graded: dict) -> dict:
    """The results.json of one graded submission: its score, a one-line summary, one test per check
    (then the TA's --tests); the run's stdout (the grader's log) stays hidden from the student."""
    return {
        "score": float(graded["score"]),
        "execution_time": round(graded["seconds"]),
        "output": summary(graded),
        "stdout_visibility": "hidden",
        "tests": [_check(check) for check in graded["checks"]]
        + [_ta_test(test) for test in graded.get("tests", [])],
    }


def write_results(graded: dict, path: str) -> str:
    """`results_json(graded)` written whole to `path` (OUT/<name>/results.json under --format gradescope)."""
    return files.write_json(path, results_json(graded))
