"""Time `jaxtrainer grade` on a class of both years (tests/grade_solutions/ cycled) and the grader's
peak RSS on one honest submission and on one printing 600 MB (hostile.py's output_flood), each
alone in a fresh process: the grader's memory must not grow with a submission's output.

    python -m benchmarks.grade_class --submissions 30 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from grade_solutions import hostile, mistakes  # noqa: E402  # pyright: ignore[reportMissingImports] (tests/, above)

PEAK = (
    "import sys; from jaxtrainer import cli; from jaxtrainer.bench import peak_rss_mb; "
    "code = cli.main(sys.argv[1:]); print('PEAK_RSS_MB', peak_rss_mb()); sys.exit(code)"
)


def grade(paths, out, jobs):
    """(seconds, the grader's peak RSS in MB) of one `jaxtrainer grade` in a fresh process."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "grade", *paths, "--out", out, "--jobs", str(jobs), "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.monotonic() - start
    peak = float(next(line for line in done.stdout.splitlines() if line.startswith("PEAK_RSS_MB")).split()[1])
    return seconds, peak


def main(argv=None) -> int:
    """`python -m benchmarks.grade_class`."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--submissions", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        names = ["correct", *mistakes.MISTAKES, *mistakes.STYLES, *mistakes.MORE_MISTAKES]
        names = [n for n in names if n not in ("sleeps_forever", "syntax_error")]
        written = mistakes.write(os.path.join(tmp, "tensor"), [*names, "loader_correct", "loader_cifar"])
        pool = list(written.values())
        os.makedirs(os.path.join(tmp, "class"))
        paths = []
        for i in range(args.submissions):  # distinct names: copies beyond the pool get a suffix
            stem = os.path.splitext(os.path.basename(pool[i % len(pool)]))[0]
            paths.append(shutil.copyfile(pool[i % len(pool)], os.path.join(tmp, "class", f"{stem}_{i}.py")))
        seconds, peak = grade(paths, os.path.join(tmp, "out"), args.jobs)
        with open(os.path.join(tmp, "out", "grades.json")) as f:
            grades = json.load(f)["submissions"]
        years = {g["variant"] for g in grades}
        targets = {k: os.path.join(tmp, k) for k in ("out", "data", "other", "source", "marker")}
        flood = hostile.write(os.path.join(tmp, "hostile"), targets)["output_flood"]
        honest_seconds, honest_peak = grade([written["correct"]], os.path.join(tmp, "one"), 1)
        flood_seconds, flood_peak = grade([flood], os.path.join(tmp, "flood"), 1)
    shown = ", ".join(sorted(y or "?" for y in years))
    print(f"{args.submissions} submissions ({shown} years), --jobs {args.jobs}:")
    per = seconds / args.submissions
    print(f"  wall {seconds:.1f} s ({per:.1f} s per submission), grader peak RSS {peak:.0f} MB")
    print(f"one honest submission: {honest_seconds:.1f} s, grader peak RSS {honest_peak:.0f} MB")
    print(f"one 600 MB output flood: {flood_seconds:.1f} s, grader peak RSS {flood_peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
