"""Where every benchmark puts its results: STEM.json (the data), STEM.md (the table), and the table
on stdout."""

from __future__ import annotations

import json
import os


def write_results(out_dir: str, stem: str, data: dict, table: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{stem}.json"), "w") as f:
        json.dump(data, f, indent=2)
    with open(os.path.join(out_dir, f"{stem}.md"), "w") as f:
        f.write(table)
    print(table)
