"""What the classification labs (B-D) share: sweeps over learning rates kept in a run folder with
each member's best epoch on the validation split, the test set scored once by the selected model,
and the reports. A lab's OUT is a run folder (`runs.Run`); each of its sweeps is one under
OUT/sweeps/, checkpointed every epoch, so the same command continues an interrupted lab.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import zlib
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import plots
from ..config import check_n_epochs
from ..data import fingerprint
from ..data.classes import ClassificationSet, load_classes, split_train_val
from ..gradient import apply
from ..runs import Run
from ..settings import Settings
from ..sweeps import Loop, fit_sweep, stack, unstack
from ..tables import markdown_table
from ..tasks import Classification
from ..train import evaluate, init_state, to_device
from . import handopt
from .handgrad import backprop


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
        """The validation accuracy at the best epoch."""
        return self.logs["val_accuracy"][self.best_epoch]


def best_member(members: Sequence[Member]) -> Member:
    """The member with the highest validation accuracy at its best epoch (the first of ties)."""
    finite = [m for m in members if math.isfinite(m.best_val_accuracy)]
    return max(finite or members, key=lambda m: m.best_val_accuracy)


def write_best(run: Run, member: Member, label: str, title: str) -> None:
    """best_model.npz (the selected model's θ's: theta0, theta1, ... in layer order) and its curves."""
    thetas = {f"theta{i}": np.asarray(theta) for i, theta in enumerate(jax.tree.leaves(member.params))}
    run.write_npz("best_model.npz", thetas)
    draw = lambda path: plots.classification_curves({label: member.logs}, path, title=f"{title}: {label}")
    run.figure("best_curves.png", draw)


def confusion_matrix(graphdef, params, X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = examples of `X` of class i (`y`) that the parameters `params` classify as j."""
    logits = jax.jit(apply, static_argnums=0)(graphdef, params, jnp.asarray(X, jnp.float32))
    flat = n_classes * np.asarray(y, np.int64) + np.asarray(jnp.argmax(logits, axis=1))
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy_section(
    heading: str, corner: str, rows: Sequence, columns: Sequence, accuracy: Callable
) -> List[str]:
    """A report's section on `heading`'s validation accuracies after the last epoch: a table of
    `accuracy(row, column)` in percent ('-' where it is not a finite number)."""
    percent = lambda v: "-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}"
    cells = ([r, *(percent(accuracy(r, c)) for c in columns)] for r in rows)
    table = markdown_table((corner, *columns), cells)
    return [f"## {heading}: validation accuracy (%) after the last epoch", "", table, ""]


def best_section(heading: str, label: str, best: dict, test: dict) -> List[str]:
    """A report's lines on the selected model (`label`, its record `best`): its validation and test
    accuracy, its curves and where its parameters are."""
    val = 100 * best["logs"]["val_accuracy"][best["best_epoch"]]
    return [
        f"## {heading}",
        "",
        f"{label}: validation accuracy {val:.2f} % at epoch {best['best_epoch']}; that model's **test "
        f"accuracy {100 * test['accuracy']:.2f} %** (mean NLL {test['loss']:.4f}), the test set's only use.",
        "",
        "![curves](best_curves.png)",
        "",
        "Its parameters: best_model.npz (theta0, theta1, ...: one (out, in + 1) matrix per layer).",
        "",
    ]


def report_head(title: str, summary: dict, setup: str) -> List[str]:
    """A report's title and first paragraph: the split, `setup` (what was trained how), the time."""
    split = f"{summary['n_train']} training / {summary['n_val']} validation examples (seeded split)"
    return [f"# {title}", "", f"{split}, {setup}. Wall time {summary['seconds']:.1f} s.", ""]


def member_record(member: Member) -> dict:
    """JSON-ready: everything but the parameters."""
    return {f.name: getattr(member, f.name) for f in dataclasses.fields(member) if f.name != "params"}


@dataclasses.dataclass(frozen=True)
class Options:
    """What every classification lab takes besides its grid."""

    dataset: str  # a name in `jaxtrainer.data.classes`
    out_dir: str  # the lab's run folder
    data_dir: str | None = None  # None: the dataset's default place
    epochs: int = 5  # per configuration; more than a finished run's continue it
    seed: int = 0  # the initial weights' and the train/validation split's
    strategy: str = "auto"  # how a sweep's members share one program ("auto", "vmap", "map")
    progress: bool = True
    mode: str = "continue"  # how the run folder is opened ("continue", "resume", "overwrite")

    @classmethod
    def from_args(cls, args, mode: str) -> Options:
        """The options of `jaxtrainer lab NAME` (the lab's own are read by its module)."""
        progress = not args.no_progress
        return cls(
            args.dataset, args.out, args.data_dir, args.epochs, args.seed, args.strategy, progress, mode
        )


@dataclasses.dataclass
class LabRun:
    """A classification lab under way: its data (split train/validation), task and run folder."""

    options: Options
    ds: ClassificationSet
    train: Tuple
    val: Tuple
    task: Classification
    run: Run
    start: float

    def sweep(self, model: nnx.Module, optimizer: str, lrs: Sequence[float], batch_size: int, name: str):
        """`model` trained by the hand-written backward pass and `optimizer` at each of `lrs` as one
        compiled sweep, logging both splits before training and after each epoch; returns (graphdef,
        members). OUT/sweeps/`name` checkpoints it every epoch (the members' states, best epochs and
        their parameters): the same call continues it, or reads a finished one back. The lab has
        checked `lrs` (floats) and `batch_size`."""
        o, factory = self.options, handopt.by_name(optimizer)
        graphdef, initial = nnx.split(model, nnx.Param)
        leaves = jax.tree.leaves(initial)
        identity = {  # what the sweep's results depend on (the epoch count aside: more continue it)
            "model": type(model).__name__,
            "shapes": [list(p.shape) for p in leaves],
            "initial_crc32": zlib.crc32(b"".join(np.asarray(p, np.float32).tobytes() for p in leaves)),
            "optimizer": optimizer,
            "lrs": lrs,
            "batch_size": batch_size,
            "task": repr(self.task),
            "gradient": f"{backprop.__module__}.{backprop.__qualname__}",
            "data": fingerprint(self.train, self.val),
        }
        settings = Settings(
            batch_size=batch_size,
            task=self.task,
            optimizer=factory,
            gradient=backprop,
            train_eval_size=len(self.train[0]),
            names=("train", "val"),
            strategy=o.strategy,
        )
        states = stack([init_state(model, lr, settings)[1] for lr in lrs])
        zero = np.zeros(len(lrs), np.int32)
        untrained = {"state": states, "best_params": states.params, "best_epoch": zero}
        with Run(self.run.path("sweeps", name), identity, mode=o.mode, epochs=o.epochs) as run:
            saved, logs = run.restore(untrained)
            best_params, best_epochs = saved["best_params"], np.asarray(saved["best_epoch"])

            def keep_best(epoch, states, logs):
                """Each member's parameters at its best validation accuracy so far (the earliest of
                ties) and that epoch, then the checkpoint."""
                nonlocal best_params, best_epochs
                accuracy = np.array([m["val_accuracy"] for m in logs])  # (member, epoch)
                improved = accuracy[:, -1] > accuracy[np.arange(len(logs)), best_epochs]
                pick = lambda kept, now: jnp.where(improved.reshape((-1,) + (1,) * (now.ndim - 1)), now, kept)
                best_params = jax.tree.map(pick, best_params, states.params)
                best_epochs = np.where(improved, epoch, best_epochs)
                tree = {"state": states, "best_params": best_params, "best_epoch": best_epochs}
                run.checkpoint(tree, epoch, logs)

            if logs is None or run.epochs_done < o.epochs:
                labels = [f"{optimizer} lr {lr:g}" for lr in lrs]
                loop = Loop(progress=o.progress, on_epoch=keep_best, labels=labels, desc=name)
                _, logs = fit_sweep(
                    graphdef, saved["state"], self.train, self.val, o.epochs, settings, logs=logs, loop=loop
                )
            share = run.elapsed() / len(lrs)
        return graphdef, [
            Member(optimizer, lr, batch_size, logs[i], int(best_epochs[i]), unstack(best_params, i), share)
            for i, lr in enumerate(lrs)
        ]

    def test(self, graphdef, member: Member) -> Dict[str, float]:
        """The member's loss and accuracy on the test set (its only use)."""
        X, y = to_device(self.ds.X_test, self.ds.y_test, self.task)
        metrics = evaluate(graphdef, member.params, X, y, Settings(task=self.task, strategy="map"))
        return {k: float(v) for k, v in metrics.items()}

    def finish(self, summary: dict, report: Callable[[dict], List[str]]) -> dict:
        """results.json (the data and options shared by every lab, then `summary`) and report.md."""
        o = self.options
        summary = {
            "dataset": self.ds.name,
            "n_train": len(self.train[0]),
            "n_val": len(self.val[0]),
            "n_test": len(self.ds.X_test),
            "epochs": o.epochs,
            "seed": o.seed,
            "strategy": o.strategy,
            **summary,
            "seconds": time.perf_counter() - self.start,
        }
        self.run.write_json("results.json", summary)
        self.run.write_text("report.md", "\n".join(report(summary)))
        return summary


@contextlib.contextmanager
def open_lab(lab: str, options: Options, config: dict, reduction: str = "mean") -> Iterator[LabRun]:
    """The lab's data loaded and split, its run folder open (identity: the lab, `config`, the seed
    and the data; the epoch count aside, so that more epochs continue it)."""
    check_n_epochs(options.epochs)
    start = time.perf_counter()
    options = dataclasses.replace(options, strategy=Settings(strategy=options.strategy).strategy)
    ds = load_classes(options.dataset, data_dir=options.data_dir)
    train, val = split_train_val(ds.X_train, ds.y_train, seed=options.seed)
    data = fingerprint((ds.X_train, ds.y_train), (ds.X_test, ds.y_test))
    identity = {"lab": lab, **config, "seed": options.seed, "data": data}
    with Run(options.out_dir, identity, mode=options.mode) as run:
        task = Classification(ds.n_classes, reduction=reduction)
        yield LabRun(options, ds, train, val, task, run, start)
