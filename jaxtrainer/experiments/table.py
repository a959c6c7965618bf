"""The runs' table (final and best values, divergence, seconds) of the homework's and sweep's report.md."""

from __future__ import annotations

import math
import os

import numpy as np

from ..tables import markdown_table
from ..train import divergence_epoch

_FINALS = ("train_loss", "test_loss", "train_mae", "test_mae")


def summary_row(record: dict) -> dict:
    """One run's final and best values, divergence and seconds, from its record."""
    logs = record["logs"]
    test_mae = np.array(logs["test_mae"], dtype=np.float64)
    finite = np.isfinite(test_mae)
    best_epoch = int(np.nanargmin(np.where(finite, test_mae, np.nan))) if finite.any() else None
    meta, sweep = record["meta"], record["meta"].get("sweep", {})
    return {
        "run": record["name"],
        **{key: record[key] for key in ("dir", "lr", "seed")},
        **{f"final_{k}": logs[k][-1] for k in _FINALS},
        "best_test_mae": float(test_mae[best_epoch]) if best_epoch is not None else math.nan,
        "best_epoch": best_epoch,
        "diverged_at_epoch": divergence_epoch(logs),
        "seconds": meta.get("seconds"),
        "sweep_size": sweep.get("size"),
        "strategy": sweep.get("strategy"),
        "skipped": record["skipped"],
    }


def fmt(v) -> str:
    """A metric in a table cell: 4 decimals, or scientific notation for the very large or small."""
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
        return f"{v:.4e}"
    return f"{v:.4f}"


def table(rows, out_dir: str) -> str:
    """The runs' table, each run's name a link to its logs.json (relative to `out_dir`)."""

    def line(row: dict) -> list:
        link = os.path.relpath(os.path.join(row["dir"], "logs.json"), out_dir)
        diverged = "no" if row["diverged_at_epoch"] is None else f"epoch {row['diverged_at_epoch']}"
        best = "-" if row["best_epoch"] is None else f"{fmt(row['best_test_mae'])} ({row['best_epoch']})"
        size, seconds = row["sweep_size"], "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
        sweep = "" if not size else " (1 run)" if size == 1 else f" ({size} runs, {row['strategy']})"
        finals = map(fmt, (row[f"final_{k}"] for k in _FINALS))
        return [f"[{row['run']}]({link})", f"{row['lr']:g}", *finals, best, diverged, seconds + sweep]

    header = ["run", "lr", "final train loss", "final test loss", "final train MAE", "final test MAE"]
    return markdown_table([*header, "best test MAE (epoch)", "diverged?", "seconds (sweep)"], map(line, rows))
