"""Lab D: MNIST by hand, a linear softmax classifier and one-hidden-layer networks,
per-example SGD, Glorot- and Kaiming-uniform initialisation; curves and confusion matrices.

Each network trains with the hand-written backward pass and SGD (lr 0.01, batch size 1: a scan of
single-example steps in one compiled program per epoch); the epoch with the best validation
accuracy is kept and scored once on the test set.

    jaxtrainer lab mnist --dataset mnist --data-dir DIR --out runs/mnist
"""

from __future__ import annotations

from typing import Sequence

from .. import plots
from ..config import check_batch_size, check_lr
from ..errors import InputError
from ..tables import markdown_table
from . import classify
from .commands import MNIST_BATCH_SIZE, MNIST_LR, MNIST_NETWORKS
from .handgrad import SoftmaxMLP


def run_mnist(
    options: classify.Options,
    lr: float = MNIST_LR,
    batch_size: int = MNIST_BATCH_SIZE,
    networks: Sequence[str] = tuple(MNIST_NETWORKS),
) -> dict:
    """Trains each of `networks` (names in `commands.MNIST_NETWORKS`) with SGD, a sweep in
    OUT/sweeps/, and scores its best epoch on the test set; writes report.md, results.json,
    curves.png and confusion.png in `options.out_dir`; returns the summary."""
    unknown = [n for n in networks if n not in MNIST_NETWORKS]
    if unknown:
        raise InputError(f"unknown network {unknown[0]!r}: expected one of {tuple(MNIST_NETWORKS)}")
    lr, batch_size = check_lr(lr), check_batch_size(batch_size)
    logs, matrices, records = {}, {}, []
    config = {"networks": list(networks), "lr": lr, "batch_size": batch_size}
    with classify.open_lab("mnist", options, config) as lab:
        ds = lab.ds
        for name in networks:
            hidden, activation, init = MNIST_NETWORKS[name]
            model = SoftmaxMLP(
                ds.n_features, list(hidden), ds.n_classes, activation=activation, init=init, seed=options.seed
            )
            graphdef, (member,) = lab.sweep(model, "sgd", [lr], batch_size, name)
            matrices[name] = classify.confusion_matrix(
                graphdef, member.params, ds.X_test, ds.y_test, ds.n_classes
            )
            logs[name] = member.logs
            network = {"network": name, "hidden": list(hidden), "activation": activation, "init": init}
            test, confusion = lab.test(graphdef, member), matrices[name].tolist()
            records.append(
                {**network, "test": test, "confusion": confusion, **classify.member_record(member)}
            )
        title = f"{ds.name}: per-example SGD, lr {lr:g}"
        lab.run.figure("curves.png", lambda path: plots.classification_curves(logs, path, title=title))
        lab.run.figure("confusion.png", lambda path: plots.confusion_figure(matrices, ds.class_names, path))
        return lab.finish({"lr": lr, "batch_size": batch_size, "networks": records}, _report)


def _report(summary: dict) -> list:
    setup = f"SGD lr {summary['lr']:g}, batch size {summary['batch_size']}, {summary['epochs']} epochs"
    lines = classify.report_head(
        f"Lab D: {summary['dataset']} by hand", summary, f"{setup}, backward pass by hand"
    )
    header = ("network", "hidden", "init", "best epoch", "val accuracy (%)", "test accuracy (%)", "train s")
    rows = (
        (
            r["network"],
            f"{r['hidden'] or '-'} {r['activation'] if r['hidden'] else ''}",
            r["init"],
            r["best_epoch"],
            f"{100 * r['logs']['val_accuracy'][r['best_epoch']]:.2f}",
            f"{100 * r['test']['accuracy']:.2f}",
            f"{r['seconds']:.1f}",
        )
        for r in summary["networks"]
    )
    figures = ["![curves](curves.png)", "", "![confusion matrices](confusion.png)", ""]
    return [*lines, markdown_table(header, rows), "", *figures]


def run_from_args(args, mode: str = "continue") -> dict:
    """`jaxtrainer lab mnist`."""
    return run_mnist(classify.Options.from_args(args, mode), args.lr, args.batch_size, args.networks)
