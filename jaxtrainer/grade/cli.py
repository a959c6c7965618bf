"""`jaxtrainer grade`: its arguments, their checks (bad usage exits 2 with one line naming the
value), a progress bar over submissions, and the outputs."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os

from .submissions import SOLUTION_FILE

DEFAULT_OUT = "grades"
DEFAULT_TIMEOUT = 300.0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "grade",
        help="check students' PyTorch solutions against the reference and say what is wrong",
        description="Grade each submission in its own process against the JAX reference: the layer "
        "structure, initialisation, forward pass, loss, Adam steps and train_loop logs; writes "
        "OUT/grades.json, OUT/grades.csv and OUT/<name>/report.md.",
    )
    p.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help=f"a .py file (named by its stem) or a folder holding {SOLUTION_FILE} (named by the folder)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="train/ and test/ PNGs named <index>_<angle>.png, each submission's ./rotated_fashion_mnist "
        "(default: the embedded digits written in that format)",
    )
    p.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})"
    )
    p.add_argument(
        "--timeout",
        default=str(DEFAULT_TIMEOUT),
        metavar="SECONDS",
        help=f"wall clock per submission, checks and --tests together (default: {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument("--jobs", default="1", metavar="N", help="submissions graded at a time (default: 1)")
    p.add_argument(
        "--tests",
        metavar="GRADER_TESTS.py",
        help="also run this unittest/pytest file against each submission (imported as solution)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run, interrupted="the finished reports are in {out}")


def _number(text: str, option: str, kind, lowest, allowed: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < lowest:
        raise ValueError(f"{option} must be {allowed}, got {text!r}")
    return value


def _check_data(data: str | None) -> str | None:
    if data is not None and not all(os.path.isdir(os.path.join(data, split)) for split in ("train", "test")):
        raise ValueError(
            f"--data {data!r} is not a folder with train/ and test/ of PNGs named <index>_<angle>.png"
        )
    return data


def _check_tests(tests: str | None) -> str | None:
    if tests is None:
        return None
    if not os.path.isfile(tests) or not tests.endswith(".py"):
        raise ValueError(f"--tests {tests!r} is not a .py file")
    if os.path.basename(tests) == SOLUTION_FILE:
        raise ValueError(
            f"--tests {tests!r}: the grader's file cannot be named {SOLUTION_FILE} (the submission is)"
        )
    if importlib.util.find_spec("pytest") is None:
        raise ValueError("--tests needs pytest installed (pip install pytest)")
    return tests


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .report import write_grades, write_report
    from .runner import grade
    from .submissions import find

    timeout = _number(args.timeout, "--timeout", float, 1e-3, "a number of seconds > 0")
    jobs = _number(args.jobs, "--jobs", int, 1, "an integer >= 1")
    submissions = find(args.submissions)
    data, tests = _check_data(args.data), _check_tests(args.tests)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out {args.out!r} exists and is not a folder")
    bar = tqdm(total=len(submissions), desc="grading", unit="submission", disable=args.no_progress)

    def on_done(graded: dict) -> None:
        write_report(graded, args.out)
        bar.set_postfix_str(f"{graded['name']}: {graded['score']:g}")
        bar.update()

    try:
        results = grade(
            submissions, args.out, data=data, timeout=timeout, jobs=jobs, tests=tests, on_done=on_done
        )
    finally:
        bar.close()
    paths = write_grades(results, args.out)
    for graded in results:
        print(f"{graded['score']:6.2f}  {graded['name']}  ({graded['status']})")
    print(f"wrote {', '.join(paths)} and {len(results)} report.md")
    return 0
