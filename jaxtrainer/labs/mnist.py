"""Lab D: MNIST by hand, a linear softmax classifier and one-hidden-layer networks,
per-example SGD, Glorot- and Kaiming-uniform initialisation; curves and confusion matrices.

Each network trains with the hand-written backward pass and SGD (lr 0.01, batch size 1: a scan of
single-example steps in one compiled program per epoch); the epoch with the best validation
accuracy is kept and scored once on the test set.

    jaxtrainer lab mnist --dataset mnist --data-dir DIR --out runs/mnist
"""

from __future__ import annotations

import time
from typing import Sequence

from .. import plots
from ..config import check_batch_size, check_lr, check_n_epochs
from ..data.classes import load_classes, split_train_val
from ..runs import Run
from ..tasks import Classification
from . import classify
from .commands import LABS, MNIST_BATCH_SIZE, MNIST_LR, MNIST_NETWORKS
from .handgrad import SoftmaxMLP, backprop


def run_mnist(
    dataset=LABS["mnist"].dataset,
    out_dir: str = "runs/mnist",
    *,
    data_dir=None,
    epochs: int = LABS["mnist"].epochs,
    lr: float = MNIST_LR,
    batch_size: int = MNIST_BATCH_SIZE,
    networks: Sequence[str] = tuple(MNIST_NETWORKS),
    seed: int = 0,
    strategy: str = "auto",
    progress: bool = True,
    mode: str = "continue",
) -> dict:
    """Each of `networks` in the run folder `out_dir` (each network's training in
    `out_dir/sweeps/`, opened with `mode`); writes report.md, results.json, curves.png and
    confusion.png."""
    check_n_epochs(epochs)
    unknown = [n for n in networks if n not in MNIST_NETWORKS]
    if unknown:
        raise ValueError(f"unknown network {unknown[0]!r}: expected one of {tuple(MNIST_NETWORKS)}")
    check_lr(lr)
    check_batch_size(batch_size)
    start = time.perf_counter()
    ds = load_classes(dataset, data_dir=data_dir)
    train, val = split_train_val(ds.X_train, ds.y_train, seed=seed)
    task = Classification(ds.n_classes)
    config = {"networks": list(networks), "lr": lr, "batch_size": batch_size, "seed": seed}
    runs, matrices, records = {}, {}, []
    with Run(out_dir, classify.lab_identity("mnist", config, ds), mode=mode) as run:
        for name in networks:
            hidden, activation, init = MNIST_NETWORKS[name]
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
                folder=run.path("sweeps", name),
                gradient=backprop,
                strategy=strategy,
                mode=mode,
                progress=progress,
                desc=name,
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
        title = f"{ds.name}: per-example SGD, lr {lr:g}"
        run.figure("curves.png", lambda path: plots.classification_curves(runs, path, title=title))
        run.figure("confusion.png", lambda path: plots.confusion_figure(matrices, ds.class_names, path))
        summary = {
            **classify.data_record(ds, train, val),
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "networks": records,
            "seconds": time.perf_counter() - start,
        }
        classify.write_outputs(run, summary, _report(summary))
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


def run_from_args(args, mode: str = "continue") -> dict:
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
        mode=mode,
    )
