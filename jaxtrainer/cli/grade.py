"""`jaxtrainer grade`: its arguments and their checks (bad usage exits 2 with one line naming the
value); the grading itself is `jaxtrainer/grade/`."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os

from ..errors import InputError
from ..grade.submissions import SOLUTION_FILE
from . import options


def add_parser(subparsers) -> None:
    """`grade`; numbers and paths stay text here, checked in `run` so each message names its option."""
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
        "--dataset",
        metavar="DIR",
        help="a folder with train/ and test/ PNGs named <index>_<angle>.png, each submission's "
        "./rotated_fashion_mnist (default: the embedded digits written in that format)",
    )
    options.option(p, "--out", "grades", "output folder", metavar="DIR")
    options.option(
        p, "--timeout", "300", "wall clock per submission, checks and --tests together", metavar="SECONDS"
    )
    options.shared(p, "--overwrite")
    options.option(p, "--jobs", "1", "submissions graded at a time", metavar="N")
    p.add_argument(
        "--tests",
        metavar="GRADER_TESTS.py",
        help="also run this unittest/pytest file against each submission, imported as solution "
        "(default: none)",
    )
    p.add_argument(
        "--variant",
        choices=("tensor", "loader"),
        help="the homework's year for every submission: tensor (rotated Fashion-MNIST tensors) or "
        "loader (SVHN/CIFAR-10 DataLoaders) (default: detected per submission)",
    )
    _add_reporting_options(p)
    options.shared(p, "--no-progress")
    p.set_defaults(run=run, backend=False)


def _add_reporting_options(p) -> None:
    """How grades are scored and reported: the rubric, the starter code, similarity, the format and
    the sandbox."""
    p.add_argument(
        "--rubric", metavar="FILE.toml", help="points per check and question (default: the statement's 25)"
    )
    p.add_argument(
        "--template",
        metavar="FILE.py",
        help="the starter code every student got: left out of the similarity comparison (default: none)",
    )
    what = "pairs sharing at least this fraction of code go to similarity.csv/html"
    options.option(p, "--similarity-threshold", "0.5", what, metavar="FRACTION")
    p.add_argument(
        "--format",
        choices=("report", "gradescope"),
        default="report",
        help="also write OUT/submissions/<name>/results.json in Gradescope's autograder format "
        "(default: report, the Markdown report only)",
    )
    p.add_argument(
        "--sandbox",
        choices=("bwrap", "none"),
        default="bwrap",
        help="bwrap: each submission in a bubblewrap sandbox (default); none: no sandbox, for code you trust",
    )


def _number(text: str, option: str, kind, lowest, allowed: str, highest=math.inf):
    with contextlib.suppress(ValueError):
        value = kind(text)
        if math.isfinite(value) and lowest <= value <= highest:
            return value
    raise InputError(f"{option} must be {allowed}, got {text!r}")


def _check_dataset(data: str | None) -> str | None:
    if data is not None and not all(os.path.isdir(os.path.join(data, split)) for split in ("train", "test")):
        raise InputError(
            f"--dataset {data!r} is not a folder with train/ and test/ of PNGs named <index>_<angle>.png"
        )
    return data


def _check_file(path: str | None, option: str, suffix: str) -> str | None:
    if path is not None and (not os.path.isfile(path) or not path.endswith(suffix)):
        raise InputError(f"{option} {path!r} is not a {suffix} file")
    return path


def _check_tests(tests: str | None) -> str | None:
    if tests is None:
        return None
    _check_file(tests, "--tests", ".py")
    if os.path.basename(tests) == SOLUTION_FILE:
        raise InputError(
            f"--tests {tests!r}: the grader's file cannot be named {SOLUTION_FILE} (the submission is)"
        )
    if importlib.util.find_spec("pytest") is None:
        raise InputError("--tests needs pytest installed (pip install pytest)")
    return tests


def run(args: argparse.Namespace) -> int:
    """Checks the values, claims --out, grades; returns the session's exit status."""
    from ..grade.session import Session
    from ..grade.similarity import CSV_FILE, HTML_FILE

    session = Session(
        submissions=args.submissions,
        out=args.out,
        data=_check_dataset(args.dataset),
        timeout=_number(args.timeout, "--timeout", float, 1e-3, "a number of seconds > 0"),
        jobs=_number(args.jobs, "--jobs", int, 1, "an integer >= 1"),
        tests=_check_tests(args.tests),
        variant=args.variant,
        rubric=_check_file(args.rubric, "--rubric", ".toml"),
        template=_check_file(args.template, "--template", ".py"),
        threshold=_number(
            args.similarity_threshold, "--similarity-threshold", float, 0.0, "a fraction in [0, 1]", 1.0
        ),
        gradescope=args.format == "gradescope",
        sandbox=args.sandbox,
        progress=not args.no_progress,
    )
    options.claim_output(
        args.out, args.overwrite, ("grades.json", "grades.csv", CSV_FILE, HTML_FILE, "submissions")
    )
    return session.run()
