"""What `jaxtrainer grade` writes: OUT/grades.json (the form other tools parse), OUT/grades.csv
(one row per submission, one column per check) and OUT/<name>/report.md (for the student)."""

from __future__ import annotations

import csv
import os
from typing import List, Sequence

from .. import files
from .plan import CHECK_IDS
from .runner import LOG_FILE

REPORT_FILE = "report.md"


def _cell(text: str) -> str:
    """Text that stays in one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def report_text(graded: dict) -> str:
    checks = graded["checks"]
    passed = sum(check["passed"] for check in checks)
    lines = [
        f"# {graded['name']}: {passed} of {len(checks)} checks passed (score {graded['score']:g})",
        "",
        f"- submission: `{graded['path']}`",
        f"- status: {graded['status']} ({graded['seconds']:g} s)",
        f"- the run's output (stdout and stderr): `{LOG_FILE}`",
        "",
        "| check | result | what is wrong |",
        "|---|---|---|",
    ]
    for check in checks:
        result = "passed" if check["passed"] else "**failed**"
        lines.append(f"| `{check['id']}` | {result} | {_cell(check['message'])} |")
    if "tests" in graded:
        lines += ["", "## The grader's tests", "", "| test | outcome | message |", "|---|---|---|"]
        for test in graded["tests"]:
            lines.append(f"| `{test['id']}` | {test['outcome']} | {_cell(test['message'])} |")
    return "\n".join(lines) + "\n"


def write_report(graded: dict, out: str) -> str:
    path = os.path.join(out, graded["name"], REPORT_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return files.write_text(path, report_text(graded))


def _test_ids(results: Sequence[dict]) -> List[str]:
    """Every grader test seen, in the order first seen."""
    ids = {}
    for graded in results:
        for test in graded.get("tests", ()):
            ids.setdefault(test["id"], None)
    return list(ids)


def write_grades(results: Sequence[dict], out: str) -> List[str]:
    """grades.json and grades.csv; check columns hold 1 (passed) or 0, test columns the outcome."""
    os.makedirs(out, exist_ok=True)
    json_path, csv_path = os.path.join(out, "grades.json"), os.path.join(out, "grades.csv")
    files.write_json(json_path, {"submissions": list(results)})
    test_ids = _test_ids(results)

    def rows(f):
        writer = csv.writer(f)
        writer.writerow(["name", "score", "status", *CHECK_IDS, *(f"test:{t}" for t in test_ids)])
        for graded in results:
            passed = {check["id"]: int(check["passed"]) for check in graded["checks"]}
            outcomes = {test["id"]: test["outcome"] for test in graded.get("tests", ())}
            writer.writerow(
                [
                    graded["name"],
                    graded["score"],
                    graded["status"],
                    *(passed[c] for c in CHECK_IDS),
                    *(outcomes.get(t, "") for t in test_ids),
                ]
            )

    files.atomic_write(csv_path, rows)
    return [json_path, csv_path]
