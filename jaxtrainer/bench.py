"""`jaxtrainer bench`: the PyTorch reference against jaxtrainer on the same synthetic data, per-epoch
time with logging included; and what every benchmark script shares (`synthetic`, `write_results`).

Each (framework, row) runs --repeats times, each run in a fresh subprocess (peak RSS is per process),
the repeats interleaved and the frameworks alternating; a run's figure is its median epoch after
the first (which carries compilation). The table gives the median over the runs with their range,
and the JAX/PyTorch ratio. PyTorch runs torch_compat/reference.py as a file (this module never
imports torch), a sweep row's learning rates one after another; jaxtrainer as one compiled program.

    jaxtrainer bench --network mlp cnn cnn_sweep3 --epochs 4 --repeats 3 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

from . import compile_cache, files
from .presets import BATCH_SIZE, DEFAULT_LR, NETWORKS, SEED
from .tables import markdown_table

# name: (network in presets.NETWORKS, learning rates); the other rows train one network at DEFAULT_LR.
SWEEPS = {
    "cnn_sweep3": ("cnn", (1e-2, 1e-3, 1e-4)),
    "cnn_sweep8": ("cnn", (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 1e-6)),
}
ROWS = (*NETWORKS, *SWEEPS)
log = logging.getLogger(__name__)


def runs_of(row: str):
    """(network name, learning rates) that a row of the table trains."""
    return SWEEPS[row] if row in SWEEPS else (row, (DEFAULT_LR,))


def describe(row: str) -> str:
    """The row's network, and for a sweep row its learning rates, in words."""
    network, lrs = runs_of(row)
    label = NETWORKS[network].label
    if row not in SWEEPS:
        return label
    return f"{label} x {len(lrs)} learning rates ({', '.join(f'{lr:g}' for lr in lrs)}), one program"


def synthetic(n_train: int, n_test: int, seed: int = 0):
    """Random 1x28x28 images in [-1, 1] and standard-normal targets: only the timing means anything."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_train + n_test, 1, 28, 28)).astype(np.float32)
    y = rng.standard_normal((n_train + n_test, 1)).astype(np.float32)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def write_results(out_dir: str, stem: str, data: dict, table: str) -> None:
    """Where every benchmark puts its results: STEM.json (the data), STEM.md (the table), and the
    table on stdout."""
    files.check_writable_folder(out_dir)
    files.write_json(os.path.join(out_dir, f"{stem}.json"), data)
    files.write_text(os.path.join(out_dir, f"{stem}.md"), table)
    print(table)


def jax_worker(row: str, epochs: int, data_file: str) -> dict:
    """jaxtrainer's side of a row, in this process, as one compiled program: the seconds of each
    epoch (read after its logs reached the host), the device and this process's peak RSS."""
    import jax

    from .spec import Spec
    from .sweeps import Loop, sweep

    compile_cache.enable()
    network, lrs = runs_of(row)
    with np.load(data_file) as arrays:
        dataset = (arrays["X_train"], arrays["y_train"]), (arrays["X_test"], arrays["y_test"])
    members = tuple((lr, SEED) for lr in lrs)
    spec = Spec(
        *NETWORKS[network][:2], members=members, batch_size=BATCH_SIZE, epochs=epochs, dataset=dataset
    )
    stamps = [time.perf_counter()]
    result = sweep(spec, Loop(progress=False, on_epoch=lambda *_: stamps.append(time.perf_counter())))
    return {
        "runs": [[b - a for a, b in zip(stamps, stamps[1:])]],
        "device": str(jax.devices()[0].device_kind),
        "peak_rss_mb": peak_rss_mb(),
        "strategy": result.strategy,
    }


def _command(framework: str, row: str, epochs: int, data_file: str) -> list:
    """The worker's command line: `jaxtrainer.bench --worker`, or torch_compat/reference.py run as a
    file (found without importing torch_compat, which loads JAX)."""
    common = ["--data", data_file, "--epochs", str(epochs)]
    if framework == "jax":
        return [sys.executable, "-m", "jaxtrainer.bench", "--worker", row, *common]
    package = importlib.util.find_spec("torch_compat")
    if package is None or not package.submodule_search_locations:
        raise RuntimeError(
            "the PyTorch side needs the torch_compat package (pip install 'jaxtrainer[torch]')"
        )
    network, lrs = runs_of(row)
    net = NETWORKS[network]
    config = json.dumps([list(field) for field in net.net_config])
    common += ["--network-type", net.network_type, "--net-config", config, "--lrs", *map(repr, lrs)]
    reference = os.path.join(list(package.submodule_search_locations)[0], "reference.py")
    return [sys.executable, reference, *common]


def run_worker(command: Sequence[str], what: str, timeout: float | None = None, **kwargs):
    """`subprocess.run(command)`'s report, the JSON object its last line prints ({} for none); a
    RuntimeError naming `what` when it fails or runs past `timeout` seconds."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} ran past {timeout} s") from None
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def epoch_times(times: Sequence[float]) -> dict:
    """A run's epochs in seconds, its first (compilation and warm-up) and the median of the others:
    the figure every benchmark reports."""
    return {"epoch_s": list(times), "first_epoch_s": times[0], "median_epoch_s": statistics.median(times[1:])}


def peak_rss_mb() -> float:
    """This process's peak memory in MiB: Linux's VmHWM, which starts afresh at exec. getrusage's
    ru_maxrss is kept across fork and exec (a worker would report its parent's peak), and is in
    bytes on macOS, its fallback there."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def host() -> str:
    """The processor and its core count, for a table's header."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _run(report: dict) -> dict:
    """One worker's run; sequential runs (PyTorch's sweep rows) add up epoch by epoch."""
    times = [sum(epoch) for epoch in zip(*report["runs"])]
    return {**epoch_times(times), "peak_rss_mb": report["peak_rss_mb"]}


def _result(framework: str, row: str, reports: Sequence[dict]) -> dict:
    """A table row from the workers' reports of its repeats: each run, the median of the runs'
    median epochs and their range, the median first epoch, the largest peak RSS."""
    runs = [_run(report) for report in reports]
    medians = [run["median_epoch_s"] for run in runs]
    result = {
        "framework": framework,
        "model": row,
        "runs": runs,
        "median_epoch_s": statistics.median(medians),
        "min_epoch_s": min(medians),
        "max_epoch_s": max(medians),
        "first_epoch_s": statistics.median(run["first_epoch_s"] for run in runs),
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "device": reports[0]["device"],
    }
    if row in SWEEPS:
        result["lrs"] = list(SWEEPS[row][1])
    if "strategy" in reports[0]:
        result["strategy"] = reports[0]["strategy"]
    return result


def measure(
    rows: Sequence[str],
    epochs: int,
    n_train: int,
    n_test: int,
    timeout: float | None = None,
    repeats: int = 1,
    progress: bool = True,
) -> list:
    """Every row (a name in `ROWS`) on both frameworks, `repeats` times, each run in a fresh
    subprocess, on one synthetic set of `n_train` + `n_test` images, the repeats interleaved and the
    frameworks alternating, so that a slow spell of the machine falls on both. `epochs` >= 2 (the
    first carries compilation); a worker that fails or runs past `timeout` seconds is a RuntimeError;
    `progress` logs a line per run. One result per (framework, row)."""
    reports = {(framework, row): [] for row in rows for framework in ("torch", "jax")}
    with tempfile.TemporaryDirectory(prefix="jaxtrainer-bench-") as tmp:
        data_file = os.path.join(tmp, "synthetic.npz")
        (X, y), (Xt, yt) = synthetic(n_train, n_test)
        np.savez(data_file, X_train=X, y_train=y, X_test=Xt, y_test=yt)
        for repeat in range(repeats):
            for i, row in enumerate(rows):
                for framework in ("torch", "jax") if (i + repeat) % 2 == 0 else ("jax", "torch"):
                    command = _command(framework, row, epochs, data_file)
                    report = run_worker(command, f"{framework} {row}: the worker", timeout)
                    reports[(framework, row)].append(report)
                    if progress:
                        seconds, run = _run(report)["median_epoch_s"], f"run {repeat + 1} of {repeats}"
                        log.info(f"{framework:5s} {row:12s} {seconds:.2f} s/epoch ({run})")
    return [_result(framework, row, runs) for (framework, row), runs in reports.items()]


def ratios(rows: list) -> dict:
    """model: jaxtrainer's median epoch / PyTorch's (the medians over the repeats)."""
    by = {(r["framework"], r["model"]): r for r in rows}
    return {
        m: by[("jax", m)]["median_epoch_s"] / by[("torch", m)]["median_epoch_s"]
        for f, m in by
        if f == "torch" and ("jax", m) in by
    }


def ratio_ranges(rows: list) -> dict[str, tuple[float, float]]:
    """model: (min, max) of the paired ratios jaxtrainer / PyTorch of each repeat's runs (run k of
    one framework against run k of the other, measured one after the other)."""
    by = {(r["framework"], r["model"]): r for r in rows}
    ranges = {}
    for m in ratios(rows):
        runs = zip(by[("jax", m)]["runs"], by[("torch", m)]["runs"])
        paired = [j["median_epoch_s"] / t["median_epoch_s"] for j, t in runs]
        ranges[m] = (min(paired), max(paired))
    return ranges


def _spread(median: float, low: float, high: float, unit: str = "") -> str:
    """'3.54 (3.50-4.10)', or the median alone when the runs agree (one repeat)."""
    if f"{low:.2f}" == f"{high:.2f}":
        return f"{median:.2f}{unit}"
    return f"{median:.2f}{unit} ({low:.2f}–{high:.2f}{unit})"


def markdown(rows: list, meta: dict) -> str:
    """compare.md: the header, the table (one row per model) and the sweep rows' notes."""
    lines = [
        f"{meta['n_train']:,} synthetic 1x28x28 images, batch 128, {meta['epochs']} epochs per run "
        f"(a run's figure: the median of its epochs 2..{meta['epochs']}), logging included; "
        f"{meta['repeats']} runs per framework and model, each in a fresh process: median (min–max) "
        f"over the runs; {meta['machine']}",
        "",
    ]
    by = {(r["framework"], r["model"]): r for r in rows}
    ratio, ratio_range = ratios(rows), ratio_ranges(rows)

    def row(model: str) -> list:
        t, j = by[("torch", model)], by[("jax", model)]
        seconds = [_spread(r["median_epoch_s"], r["min_epoch_s"], r["max_epoch_s"]) for r in (t, j)]
        firsts = [f"{r['first_epoch_s']:.2f}" for r in (t, j)]
        rss = [f"{r['peak_rss_mb']:.0f}" for r in (t, j)]
        return [model, *seconds, _spread(ratio[model], *ratio_range[model], "x"), *firsts, *rss]

    header = ("model", "PyTorch s/epoch", "jaxtrainer s/epoch", "ratio", "PyTorch 1st epoch")
    header += ("jaxtrainer 1st epoch", "PyTorch RSS MB", "jaxtrainer RSS MB")
    lines.append(markdown_table(header, map(row, meta["models"])))
    notes = [
        f"{model}: {describe(model)}. PyTorch: the reference Trainer once per learning "
        "rate, one run after another, its epoch the sum of the runs' epochs; jaxtrainer: the "
        f"members as one compiled program (`jaxtrainer.sweep`, strategy {by[('jax', model)]['strategy']})."
        for model in meta["models"]
        if model in SWEEPS
    ]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """The worker's entry (`python -m jaxtrainer.bench --worker ROW --data FILE --epochs N`): one
    row's jaxtrainer run, its report as the last line of stdout. `jaxtrainer bench` is the command."""
    p = argparse.ArgumentParser(description="one worker of `jaxtrainer bench`")
    p.add_argument("--worker", choices=list(ROWS), required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, required=True)
    args = p.parse_args(argv)
    print(json.dumps(jax_worker(args.worker, args.epochs, args.data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
