"""`jaxtrainer sweep`: a spec's members as one sweep in one run folder, each under
`lr_<lr>_seed_<seed>/`, then report.md (the table), summary.json and sweep.png."""

from __future__ import annotations

import os

from .. import plots
from ..spec import Spec
from .groups import Group, load, train_group
from .table import summary_row, table


def run_sweep(spec: Spec, out_dir: str, mode: str = "continue", progress: bool = True) -> dict:
    """The sweep's members trained together in the run folder `out_dir` (`mode` as for `single.run`);
    returns {"rows", "table", "paths"} (the summary rows, the Markdown table, the files written)."""
    ds, data_id = load(spec, out_dir)
    group = Group(spec, folder="lr_{lr:g}_seed_{seed}")
    with group.open(out_dir, data_id, mode) as folder:
        records, _ = train_group(group, ds, folder, progress)
        rows = [summary_row(r) for r in records]
        runs = {f"lr {r['lr']:g}, seed {r['seed']}": r["logs"] for r in records}
        title = f"{spec.network} on {ds.name}: test MAE per epoch"
        paths = {"png": folder.figure("sweep.png", lambda path: plots.runs_figure(runs, path, title=title))}
        summary = {**spec.as_dict(), "dataset": ds.name, "runs": rows}
        paths["summary"] = folder.write_json("summary.json", summary)
        text = table(rows, out_dir)
        paths["report"] = folder.write_text(
            "report.md",
            f"# Sweep: {spec.network} on {ds.name}, {spec.epochs} epochs\n\n{text}\n\n"
            f"![test MAE per epoch]({os.path.basename(paths['png'])})\n",
        )
    return {"rows": rows, "table": text, "paths": paths}
