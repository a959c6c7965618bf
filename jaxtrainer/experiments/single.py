"""`jaxtrainer train`: one run, a group of one member whose files (logs.json, logs.csv, curves.png,
spec.json, checkpoint.npz, an exported state_dict) sit in the run folder itself. Killed at any
instant, the same command continues it with the results of an uninterrupted run."""

from __future__ import annotations

from flax import nnx

from .. import models, plots, state_dict
from ..errors import InputError
from ..spec import Spec
from ..sweeps import unstack
from .groups import Group, load, train_group


def run(
    spec: Spec, out_dir: str, progress: bool = True, mode: str = "continue", export: str | None = None
) -> dict:
    """Train `spec` (exactly one (lr, seed) member) in the run folder `out_dir`, arguments and outputs
    checked before any data is read. Returns {"logs", "paths", "meta"}.

    Args:
        mode: "continue" (the default), "resume" or "overwrite" a run there (`runs.resume`).
        export: also write the trained weights as a state_dict there (.pt, .npz, .safetensors).
    """
    if len(spec.members) != 1:
        raise InputError(f"train runs one learning rate and one seed, got {len(spec.members)} members")
    if export:
        state_dict.check_export_path(export)
    ds, data_id = load(spec, out_dir)
    group = Group(spec, kind="train", folder="")
    with group.open(out_dir, data_id, mode) as folder:
        (record,), trained = train_group(group, ds, folder, progress)
        logs = record["logs"]
        paths = {"json": folder.path("logs.json"), "csv": folder.path("logs.csv")}
        title = f"{spec.network} on {ds.name}, lr={spec.members[0][0]:g}"
        paths["png"] = folder.figure(
            "curves.png", lambda path: plots.training_curves(logs, path, title=title)
        )
        if export:
            graphdef, states = trained
            trained_model = nnx.merge(graphdef, unstack(states.params, 0))
            paths["export"] = state_dict.export_state_dict(models.state_dict(trained_model), export)
    return {"logs": logs, "paths": paths, "meta": record["meta"]}
