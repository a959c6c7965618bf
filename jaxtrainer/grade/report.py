"""What `jaxtrainer grade` writes: OUT/grades.json (the form other tools parse), OUT/grades.csv
(one row per submission: a column per question, the total, a column per check) and
OUT/submissions/<name>/report.md (for the student). Names and messages come from hostile code:
CSV cells are neutralised against spreadsheet formulas, Markdown cells kept on one line."""

from __future__ import annotations

import csv
import os
from typing import List, Sequence

from .. import files
from ..tables import markdown_table
from .plan import CHECK_IDS
from .runner import LOG_FILE, submission_folder

REPORT_FILE = "report.md"
_RESULT_MARKS = {
    "passed": "passed",
    "failed": "**failed**",
    "not graded": "not graded",
    "not applicable": "n/a",
    "grader error": "**grader error**",
}


def report_text(graded: dict) -> str:
    """The student's report.md: the score, a table of questions, of checks and of the grader's tests."""
    questions = [
        (f"{q['id']} `{q['title']}`", f"{q['score']:g} / {q['max_score']:g}") for q in graded["questions"]
    ]
    checks = [
        (
            f"`{c['id']}`",
            c["question"] or "-",
            _RESULT_MARKS[c["result"]],
            f"{c['score']:g} / {c['max_score']:g}" if c["max_score"] else "-",
            c["message"],
        )
        for c in graded["checks"]
    ]
    lines = [
        f"# {graded['name']}: {graded['score']:g} of {graded['max_score']:g} points",
        "",
        f"- submission: `{graded['path']}`",
        f"- status: {graded['status']} ({graded['seconds']:g} s); year: {graded.get('variant') or 'unknown'}",
        f"- the run's output (stdout and stderr): `{LOG_FILE}`",
        "",
        markdown_table(("question", "points"), questions),
        "",
        markdown_table(("check", "question", "result", "points", "what is wrong"), checks),
    ]
    if "tests" in graded:
        tests = [(f"`{t['id']}`", t["outcome"], t["message"]) for t in graded["tests"]]
        lines += ["", "## The grader's tests", "", markdown_table(("test", "outcome", "message"), tests)]
    return "\n".join(lines) + "\n"


def write_report(graded: dict, out: str) -> str:
    """The student's report.md in the submission's folder under `out`; returns its path."""
    folder = submission_folder(out, graded["name"])
    os.makedirs(folder, exist_ok=True)
    return files.write_text(os.path.join(folder, REPORT_FILE), report_text(graded))


def _test_ids(results: Sequence[dict]) -> List[str]:
    """Every grader test seen, in the order first seen."""
    ids = {}
    for graded in results:
        for test in graded.get("tests", ()):
            ids.setdefault(test["id"], None)
    return list(ids)


def write_grades(results: Sequence[dict], out: str) -> List[str]:
    """grades.json and grades.csv; check columns hold the result, test columns the outcome."""
    os.makedirs(out, exist_ok=True)
    json_path, csv_path = os.path.join(out, "grades.json"), os.path.join(out, "grades.csv")
    files.write_json(json_path, {"submissions": list(results)})
    test_ids = _test_ids(results)
    question_ids = [q["id"] for q in results[0]["questions"]] if results else []

    def rows(f):
        writer = csv.writer(f)
        writer.writerow(
            [
                "name",
                "score",
                "max_score",
                "status",
                *question_ids,
                *CHECK_IDS,
                *(f"test:{t}" for t in test_ids),
            ]
        )
        for graded in results:
            questions = {q["id"]: q["score"] for q in graded["questions"]}
            checks = {check["id"]: check["result"] for check in graded["checks"]}
            outcomes = {test["id"]: test["outcome"] for test in graded.get("tests", ())}
            row = [graded["name"], graded["score"], graded["max_score"], graded["status"]]
            row += [questions.get(q, "") for q in question_ids]
            row += [checks[c] for c in CHECK_IDS] + [outcomes.get(t, "") for t in test_ids]
            writer.writerow([files.spreadsheet_safe(v) if isinstance(v, str) else v for v in row])

    files.atomic_write(csv_path, rows)
    return [json_path, csv_path]
