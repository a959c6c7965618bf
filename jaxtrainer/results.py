"""A run's logs on disk: JSON (with its configuration) and CSV, one row per epoch."""

from __future__ import annotations

import csv
import json
import os


def write_logs(logs: dict, out_dir: str, meta: dict | None = None) -> dict:
    """Writes logs.json and logs.csv atomically (write to a temporary name, then rename), so an
    interrupted run never leaves a half-written file. Returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "logs.json"), "csv": os.path.join(out_dir, "logs.csv")}
    _atomic_write(paths["json"], lambda f: json.dump({"config": meta or {}, "logs": logs}, f, indent=2))

    def rows(f):
        writer = csv.writer(f)
        writer.writerow(["epoch", *logs])
        for epoch, values in enumerate(zip(*logs.values())):
            writer.writerow([epoch, *(repr(v) for v in values)])

    _atomic_write(paths["csv"], rows)
    return paths


def read_logs(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _atomic_write(path: str, write) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        write(f)
    os.replace(tmp, path)
