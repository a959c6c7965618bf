"""Lab D (a TP2 report): MNIST by hand, a linear softmax classifier and one-hidden-layer networks,
per-example SGD, Glorot- and Kaiming-uniform initialisation; curves and confusion matrices.

Each network trains with the hand-written backward pass and SGD (lr 0.01, batch size 1: a scan of
single-example steps in one compiled program per epoch); the epoch with the best validation
accuracy is kept and scored once on the test set.

    jaxtrainer lab mnist --dataset mnist --data-dir DIR --out runs/mnist
"""

from __future__ import annotations

import os
import time
from typing import Sequence

from ..config import check_batch_size, check_lr, check_n_epochs
from ..handgrad import SoftmaxMLP, backprop
from ..tasks import Classification
from . import classify

DEFAULT_DATASET = "mnist"
EPOCHS = 10
LR = 0.01
HIDDEN = 100
# name: (hidden layers, activation, initialisation)
NETWORKS = {
    "linear": ((), "tanh", "glorot"),
    "tanh-glorot": ((HIDDEN,), "tanh", "glorot"),
    "relu-kaiming": ((HIDDEN,), "relu", "kaiming"),
}


def run_mnist(
    dataset="mnist",
    out_dir: str = "runs/mnist",
    *,
    data_dir=None,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = 1,
    networks: Sequence[str] = tuple(NETWORKS),
    seed: int = 0,
    strategy: str = "auto",
    progress: bool = True,
) -> dict:
    """Each of `networks`; writes report.md, results.json, curves.png and confusion.png."""
    from .. import plots
    from ..data.classes import load_classes, split_train_val

    unknown = [n for n in networks if n not in NETWORKS]
    if unknown:
        raise ValueError(f"unknown network {unknown[0]!r}: expected one of {tuple(NETWORKS)}")
    check_lr(lr)
    check_batch_size(batch_size)
    start = time.perf_counter()
    ds = load_classes(dataset, data_dir=data_dir)
    train, val = split_train_val(ds.X_train, ds.y_train, seed=seed)
    task = Classification(ds.n_classes)
    runs, matrices, records = {}, {}, []
    for name in networks:
        hidden, activation, init = NETWORKS[name]
        model = SoftmaxMLP(
            ds.n_features, list(hidden), ds.n_classes, activation=activation, init=init, seed=seed
        )
        graphdef, (member,) = classify.train_members(
            model,
            "sgd",
            [lr],
            batch_size,
            train,
            val,
            epochs=epochs,
            task=task,
            gradient=backprop,
            strategy=strategy,
            progress=progress,
            desc=name,
            store=os.path.join(out_dir, "sweeps", name),
        )
        test = classify.test_metrics(graphdef, member, (ds.X_test, ds.y_test), task)
        predicted = classify.predict(graphdef, member.params, ds.X_test)
        matrices[name] = classify.confusion_matrix(ds.y_test, predicted, ds.n_classes)
        runs[name] = member.logs
        records.append(
            {
                "network": name,
                "hidden": list(hidden),
                "activation": activation,
                "init": init,
                "test": test,
                "confusion": matrices[name].tolist(),
                **classify.member_record(member),
            }
        )
    os.makedirs(out_dir, exist_ok=True)
    plots.classification_curves(
        runs, os.path.join(out_dir, "curves.png"), title=f"{ds.name}: per-example SGD, lr {lr:g}"
    )
    plots.confusion_figure(matrices, ds.class_names, os.path.join(out_dir, "confusion.png"))
    summary = {
        **classify.data_record(ds, train, val),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "networks": records,
        "seconds": time.perf_counter() - start,
    }
    classify.write_outputs(out_dir, summary, _report(summary))
    return summary


def _report(summary: dict) -> list:
    lines = [
        f"# Lab D: {summary['dataset']} by hand",
        "",
        f"{summary['n_train']} training / {summary['n_val']} validation examples (seeded "
        f"split), SGD lr {summary['lr']:g}, batch size {summary['batch_size']}, "
        f"{summary['epochs']} epochs, backward pass by hand. Wall time "
        f"{summary['seconds']:.1f} s.",
        "",
        "| network | hidden | init | best epoch | val accuracy (%) | test accuracy (%) | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["networks"]:
        lines.append(
            f"| {r['network']} | {r['hidden'] or '-'} {r['activation'] if r['hidden'] else ''}"
            f" | {r['init']} | {r['best_epoch']} | "
            f"{100 * r['logs']['val_accuracy'][r['best_epoch']]:.2f} | "
            f"{100 * r['test']['accuracy']:.2f} | {r['seconds']:.1f} |"
        )
    lines += ["", "![curves](curves.png)", "", "![confusion matrices](confusion.png)", ""]
    return lines


def add_arguments(p) -> None:
    p.add_argument("--networks", nargs="+", choices=tuple(NETWORKS), default=list(NETWORKS))
    p.add_argument("--lr", type=float, default=LR)
    p.add_argument("--batch-size", type=int, default=1)


def run_from_args(args) -> dict:
    check_n_epochs(args.epochs)
    return run_mnist(
        args.dataset,
        args.out,
        data_dir=args.data_dir,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        networks=args.networks,
        seed=args.seed,
        strategy=args.strategy,
        progress=not args.no_progress,
    )
