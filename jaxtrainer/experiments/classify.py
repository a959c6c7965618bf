"""What the classification labs share: training a model at several learning rates as one sweep
while keeping each member's best epoch, scoring on the test set once, confusion matrices, tables.

Model selection follows the labs: the validation split (from the training set) picks the epoch
and the configuration; the test set is used once, by the selected parameters.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import zlib
from typing import Callable, Dict, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import handopt
from ..config import check_batch_size, check_lr
from ..gradient import apply, autodiff
from ..settings import Settings
from ..sweeps import fit_sweep, stack, unstack
from ..train import evaluate, init_state, to_device

SETS = ("train", "val")


@dataclasses.dataclass
class Member:
    """One trained configuration: its logs (epoch 0 = before training) and its best epoch."""

    optimizer: str
    lr: float
    batch_size: int
    logs: Dict[str, List[float]]
    best_epoch: int  # by validation accuracy, the earliest of ties
    params: nnx.State  # the parameters after `best_epoch`
    seconds: float  # the member's share of its sweep's wall time

    @property
    def final_val_accuracy(self) -> float:
        return self.logs["val_accuracy"][-1]

    @property
    def best_val_accuracy(self) -> float:
        return self.logs["val_accuracy"][self.best_epoch]


def _identity(model, initial, optimizer, lrs, batch_size, train, val, epochs, task, gradient) -> dict:
    """Everything a finished sweep's results depend on, JSON-comparable."""
    from ..data import fingerprint

    params = jax.tree.leaves(initial)
    crc = zlib.crc32(b"".join(np.asarray(p, np.float32).tobytes() for p in params))
    return {
        "model": type(model).__name__,
        "shapes": [list(p.shape) for p in params],
        "initial_crc32": crc,
        "optimizer": optimizer,
        "lrs": list(lrs),
        "batch_size": batch_size,
        "epochs": epochs,
        "task": repr(task),
        "gradient": f"{gradient.__module__}.{gradient.__qualname__}",
        "data": fingerprint(train, val),
    }


def _load_finished(store: str, identity: dict, params_like) -> List[Member] | None:
    """The members a previous run of this very sweep saved under `store`, or None."""
    try:
        with open(f"{store}.json") as f:
            saved = json.load(f)
        if saved["identity"] != identity:
            return None
        structure = jax.tree.structure(params_like)
        with np.load(f"{store}.npz") as arrays:
            members = []
            for i, record in enumerate(saved["members"]):
                leaves = [jnp.asarray(arrays[f"member{i}_{j}"]) for j in range(structure.num_leaves)]
                members.append(Member(**record, params=jax.tree.unflatten(structure, leaves)))
        return members
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_finished(store: str, identity: dict, members: Sequence[Member]) -> None:
    """The parameters first, then the JSON that marks the sweep finished (each written to a
    temporary name and renamed, so an interruption never leaves half a file)."""
    os.makedirs(os.path.dirname(store) or ".", exist_ok=True)
    with open(f"{store}.tmp.npz", "wb") as f:
        np.savez(
            f,
            **{
                f"member{i}_{j}": np.asarray(leaf)
                for i, m in enumerate(members)
                for j, leaf in enumerate(jax.tree.leaves(m.params))
            },
        )
    os.replace(f"{store}.tmp.npz", f"{store}.npz")
    with open(f"{store}.tmp.json", "w") as f:
        json.dump({"identity": identity, "members": [member_record(m) for m in members]}, f)
    os.replace(f"{store}.tmp.json", f"{store}.json")


def train_members(
    model: nnx.Module,
    optimizer: str,
    lrs: Sequence[float],
    batch_size: int,
    train: Tuple,
    val: Tuple,
    *,
    epochs: int,
    task,
    gradient: Callable = autodiff,
    strategy: str = "auto",
    progress: bool = True,
    desc: str = "sweep",
    store: str | None = None,
) -> Tuple[nnx.GraphDef, List[Member]]:
    """`model` (its initial parameters shared by every member) trained with `optimizer` at each
    of `lrs` as one compiled sweep, logging loss and accuracy on the whole training split and on
    the validation split before training and after each epoch.

    With `store` (a path without extension), the finished sweep is saved there, and a later call
    with the same model, data and settings loads it instead of training again: an interrupted lab
    loses at most the sweep it was in."""
    factory = handopt.by_name(optimizer)
    check_batch_size(batch_size)
    lrs = [check_lr(lr) for lr in lrs]
    graphdef, initial = nnx.split(model, nnx.Param)
    identity = _identity(model, initial, optimizer, lrs, batch_size, train, val, epochs, task, gradient)
    if store is not None:
        finished = _load_finished(store, identity, initial)
        if finished is not None:
            return graphdef, finished
    states = stack([init_state(model, lr, factory)[1] for lr in lrs])
    best = [(0, unstack(states.params, i)) for i in range(len(lrs))]  # (epoch, its parameters)

    def keep_best(epoch, states, logs):
        for i, member_logs in enumerate(logs):
            accuracies = member_logs["val_accuracy"]
            if accuracies[-1] > accuracies[best[i][0]]:
                best[i] = (epoch, unstack(states.params, i))

    start = time.perf_counter()
    _, logs = fit_sweep(
        graphdef,
        states,
        train,
        val,
        epochs,
        Settings(
            batch_size=batch_size,
            task=task,
            optimizer=factory,
            gradient=gradient,
            train_eval_size=len(train[0]),
            names=SETS,
            strategy=strategy,
        ),
        progress=progress,
        on_epoch=keep_best,
        labels=[f"{optimizer} lr {lr:g}" for lr in lrs],
        desc=desc,
    )
    seconds = (time.perf_counter() - start) / len(lrs)
    members = [
        Member(optimizer, float(lr), batch_size, logs[i], *best[i], seconds) for i, lr in enumerate(lrs)
    ]
    if store is not None:
        _save_finished(store, identity, members)
    return graphdef, members


def best_member(members: Sequence[Member]) -> Member:
    """The member with the highest validation accuracy at its best epoch (the first of ties)."""
    finite = [m for m in members if math.isfinite(m.best_val_accuracy)]
    return max(finite or members, key=lambda m: m.best_val_accuracy)


def test_metrics(graphdef, member: Member, test: Tuple, task) -> Dict[str, float]:
    X, y = to_device(*test, task)
    return {
        k: float(v)
        for k, v in evaluate(graphdef, member.params, X, y, Settings(task=task, strategy="map")).items()
    }


def predict(graphdef, params, X: np.ndarray) -> np.ndarray:
    logits = jax.jit(apply, static_argnums=0)(graphdef, params, jnp.asarray(X, jnp.float32))
    return np.asarray(jnp.argmax(logits, axis=1))


def write_best(out_dir: str, member: Member, label: str, title: str) -> None:
    """The selected model's parameters (best_model.npz) and curves (best_curves.png)."""
    from .. import plots

    os.makedirs(out_dir, exist_ok=True)
    save_params(member, os.path.join(out_dir, "best_model.npz"))
    plots.classification_curves(
        {label: member.logs}, os.path.join(out_dir, "best_curves.png"), title=f"{title}: {label}"
    )


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = examples of class i predicted as j."""
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def markdown_table(
    corner: str, rows: Sequence, columns: Sequence, cell: Callable[[object, object], float | None]
) -> List[str]:
    """A markdown table of `cell(row, column)` (an accuracy, shown as a percentage)."""
    lines = [f"| {corner} | " + " | ".join(str(c) for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for r in rows:
        values = [cell(r, c) for c in columns]
        lines.append(
            f"| {r} | "
            + " | ".join("-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}" for v in values)
            + " |"
        )
    return lines


def save_params(member: Member, path: str) -> None:
    """The θ's of `member`'s best epoch as theta0, theta1, ... (layer order) in an .npz file."""
    np.savez(
        path, **{f"theta{i}": np.asarray(theta) for i, theta in enumerate(jax.tree.leaves(member.params))}
    )


def data_record(ds, train: Tuple, val: Tuple) -> dict:
    return {"dataset": ds.name, "n_train": len(train[0]), "n_val": len(val[0]), "n_test": len(ds.X_test)}


def write_outputs(out_dir: str, summary: dict, report_lines: Sequence[str]) -> None:
    """results.json (the summary) and report.md."""
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(report_lines))


def member_record(member: Member) -> dict:
    """JSON-ready: everything but the parameters."""
    return {f.name: getattr(member, f.name) for f in dataclasses.fields(member) if f.name != "params"}
