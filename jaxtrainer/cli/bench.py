"""`jaxtrainer bench`: the PyTorch reference against jaxtrainer (the measuring: `jaxtrainer/bench.py`)."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from .. import bench, files
from . import options

OWNED = ("compare.json", "compare.md")  # what it writes in --out


def add_parser(sub) -> None:
    """`bench`; its frameworks run in subprocesses, so it starts no JAX backend here."""
    p = sub.add_parser(
        "bench",
        help="PyTorch reference against jaxtrainer, per-epoch time on synthetic data",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--network",
        dest="models",
        nargs="+",
        choices=list(bench.ROWS),
        default=["mlp", "cnn"],
        help="rows of the table (default: mlp cnn); "
        + "; ".join(f"{row}: {bench.describe(row)}" for row in bench.SWEEPS),
    )
    for flag, check, default, what in (
        ("--epochs", options.int_at_least(2), 4, "epochs per run, 2 or more; the first is warm-up"),
        ("--repeats", options.int_at_least(1), 3, "runs per framework and model, each in a fresh process"),
        ("--n-train", options.positive_int, 60_000, "synthetic training images"),
        ("--n-test", options.positive_int, 2_000, "synthetic test images"),
    ):
        options.option(p, flag, default, what, type=check)
    options.option(p, "--out", "benchmarks/results", "folder for compare.json and compare.md")
    options.shared(p, "--overwrite")
    options.shared(p, "--no-progress")
    p.set_defaults(  # the frameworks run in their own processes
        run=run, backend=False, interrupted="nothing written: the table goes to {out} at the end"
    )


def run(args) -> int:
    """Both frameworks, one subprocess per (framework, model), then the table."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError("the PyTorch side needs torch: pip install 'jaxtrainer[torch]'")
    options.claim_output(args.out, args.overwrite, OWNED)
    files.check_writable_folder(args.out)  # before the minutes of measuring
    sizes = (args.models, args.epochs, args.n_train, args.n_test)
    try:
        rows = bench.measure(*sizes, repeats=args.repeats, progress=not args.no_progress)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    meta = {"models": args.models, "epochs": args.epochs, "repeats": args.repeats, "n_train": args.n_train}
    devices = {r["framework"]: r["device"] for r in rows}
    meta["machine"] = f"{bench.host()}, JAX on {devices['jax']}, PyTorch on {devices['torch']}"
    ratios = {"ratios": bench.ratios(rows), "ratio_ranges": bench.ratio_ranges(rows)}
    bench.write_results(
        args.out, "compare", {"meta": meta, "rows": rows, **ratios}, bench.markdown(rows, meta)
    )
    return 0
