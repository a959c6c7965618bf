"""Lab B: multinomial logistic regression with its gradient and its optimizers written by hand.

p(y|x) = softmax(θ x̃), x̃ = [x, 1], θ ~ N(0, 0.01²); the loss is the negative log-likelihood summed
over the batch, its gradient Σᵢ (p̂ᵢ − yᵢ) x̃ᵢᵀ written out (`handgrad`), SGD and Adam written out
(`handopt`). The grid lr x batch size runs per (optimizer, batch size) as one compiled sweep over
the learning rates; batch size 1 is a scan of single-example steps inside that program.

    jaxtrainer lab logreg --dataset fashion_mnist --data-dir DIR --out runs/logreg
"""

from __future__ import annotations

import itertools
from typing import Sequence

from ..config import check_batch_size, check_lr
from . import classify, handopt
from .commands import LOGREG_BATCH_SIZES, LOGREG_LRS, OPTIMIZERS
from .handgrad import SoftmaxMLP


def run_logreg(
    options: classify.Options,
    lrs: Sequence[float] = LOGREG_LRS,
    batch_sizes: Sequence[int] = LOGREG_BATCH_SIZES,
    optimizers: Sequence[str] = OPTIMIZERS,
) -> dict:
    """Trains the grid optimizer ("sgd", "adam") x batch size x learning rate, one sweep over `lrs`
    per (optimizer, batch size) in OUT/sweeps/, and keeps the best configuration; writes report.md,
    results.json, best_curves.png and best_model.npz in `options.out_dir`; returns the summary."""
    lrs, batch_sizes = [check_lr(lr) for lr in lrs], [check_batch_size(b) for b in batch_sizes]
    for optimizer in optimizers:
        handopt.by_name(optimizer)
    config = {"lrs": lrs, "batch_sizes": batch_sizes, "optimizers": list(optimizers)}
    with classify.open_lab("logreg", options, config, reduction="sum") as lab:
        members, graphdef = [], None
        for optimizer, batch_size in itertools.product(optimizers, batch_sizes):
            model = SoftmaxMLP(lab.ds.n_features, [], lab.ds.n_classes, init="normal", seed=options.seed)
            graphdef, trained = lab.sweep(model, optimizer, lrs, batch_size, f"{optimizer}-batch{batch_size}")
            members += trained
        best = classify.best_member(members)
        label = f"{best.optimizer}, lr {best.lr:g}, batch {best.batch_size}"
        classify.write_best(lab.run, best, label, "best configuration")
        summary = {
            "loss": "NLL summed over the batch",
            "init": "N(0, 0.01^2)",
            "best": classify.member_record(best),
            "test": lab.test(graphdef, best),
            "members": [classify.member_record(m) for m in members],
        }
        return lab.finish(summary, lambda summary: _report(summary, lrs, batch_sizes, optimizers))


def _report(summary: dict, lrs, batch_sizes, optimizers) -> list:
    cells = {
        (m["optimizer"], m["lr"], m["batch_size"]): m["logs"]["val_accuracy"][-1] for m in summary["members"]
    }
    best = summary["best"]
    setup = f"{summary['epochs']} epochs, θ ~ {summary['init']}, {summary['loss']}"
    title = f"Lab B: logistic regression by hand on {summary['dataset']}"
    lines = classify.report_head(title, summary, f"{setup}; gradient, SGD and Adam written by hand")
    for optimizer in optimizers:
        accuracy = lambda lr, bs: cells[(optimizer, float(lr), bs)]
        lines += classify.accuracy_section(optimizer, "lr \\ batch size", lrs, batch_sizes, accuracy)
    label = f"{best['optimizer']}, lr {best['lr']:g}, batch size {best['batch_size']}"
    return lines + classify.best_section("Best configuration", label, best, summary["test"])


def run_from_args(args, mode: str = "continue") -> dict:
    """`jaxtrainer lab logreg`."""
    return run_logreg(classify.Options.from_args(args, mode), args.lrs, args.batch_sizes, args.optimizers)
