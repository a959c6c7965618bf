"""Grading runs: each submission's code runs in its own sandbox (`sandbox.py`) and only hands back
raw values (`collector.py`); the verdicts and the score are decided here, in the grader's process,
against the reference (`torch_compat.grade_checks`) and the rubric (`rubric.py`).

Per submission: a private folder holds its files, its copy of the loader year's data and a
read-only view of the PNG data; a fresh request (new seeds) goes in, the collector's values come
out; everything it started is dead before its verdicts are written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Dict, List, NamedTuple, Sequence

from jaxtrainer.data import DEFAULT_FOLDER

from . import plan, sandbox
from .rubric import Rubric
from .submissions import Submission

HERE = os.path.dirname(os.path.abspath(__file__))
GRADER_FILES = ("collector.py", "sandbox_boot.py")  # standalone: they import nothing of the project
RESULT_FOLDER = ".grade-out"
JUNIT_FILE = ".grade-tests.xml"
LOG_FILE = "output.log"
LOADER_FOLDER = "data"  # the loader year's torchvision root, as its template names it
_JUDGING = threading.Lock()  # one judge at a time: the reference's programs are compiled once


class Settings(NamedTuple):
    """What every submission's run shares, fixed once per `grade` command (paths absolute)."""

    data: str  # a rotated-PNG folder, absolute: each run's read-only ./rotated_fashion_mnist
    loader_data: str  # the loader year's torchvision files: each run gets its own copy in ./data
    out: str  # OUT/submissions/<name>/ receives each submission's output.log and report
    timeout: float  # seconds of wall clock per submission, checks and grader's tests together
    tests: str | None  # the grader's own test file, absolute
    threads: int  # CPU threads per run (the cores shared among the jobs)
    variant: str | None  # forced year, or None to detect it per submission
    sandbox: sandbox.Sandbox
    rubric: Rubric
    scratch: str  # this grading run's private temporary folder


def submission_folder(out: str, name: str) -> str:
    """OUT/submissions/<name>/: one submission's output.log, report and results.json."""
    return os.path.join(out, "submissions", name)


def _grader_files(request: dict, private: str) -> dict:
    """{name: host path} of /grader: the standalone grader files and this run's request."""
    files = {
        name: os.path.join(HERE, name) for name in GRADER_FILES if os.path.exists(os.path.join(HERE, name))
    }
    path = os.path.join(private, "request.json")
    with open(path, "w") as f:
        json.dump(request, f)
    files["request.json"] = path
    return files


def _prepare(submission: Submission, settings: Settings, uid: int | None) -> tuple:
    """(private folder, work folder): the work folder holds the submission and its data, owned by
    the run's uid; the private one (request, pytest config) is the grader's."""
    private = tempfile.mkdtemp(prefix="run-", dir=settings.scratch)
    work = os.path.join(private, "work")
    os.mkdir(work)
    submission.copy_to(work)
    shutil.copytree(settings.loader_data, os.path.join(work, LOADER_FOLDER))
    os.mkdir(os.path.join(work, DEFAULT_FOLDER))  # the mount point of the read-only PNG view
    if settings.sandbox.mode == "none":  # no mount: the run reads the TA's folder through a link
        os.rmdir(os.path.join(work, DEFAULT_FOLDER))
        os.symlink(settings.data, os.path.join(work, DEFAULT_FOLDER))
    if uid is not None:
        for root, dirs, names in os.walk(work):
            for name in [*dirs, *names]:
                os.lchown(os.path.join(root, name), uid, uid)
        os.chown(work, uid, uid)
    os.chmod(private, 0o755)
    return private, work


class Place(NamedTuple):
    """Where a run finds the grader's files and its own folder: /grader and /work in the sandbox,
    the real folders without one."""

    grader: str
    work: str


def _place(settings: Settings, private: str, work: str, files: dict) -> Place:
    if settings.sandbox.mode != "none":
        return Place(sandbox.GRADER, sandbox.WORK)
    grader = os.path.join(private, "grader")
    os.makedirs(grader, exist_ok=True)
    for name, path in files.items():
        shutil.copyfile(path, os.path.join(grader, name))
    return Place(grader, work)


def _command(settings: Settings, argv: List[str], work: str, files: dict, uid: int | None) -> List[str]:
    env = {
        "MPLBACKEND": "Agg",  # a student's plt.show() must not wait for a window
        "OMP_NUM_THREADS": str(settings.threads),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    if settings.sandbox.mode == "none":
        env["PATH"] = os.environ.get("PATH", "")
        return [
            "env",
            "-C",
            work,
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            *settings.sandbox.command(argv, work, files),
        ]
    return settings.sandbox.command(argv, work, files, [(settings.data, DEFAULT_FOLDER)], env, uid)


def _collect(submission: Submission, settings: Settings, request: dict, log_path: str, deadline: float, uid):
    private, work = _prepare(submission, settings, uid)
    files = _grader_files(request, private)
    place = _place(settings, private, work, files)
    argv = [
        sys.executable,
        "-I",
        "-B",
        f"{place.grader}/collector.py",
        f"{place.grader}/request.json",
        f"{place.work}/{RESULT_FOLDER}",
    ]
    status = sandbox.run(
        _command(settings, argv, work, files, uid),
        log_path,
        deadline - time.monotonic(),
        settings.sandbox.limits.output,
        uid,
    )
    return private, work, files, status


def _grader_tests(
    settings: Settings, work: str, files: dict, log_path: str, deadline: float, uid
) -> List[dict]:
    """The grader's test file run by pytest in the submission's sandbox, where `import solution`
    finds the submission; its conftest.py, pytest.ini, sitecustomize.py... are ignored."""
    assert settings.tests is not None  # called only when the grader gives tests
    name = os.path.basename(settings.tests)
    shutil.copyfile(settings.tests, os.path.join(work, name))
    if uid is not None:
        os.lchown(os.path.join(work, name), uid, uid)
    config = os.path.join(os.path.dirname(files["request.json"]), "pytest.ini")
    with open(config, "w") as f:
        f.write("[pytest]\n")
    files = {**files, "pytest.ini": config}
    place = _place(settings, os.path.dirname(config), work, files)
    with open(log_path, "a") as log:
        log.write(f"\n--- pytest {name} ---\n")
    pytest_args = ["-q", "-p", "no:cacheprovider", "--noconftest", "-c", f"{place.grader}/pytest.ini"]
    pytest_args += ["--rootdir", place.work, f"--junitxml={place.work}/{JUNIT_FILE}", f"{place.work}/{name}"]
    boot = (
        "import os, runpy, sys\n"
        f"b = {place.grader + '/sandbox_boot.py'!r}\n"
        "os.path.exists(b) and runpy.run_path(b)['install']()\n"
        "import pytest\n"
        f"sys.exit(pytest.main({pytest_args!r}))\n"
    )
    argv = [sys.executable, "-I", "-B", "-c", boot]
    status = sandbox.run(
        _command(settings, argv, work, files, uid),
        log_path,
        deadline - time.monotonic(),
        settings.sandbox.limits.output,
        uid,
    )
    return _tests(os.path.join(work, JUNIT_FILE), status, settings.timeout, settings.tests)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:500] if lines else ""


def _tests(junit_path: str, exit_status: int | None, timeout: float, test_file: str) -> List[dict]:
    """Each grader test's outcome (passed, failed, error, skipped) from pytest's JUnit XML."""
    name = os.path.basename(test_file)
    if exit_status is None:
        return [{"id": name, "outcome": "not run", "message": f"the submission's {timeout:g} s ran out"}]
    try:
        cases = list(ElementTree.fromstring(sandbox.read_untrusted(junit_path, 16 << 20)).iter("testcase"))
    except (sandbox.Untrusted, ElementTree.ParseError):
        return [
            {
                "id": name,
                "outcome": "error",
                "message": f"pytest exited with status {exit_status} and no results",
            }
        ]
    outcomes = []
    for case in cases[:1000]:
        outcome, message = "passed", ""
        for kind, label in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(kind)
            if element is not None:
                outcome, message = label, _first_line(element.get("message"))
                break
        outcomes.append(
            {
                "id": f"{case.get('classname')}::{case.get('name')}"[:300],
                "outcome": outcome,
                "message": message,
            }
        )
    if not outcomes:
        return [
            {"id": name, "outcome": "error", "message": f"pytest found no tests (exit status {exit_status})"}
        ]
    return outcomes


def _status(verdicts: list, exit_status: int | None, timeout: float, malformed: str | None) -> str:
    if exit_status is None:
        return f"timed out after {timeout:g} s"
    if malformed:
        return "crashed"
    if verdicts[0]["result"] != "passed":
        return "did not import"
    if any(v["result"] == "grader error" for v in verdicts):
        return "grader error"
    if any(reason in v["message"] for v in verdicts for reason in ("the run died", "not run: the run ended")):
        return "crashed"
    return "graded"


def _explain_end(verdicts: list, exit_status: int | None, timeout: float, log_path: str) -> list:
    """Name the reason a run ended early in the checks it cut short."""
    if exit_status is None:
        reason = f"the run timed out after {timeout:g} s"
    elif exit_status != 0:
        reason = f"the run died (exit status {exit_status}): {_last_line(log_path)} (see {LOG_FILE})"
    else:
        return verdicts
    return [
        {**v, "message": v["message"].replace("the run ended", reason, 1)}
        if "the run ended" in v["message"]
        else v
        for v in verdicts
    ]


def _last_line(path: str) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 4000))
        text = f.read().decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def grade_one(submission: Submission, settings: Settings, slot: int) -> dict:
    """Grade one submission: collect in the sandbox, judge here, score with the rubric."""
    from torch_compat import grade_checks

    start = time.monotonic()
    deadline = start + settings.timeout
    folder = submission_folder(settings.out, submission.name)
    os.makedirs(folder, exist_ok=True)
    log_path = os.path.join(folder, LOG_FILE)
    open(log_path, "w").close()
    uid = sandbox.uid_for(slot) if settings.sandbox.mode != "none" else None
    request = plan.request(settings.variant, settings.threads)
    private = None
    try:
        private, work, files, status = _collect(submission, settings, request, log_path, deadline, uid)
        with _JUDGING:
            found, malformed, variant, errors = grade_checks.judge(os.path.join(work, RESULT_FOLDER), request)
        if errors:
            with open(os.path.join(folder, grade_checks.GRADER_ERROR_LOG), "w") as f:
                f.write("\n".join(f"check {check_id}:\n{text}" for check_id, text in errors.items()))
        verdicts = _explain_end([v._asdict() for v in found], status, settings.timeout, log_path)
        tests = None
        if settings.tests is not None and verdicts[0]["result"] == "passed":
            tests = _grader_tests(settings, work, files, log_path, deadline, uid)
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    imported = verdicts[0]["result"] == "passed"
    checks, questions, total = settings.rubric.score(verdicts, imported)
    graded = {
        "name": submission.name,
        "path": submission.path,
        "status": _status(verdicts, status, settings.timeout, malformed),
        "variant": variant,
        "score": total,
        "max_score": settings.rubric.max_score,
        "seconds": round(time.monotonic() - start, 1),
        "questions": questions,
        "checks": checks,
    }
    if tests is not None:
        graded["tests"] = tests
    return graded


def grade_all(
    submissions: Sequence[Submission],
    settings: Settings,
    jobs: int,
    on_done: Callable[[dict], None] = lambda graded: None,
) -> List[dict]:
    """Grade `jobs` submissions at a time; the results in the submissions' order. An interrupt
    carries on as an exception, after every run is killed."""
    results: Dict[int, dict] = {}
    pool = ThreadPoolExecutor(max_workers=jobs)
    slots = list(range(jobs))
    slots_lock = threading.Lock()

    def graded_in_a_slot(submission: Submission) -> dict:
        with slots_lock:
            slot = slots.pop()
        try:
            return grade_one(submission, settings, slot)
        finally:
            with slots_lock:
                slots.append(slot)

    try:
        futures = {pool.submit(graded_in_a_slot, s): i for i, s in enumerate(submissions)}
        for future in as_completed(futures):
            graded = results[futures[future]] = future.result()
            on_done(graded)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        sandbox.RUNNING.kill_all()
        raise
    pool.shutdown()
    return [results[i] for i in range(len(submissions))]
