"""Grading runs: each submission in its own subprocess and temporary working folder, under a
wall-clock timeout that kills its whole process group; N submissions at a time.

This side never imports PyTorch: the checks run in the subprocess (`torch_compat.grade_checks`),
which writes its results to a JSON file after every check; a run that hangs or dies still reports
the checks it finished, and which one it was in.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Dict, List, NamedTuple, Sequence

import jaxtrainer
from jaxtrainer.data import DEFAULT_FOLDER

from .plan import CHECK_IDS
from .submissions import Submission

CHECKS_MODULE = "torch_compat.grade_checks"
RESULT_FILE = "grade-result.json"
JUNIT_FILE = "grade-tests.xml"
LOG_FILE = "output.log"


class Settings(NamedTuple):
    data: str  # a rotated-PNG folder, absolute: each work folder's ./rotated_fashion_mnist
    out: str  # OUT/<name>/ receives each submission's output.log
    timeout: float  # seconds of wall clock per submission, checks and grader's tests together
    tests: str | None  # the grader's own test file, absolute
    threads: int  # CPU threads per subprocess (the cores shared among the jobs)
    cache_dir: str  # JAX's compilation cache, shared: the submissions after the first compile nothing


class _Running:
    """The subprocesses running now, so that an interrupted grading run kills them all."""

    def __init__(self):
        self._lock, self._procs = threading.Lock(), set()

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            for proc in self._procs:
                _kill_group(proc)


_RUNNING = _Running()


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process and whatever it started (a student's DataLoader workers, a shell)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _environment(settings: Settings) -> Dict[str, str]:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(jaxtrainer.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(
        MPLBACKEND="Agg",  # a student's plt.show() must not wait for a window
        OMP_NUM_THREADS=str(settings.threads),
        PYTHONDONTWRITEBYTECODE="1",
        JAX_COMPILATION_CACHE_DIR=settings.cache_dir,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    return env


def _run(command: List[str], cwd: str, log, env: Dict[str, str], deadline: float) -> int | None:
    """The command's exit status, or None if it was still running at the deadline (its process
    group is killed either way: nothing it started outlives it)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _RUNNING.add(proc)
    try:
        return proc.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _kill_group(proc)
        proc.wait()
        _RUNNING.discard(proc)


def _last_line(path: str) -> str:
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f.read()[-4000:].splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _checks(result_path: str, exit_status: int | None, timeout: float, log_path: str):
    """(status, checks) from the subprocess's result file: every check id, in order; those it
    did not finish say why."""
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = {"checks": [], "running": CHECK_IDS[0]}
    done = {check["id"]: check for check in result["checks"]}
    running = result["running"]
    if exit_status is None:
        verdict = f"timed out after {timeout:g} s"
        during = f"the run timed out after {timeout:g} s during this check (an endless loop or a wait?)"
        later = f"not run: the run timed out during {running}"
    elif running is not None or len(done) < len(CHECK_IDS):
        verdict = "crashed"
        during = (
            f"the grading process died during this check (exit status {exit_status}): "
            f"{_last_line(log_path)} (see {LOG_FILE})"
        )
        later = f"not run: the grading process died during {running}"
    else:
        verdict = "graded"
    if "import" in done and not done["import"]["passed"]:
        verdict = "did not import"
    checks = []
    for check_id in CHECK_IDS:
        if check_id in done:
            checks.append(done[check_id])
        else:
            checks.append(
                {"id": check_id, "passed": False, "message": during if check_id == running else later}
            )
    return verdict, checks


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _tests(junit_path: str, exit_status: int | None, timeout: float, test_file: str) -> List[dict]:
    """Each grader test's outcome (passed, failed, error, skipped) from pytest's JUnit XML."""
    name = os.path.basename(test_file)
    if exit_status is None:
        return [{"id": name, "outcome": "not run", "message": f"the submission's {timeout:g} s ran out"}]
    try:
        cases = ElementTree.parse(junit_path).getroot().iter("testcase")
    except (OSError, ElementTree.ParseError):
        return [
            {
                "id": name,
                "outcome": "error",
                "message": f"pytest exited with status {exit_status} and no results",
            }
        ]
    outcomes = []
    for case in cases:
        outcome, message = "passed", ""
        for kind, label in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(kind)
            if element is not None:
                outcome, message = label, _first_line(element.get("message"))
                break
        outcomes.append(
            {"id": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome, "message": message}
        )
    if not outcomes:
        return [
            {"id": name, "outcome": "error", "message": f"pytest found no tests (exit status {exit_status})"}
        ]
    return outcomes


def _grader_tests(settings: Settings, work: str, log, env: Dict[str, str], deadline: float) -> List[dict]:
    """Run the grader's test file with pytest in the work folder (where `import solution` finds
    the submission), in what is left of the submission's time."""
    name = os.path.basename(settings.tests)
    shutil.copyfile(settings.tests, os.path.join(work, name))
    log.write(f"\n--- pytest {name} ---\n")
    log.flush()
    junit = os.path.join(work, JUNIT_FILE)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", name]
    return _tests(junit, _run(command, work, log, env, deadline), settings.timeout, settings.tests)


def grade_one(submission: Submission, settings: Settings) -> dict:
    """Grade one submission in a temporary working folder: the checks, then the grader's tests,
    within one timeout. Its output goes to OUT/<name>/output.log."""
    start = time.monotonic()
    deadline = start + settings.timeout
    log_path = os.path.join(settings.out, submission.name, LOG_FILE)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    env = _environment(settings)
    work = tempfile.mkdtemp(prefix="jaxtrainer-grade-")
    tests = None
    try:
        submission.copy_to(work)
        os.symlink(settings.data, os.path.join(work, DEFAULT_FOLDER))
        result_path = os.path.join(work, RESULT_FILE)
        with open(log_path, "w") as log:
            command = [sys.executable, "-m", CHECKS_MODULE, "--result", result_path]
            exit_status = _run(command, work, log, env, deadline)
            status, checks = _checks(result_path, exit_status, settings.timeout, log_path)
            if settings.tests is not None:
                tests = _grader_tests(settings, work, log, env, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    graded = {
        "name": submission.name,
        "path": submission.path,
        "status": status,
        "score": round(sum(check["passed"] for check in checks) / len(checks), 4),
        "seconds": round(time.monotonic() - start, 1),
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
    """Grade `jobs` submissions at a time; the results in the submissions' order. `on_done` is
    called as each finishes. Interrupted (Ctrl-C), every running subprocess is killed."""
    results: List[dict | None] = [None] * len(submissions)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(grade_one, s, settings): i for i, s in enumerate(submissions)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            on_done(results[futures[future]])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _RUNNING.kill_all()
        raise
    pool.shutdown()
    return results


def grade(
    submissions: Sequence[Submission],
    out: str,
    *,
    data: str | None = None,
    timeout: float = 300.0,
    jobs: int = 1,
    tests: str | None = None,
    on_done: Callable[[dict], None] = lambda graded: None,
) -> List[dict]:
    """A whole grading run: `data` (a rotated-PNG folder; default the embedded digits written in
    that format to a temporary folder) and a compilation cache shared by all the runs (kept from
    one grading run to the next where $JAX_COMPILATION_CACHE_DIR names one)."""
    from jaxtrainer.data import digits

    with tempfile.TemporaryDirectory(prefix="jaxtrainer-grade-run-") as tmp:
        if data is None:
            data = digits.write_folder(os.path.join(tmp, DEFAULT_FOLDER))["out"]
        settings = Settings(
            data=os.path.abspath(data),
            out=os.path.abspath(out),
            timeout=timeout,
            tests=None if tests is None else os.path.abspath(tests),
            threads=max(1, (os.cpu_count() or 1) // jobs),
            cache_dir=os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(tmp, "jax-cache"),
        )
        return grade_all(submissions, settings, jobs, on_done)
