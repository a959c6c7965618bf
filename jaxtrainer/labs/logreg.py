"""Lab B: multinomial logistic regression with its gradient and its optimizers written by hand.

p(y|x) = softmax(θ x̃), x̃ = [x, 1], θ ~ N(0, 0.01²); the loss is the negative log-likelihood summed
over the batch, its gradient Σᵢ (p̂ᵢ − yᵢ) x̃ᵢᵀ written out (`handgrad`), SGD and Adam written out
(`handopt`). The grid lr x batch size runs per (optimizer, batch size) as one compiled sweep over
the learning rates; batch size 1 is a scan of single-example steps inside that program.

    jaxtrainer lab logreg --dataset fashion_mnist --data-dir DIR --out runs/logreg
"""

from __future__ import annotations

import time
from typing import Sequence

from ..config import check_batch_size, check_lr, check_n_epochs
from ..data.classes import load_classes, split_train_val
from ..runs import Run
from ..settings import Settings
from ..tasks import Classification
from . import classify, handopt
from .commands import LABS, LOGREG_BATCH_SIZES, LOGREG_LRS, OPTIMIZERS
from .handgrad import SoftmaxMLP, backprop


def run_logreg(
    dataset=LABS["logreg"].dataset,
    out_dir: str = "runs/logreg",
    *,
    data_dir=None,
    epochs: int = LABS["logreg"].epochs,
    lrs: Sequence[float] = LOGREG_LRS,
    batch_sizes: Sequence[int] = LOGREG_BATCH_SIZES,
    optimizers: Sequence[str] = OPTIMIZERS,
    seed: int = 0,
    strategy: str = "auto",
    progress: bool = True,
    mode: str = "continue",
) -> dict:
    """The whole grid in the run folder `out_dir` (each (optimizer, batch size) sweep in
    `out_dir/sweeps/`, opened with `mode`); writes report.md, results.json, best_curves.png and
    best_model.npz and returns the summary written to results.json."""
    check_n_epochs(epochs)
    start = time.perf_counter()
    strategy = Settings(strategy=strategy).strategy
    lrs, batch_sizes = [check_lr(lr) for lr in lrs], [check_batch_size(b) for b in batch_sizes]
    for optimizer in optimizers:
        handopt.by_name(optimizer)
    ds = load_classes(dataset, data_dir=data_dir)
    train, val = split_train_val(ds.X_train, ds.y_train, seed=seed)
    task = Classification(ds.n_classes, reduction="sum")
    config = {"lrs": lrs, "batch_sizes": batch_sizes, "optimizers": list(optimizers), "seed": seed}
    with Run(out_dir, classify.lab_identity("logreg", config, ds), mode=mode) as run:
        members, graphdef = [], None
        for optimizer in optimizers:
            for batch_size in batch_sizes:
                model = SoftmaxMLP(ds.n_features, [], ds.n_classes, init="normal", seed=seed)
                graphdef, trained = classify.train_members(
                    model,
                    optimizer,
                    lrs,
                    batch_size,
                    train,
                    val,
                    epochs=epochs,
                    task=task,
                    folder=run.path("sweeps", f"{optimizer}-batch{batch_size}"),
                    gradient=backprop,
                    strategy=strategy,
                    mode=mode,
                    progress=progress,
                    desc=f"{optimizer} batch {batch_size}",
                )
                members += trained
        best = classify.best_member(members)
        test = classify.test_metrics(graphdef, best, (ds.X_test, ds.y_test), task)
        classify.write_best(
            run, best, f"{best.optimizer}, lr {best.lr:g}, batch {best.batch_size}", "best configuration"
        )
        summary = {
            **classify.data_record(ds, train, val),
            "epochs": epochs,
            "seed": seed,
            "strategy": strategy,
            "loss": "NLL summed over the batch",
            "init": "N(0, 0.01^2)",
            "best": classify.member_record(best),
            "test": test,
            "members": [classify.member_record(m) for m in members],
            "seconds": time.perf_counter() - start,
        }
        classify.write_outputs(run, summary, _report(summary, lrs, batch_sizes, optimizers))
    return summary


def _report(summary: dict, lrs, batch_sizes, optimizers) -> list:
    cells = {(m["optimizer"], m["lr"], m["batch_size"]): m for m in summary["members"]}
    best, test = summary["best"], summary["test"]
    lines = [
        f"# Lab B: logistic regression by hand on {summary['dataset']}",
        "",
        f"{summary['n_train']} training / {summary['n_val']} validation examples (seeded "
        f"split), {summary['epochs']} epochs, θ ~ {summary['init']}, {summary['loss']}; "
        f"gradient, SGD and Adam written by hand. Wall time {summary['seconds']:.1f} s.",
        "",
    ]
    for optimizer in optimizers:
        lines += [f"## {optimizer}: validation accuracy (%) after the last epoch", ""]
        lines += [
            classify.accuracy_table(
                "lr \\ batch size",
                lrs,
                batch_sizes,
                lambda lr, bs: cells[(optimizer, float(lr), bs)]["logs"]["val_accuracy"][-1],
            ),
            "",
        ]
    lines += [
        "## Best configuration",
        "",
        f"{best['optimizer']}, lr {best['lr']:g}, batch size {best['batch_size']}: validation "
        f"accuracy {100 * best['logs']['val_accuracy'][best['best_epoch']]:.2f} % at epoch "
        f"{best['best_epoch']}; that model's **test accuracy {100 * test['accuracy']:.2f} %** "
        f"(mean NLL {test['loss']:.4f}), the test set's only use.",
        "",
        "![curves](best_curves.png)",
        "",
        "Its parameters: best_model.npz (theta0, theta1, ...: one (out, in + 1) matrix per layer).",
        "",
    ]
    return lines


def run_from_args(args, mode: str = "continue") -> dict:
    return run_logreg(
        args.dataset,
        args.out,
        data_dir=args.data_dir,
        epochs=args.epochs,
        lrs=args.lrs,
        batch_sizes=args.batch_sizes,
        optimizers=args.optimizers,
        seed=args.seed,
        strategy=args.strategy,
        progress=not args.no_progress,
        mode=mode,
    )
