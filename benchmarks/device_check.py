"""One table for a GPU machine (run through benchmarks/device_check.sh, which sets the environment):
the homework's four networks' s/epoch, jaxtrainer against the PyTorch reference (`jaxtrainer bench`'s
workers, 60,000 synthetic 1x28x28 images, batch 128); the CNN's K=8 learning-rate sweep as one
program against 8 sequential runs of each; the whole homework's wall time (homework_synthetic.py).

`--dry-run` runs the same on the CPU at tiny sizes to check the script (about 100 s of CPU, nearly
all compilation). A step that fails or runs past its time reads "failed" (the reason on stderr); the
table is printed and written (device_check.json, device_check.md) either way.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time

from jaxtrainer import bench
from jaxtrainer.tables import markdown_table

NETWORK_ROWS = ("mlp", "cnn", "deep_cnn", "shallow_cnn")
SWEEP_ROW = "cnn_sweep8"
SWEEP_BASE, SWEEP_LRS = bench.runs_of(SWEEP_ROW)
SIZES = {
    # n_train, n_test, epochs per timed run (the first is warm-up), homework epochs, then the seconds
    # past which a worker, the homework, is stopped, its cells "failed" (GPU: all within 8 minutes)
    "gpu": (60_000, 2_000, 3, 50, 180, 240),
    "dry-run": (256, 64, 2, 1, 300, 400),
}
# Which devices JAX and torch see, asked in a child so that this process holds no GPU memory.
PREFLIGHT = "import jax, torch; print(jax.default_backend(), 'cuda' if torch.cuda.is_available() else 'cpu')"


log = logging.getLogger(__name__)  # progress, on stderr (main): stdout holds the table alone


def gpu_missing() -> str | None:
    """Why the GPU table cannot be made here (no GPU for JAX or torch), or None."""
    done = subprocess.run([sys.executable, "-c", PREFLIGHT], capture_output=True, text=True)
    if done.returncode != 0:
        return f"jax and torch must both import:\n{done.stderr[-2000:]}"
    jax_backend, torch_device = done.stdout.strip().splitlines()[-1].split()
    if jax_backend != "gpu" or torch_device != "cuda":
        seen = f"JAX sees {jax_backend} and torch {torch_device}"
        return f"{seen}, not a GPU (--dry-run checks the script on a CPU)"
    return None


def framework_rows(n_train: int, n_test: int, epochs: int, timeout: float) -> dict:
    """(framework, row) -> `jaxtrainer bench`'s result; a row whose worker failed is left out."""
    results = {}
    for row in (*NETWORK_ROWS, SWEEP_ROW):
        try:
            for result in bench.measure([row], epochs, n_train, n_test, timeout=timeout):
                results[(result["framework"], row)] = result
        except RuntimeError as e:
            log.info(f"device_check: {row} failed: {e}")
    return results


def homework_seconds(n_train: int, n_test: int, epochs: int, timeout: float) -> float | None:
    """Wall time of `python -m benchmarks.homework_synthetic` (start-up and compilation included)."""
    command = [sys.executable, "-m", "benchmarks.homework_synthetic", "--epochs", str(epochs)]
    command += ["--n-train", str(n_train), "--n-test", str(n_test), "--no-progress", "--out"]
    with tempfile.TemporaryDirectory(prefix="device-check-homework-") as out:
        start = time.perf_counter()
        try:
            bench.run_worker([*command, out], "the homework", timeout)
        except RuntimeError as e:
            log.info(f"device_check: {e}")
            return None
        seconds = time.perf_counter() - start
    log.info(f"homework {seconds:.1f} s")
    return seconds


def table_rows(results: dict, homework_s: float | None, homework_epochs: int, n_train: int) -> list:
    """(measurement, jaxtrainer, baseline, baseline is); times in seconds, None where a step failed."""

    def median(framework, row):
        return results.get((framework, row), {}).get("median_epoch_s")

    rows = [
        (
            f"{row}: {bench.describe(row)}, s/epoch",
            median("jax", row),
            median("torch", row),
            "PyTorch reference",
        )
        for row in NETWORK_ROWS
    ]
    k, sweep, one_run = len(SWEEP_LRS), median("jax", SWEEP_ROW), median("jax", SWEEP_BASE)
    strategy = results[("jax", SWEEP_ROW)]["strategy"] if sweep is not None else "?"
    label = f"K={k} lr sweep, {bench.NETWORKS[SWEEP_BASE].label}: one program ({strategy}), s/epoch"
    homework = f"whole homework (experiments 1-4), {n_train:,} synthetic images, {homework_epochs} epochs, s"
    sequential = f"{k} sequential jaxtrainer runs ({k} x {SWEEP_BASE})"
    return [
        *rows,
        (label, sweep, one_run and k * one_run, sequential),
        (label, sweep, median("torch", SWEEP_ROW), f"{k} sequential PyTorch reference runs"),
        (homework, homework_s, None, ""),
    ]


def markdown(rows: list, header: str) -> str:
    """device_check.md: `header`, then a table row per measurement."""

    def cell(seconds):
        return "failed" if seconds is None else f"{seconds:.2f}"

    def ratio(jax_s, base_s):
        return "failed" if jax_s is None or base_s is None else f"{jax_s / base_s:.2f}x"

    table = [
        [m, cell(jax_s), *((cell(base_s), baseline, ratio(jax_s, base_s)) if baseline else ("", "", ""))]
        for m, jax_s, base_s, baseline in rows
    ]
    header_row = ("measurement", "jaxtrainer", "baseline", "baseline is", "jaxtrainer / baseline")
    return f"{header}\n\n{markdown_table(header_row, table)}\n"


def main(argv=None) -> int:
    """`python -m benchmarks.device_check`: exit 1 when a measurement failed."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU only, tiny sizes: checks the script itself")
    p.add_argument("--out", default="benchmarks/results", help="folder for device_check.json and .md")
    args = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    mode = "dry-run" if args.dry_run else "gpu"
    if not args.dry_run and (missing := gpu_missing()):
        p.error(missing)
    n_train, n_test, epochs, homework_epochs, worker_timeout, homework_timeout = SIZES[mode]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="device-check-xla-") as cache:
        # The workers and the homework inherit these. On the GPU every process compiles cold, so the
        # first epochs and the homework's time include compilation; the dry run checks the script,
        # and its steps share one fresh compilation cache to run sooner.
        if args.dry_run:
            os.environ.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", JAXTRAINER_CACHE_DIR=cache)
            os.environ.pop("JAXTRAINER_NO_CACHE", None)
        else:
            os.environ["JAXTRAINER_NO_CACHE"] = "1"
        results = framework_rows(n_train, n_test, epochs, worker_timeout)
        homework_s = homework_seconds(n_train, n_test, homework_epochs, homework_timeout)
    rows = table_rows(results, homework_s, homework_epochs, n_train)
    devices = {framework: result["device"] for (framework, _), result in results.items()}
    header = (
        f"device_check{' --dry-run' if args.dry_run else ''}: JAX on {devices.get('jax', '?')}, PyTorch on "
        f"{devices.get('torch', '?')}; {n_train:,} synthetic 1x28x28 images ({n_test:,} test), batch 128; "
        f"s/epoch is the median of epochs 2..{epochs}, logging included; "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    data = {
        "mode": mode,
        "devices": devices,
        "sizes": {"n_train": n_train, "n_test": n_test, "epochs": epochs, "homework_epochs": homework_epochs},
        "rows": [dict(zip(("measurement", "jaxtrainer_s", "baseline_s", "baseline"), row)) for row in rows],
        "bench": list(results.values()),
    }
    bench.write_results(args.out, "device_check", data, markdown(rows, header))
    return 0 if all(row[1] is not None and (row[2] is not None or not row[3]) for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
