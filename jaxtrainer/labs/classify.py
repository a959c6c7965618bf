"""What the classification labs (B-D) share: a model trained at several learning rates as one sweep,
kept in a run folder with each member's best epoch; the test set scored once; confusion matrices,
tables and the lab's outputs.

Model selection follows the labs: the validation split (from the training set) picks the epoch
and the configuration; the test set is used once, by the selected parameters.

A lab's folder OUT is a run folder (`runs.Run`: its identity is the lab's settings and data), and
each of its sweeps is one under OUT/sweeps/, checkpointed every epoch: the same command continues
an interrupted lab from the last finished epoch of the sweep it was in; another configuration is
refused, with the differing fields named, unless the lab is started over (mode "overwrite").
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Callable, Dict, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import plots
from ..config import check_batch_size, check_lr
from ..data import fingerprint
from ..gradient import apply, autodiff
from ..runs import Run
from ..settings import Settings
from ..sweeps import fit_sweep, stack, unstack
from ..train import evaluate, init_state, to_device
from . import handopt

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
    def best_val_accuracy(self) -> float:
        return self.logs["val_accuracy"][self.best_epoch]


def sweep_identity(model, initial, optimizer, lrs, batch_size, train, val, task, gradient) -> dict:
    """Everything a sweep's results depend on, JSON-comparable (the epoch count aside: asking more
    epochs continues the sweep)."""
    params = jax.tree.leaves(initial)
    crc = zlib.crc32(b"".join(np.asarray(p, np.float32).tobytes() for p in params))
    return {
        "model": type(model).__name__,
        "shapes": [list(p.shape) for p in params],
        "initial_crc32": crc,
        "optimizer": optimizer,
        "lrs": list(lrs),
        "batch_size": batch_size,
        "task": repr(task),
        "gradient": f"{gradient.__module__}.{gradient.__qualname__}",
        "data": fingerprint(train, val),
    }


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
    folder: str,
    gradient: Callable = autodiff,
    strategy: str = "auto",
    mode: str = "continue",
    progress: bool = True,
    desc: str = "sweep",
) -> Tuple[nnx.GraphDef, List[Member]]:
    """`model` (its initial parameters shared by every member) trained with `optimizer` at each
    of `lrs` as one compiled sweep, logging loss and accuracy on the whole training split and on
    the validation split before training and after each epoch.

    The sweep is the run folder `folder` (`runs.Run`, opened with `mode`): after every epoch its
    checkpoint holds the members' training state, their best epochs and the parameters of those,
    so the same call continues an interrupted sweep from its last finished epoch, with the results
    of an uninterrupted one, and reads a finished sweep back instead of training it again."""
    factory = handopt.by_name(optimizer)
    check_batch_size(batch_size)
    lrs = [check_lr(lr) for lr in lrs]
    graphdef, initial = nnx.split(model, nnx.Param)
    identity = sweep_identity(model, initial, optimizer, lrs, batch_size, train, val, task, gradient)
    states = stack([init_state(model, lr, factory)[1] for lr in lrs])
    untrained = {"state": states, "best_params": states.params, "best_epoch": np.zeros(len(lrs), np.int32)}
    settings = Settings(
        batch_size=batch_size,
        task=task,
        optimizer=factory,
        gradient=gradient,
        train_eval_size=len(train[0]),
        names=SETS,
        strategy=strategy,
    )
    with Run(folder, identity, mode=mode, epochs=epochs) as run:
        saved, logs = run.restore(untrained)
        best_params, best_epochs = saved["best_params"], np.asarray(saved["best_epoch"])

        def keep_best(epoch, states, logs):
            """Each member's parameters at its best validation accuracy so far (the earliest of
            ties), then the checkpoint."""
            nonlocal best_params, best_epochs
            improved = np.array(
                [m["val_accuracy"][-1] > m["val_accuracy"][e] for m, e in zip(logs, best_epochs)]
            )
            best_epochs = np.where(improved, epoch, best_epochs)
            best_params = jax.tree.map(
                lambda kept, now: jnp.where(improved.reshape((-1,) + (1,) * (now.ndim - 1)), now, kept),
                best_params,
                states.params,
            )
            tree = {"state": states, "best_params": best_params, "best_epoch": best_epochs}
            run.checkpoint(tree, epoch, logs)

        if logs is None or run.epochs_done < epochs:
            _, logs = fit_sweep(
                graphdef,
                saved["state"],
                train,
                val,
                epochs,
                settings,
                logs=logs,
                progress=progress,
                on_epoch=keep_best,
                labels=[f"{optimizer} lr {lr:g}" for lr in lrs],
                desc=desc,
            )
        seconds = run.elapsed()
    members = [
        Member(
            optimizer,
            lr,
            batch_size,
            logs[i],
            int(best_epochs[i]),
            unstack(best_params, i),
            seconds / len(lrs),
        )
        for i, lr in enumerate(lrs)
    ]
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


def write_best(run: Run, member: Member, label: str, title: str) -> None:
    """The selected model's θ's (best_model.npz: theta0, theta1, ... in layer order) and its
    curves (best_curves.png)."""
    thetas = {f"theta{i}": np.asarray(theta) for i, theta in enumerate(jax.tree.leaves(member.params))}
    run.write_npz("best_model.npz", thetas)
    draw = lambda path: plots.classification_curves({label: member.logs}, path, title=f"{title}: {label}")
    run.figure("best_curves.png", draw)


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


def data_record(ds, train: Tuple, val: Tuple) -> dict:
    return {"dataset": ds.name, "n_train": len(train[0]), "n_val": len(val[0]), "n_test": len(ds.X_test)}


def lab_identity(lab: str, config: dict, ds) -> dict:
    """A lab's run folder's identity: the lab, its settings (the epoch count aside) and its data."""
    return {"lab": lab, **config, "data": fingerprint((ds.X_train, ds.y_train), (ds.X_test, ds.y_test))}


def write_outputs(run: Run, summary: dict, report_lines: Sequence[str]) -> None:
    """results.json (the summary) and report.md."""
    run.write_json("results.json", summary)
    run.write_text("report.md", "\n".join(report_lines))


def member_record(member: Member) -> dict:
    """JSON-ready: everything but the parameters."""
    return {f.name: getattr(member, f.name) for f in dataclasses.fields(member) if f.name != "params"}
