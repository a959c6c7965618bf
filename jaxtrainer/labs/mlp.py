"""Lab C: an MLP whose backward pass is written by hand, checked against `jax.grad`, on a grid of
depths and widths.

Input → `depth` ReLU layers of `width` → softmax, cross-entropy averaged over the batch, Kaiming-
uniform weights. Training uses the hand-written backward pass (`handgrad.backprop`) and the
hand-written optimizers; each (depth, width, optimizer) trains its learning rates as one sweep
(their shapes match). Before training, each depth's hand gradient is compared with `jax.grad`'s
on a batch of training examples. Which is faster, by hand or autodiff: `benchmarks/backprop_speed.py`.

    jaxtrainer lab mlp --dataset fashion_mnist --data-dir DIR --out runs/mlp
"""

from __future__ import annotations

import time
from typing import Dict, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..config import check_batch_size, check_lr, check_n_epochs
from ..data.classes import load_classes, split_train_val
from ..gradient import autodiff
from ..runs import Run
from ..settings import Settings
from ..tables import markdown_table
from ..tasks import Classification
from ..train import to_device
from . import classify, handopt
from .commands import LABS, MLP_BATCH_SIZE, MLP_DEPTHS, MLP_LRS, MLP_WIDTHS
from .handgrad import SoftmaxMLP, backprop

CHECK_BATCH = 100  # examples in the gradient check


def gradient_gap(model: SoftmaxMLP, X: np.ndarray, y: np.ndarray, task) -> float:
    """Largest |hand − jax.grad| over every parameter, for one batch."""
    graphdef, params = nnx.split(model, nnx.Param)
    x, labels = to_device(X, y, task)
    hand, _ = jax.jit(backprop, static_argnums=(0, 4))(graphdef, params, x, labels, task)
    auto, _ = jax.jit(autodiff, static_argnums=(0, 4))(graphdef, params, x, labels, task)
    return max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(hand), jax.tree.leaves(auto)))


def run_mlp(
    dataset=LABS["mlp"].dataset,
    out_dir: str = "runs/mlp",
    *,
    data_dir=None,
    epochs: int = LABS["mlp"].epochs,
    depths: Sequence[int] = MLP_DEPTHS,
    widths: Sequence[int] = MLP_WIDTHS,
    lrs: Dict[str, Sequence[float]] = MLP_LRS,
    batch_size: int = MLP_BATCH_SIZE,
    seed: int = 0,
    strategy: str = "auto",
    progress: bool = True,
    mode: str = "continue",
) -> dict:
    """The grid in the run folder `out_dir` (each (depth, width, optimizer) sweep in
    `out_dir/sweeps/`, opened with `mode`); writes report.md, results.json, best_curves.png and
    best_model.npz; returns the summary."""
    check_n_epochs(epochs)
    start = time.perf_counter()
    strategy = Settings(strategy=strategy).strategy
    check_batch_size(batch_size)
    lrs = {name: [check_lr(lr) for lr in rates] for name, rates in lrs.items()}
    for name in lrs:
        handopt.by_name(name)
    bad = [d for d in depths if isinstance(d, bool) or not isinstance(d, int) or d < 0]
    if bad or not all(isinstance(w, int) and w >= 1 for w in widths):
        raise ValueError(
            f"depths must be integers >= 0 and widths integers >= 1, got depths "
            f"{list(depths)}, widths {list(widths)}"
        )
    ds = load_classes(dataset, data_dir=data_dir)
    train, val = split_train_val(ds.X_train, ds.y_train, seed=seed)
    task = Classification(ds.n_classes)
    config = {"depths": depths, "widths": widths, "lrs": lrs, "batch_size": batch_size, "seed": seed}
    gaps, members, where = {}, [], {}
    with Run(out_dir, classify.lab_identity("mlp", config, ds), mode=mode) as run:
        for depth in depths:
            for width in widths:

                def build():
                    return SoftmaxMLP(ds.n_features, [width] * depth, ds.n_classes, init="kaiming", seed=seed)

                if depth not in gaps:
                    gaps[depth] = gradient_gap(build(), train[0][:CHECK_BATCH], train[1][:CHECK_BATCH], task)
                for optimizer, rates in lrs.items():
                    graphdef, trained = classify.train_members(
                        build(),
                        optimizer,
                        rates,
                        batch_size,
                        train,
                        val,
                        epochs=epochs,
                        task=task,
                        folder=run.path("sweeps", f"depth{depth}-width{width}-{optimizer}"),
                        gradient=backprop,
                        strategy=strategy,
                        mode=mode,
                        progress=progress,
                        desc=f"depth {depth} width {width} {optimizer}",
                    )
                    for m in trained:
                        where[id(m)] = (depth, width, graphdef)
                        members.append((depth, width, m))
        best = classify.best_member([m for _, _, m in members])
        depth, width, graphdef = where[id(best)]
        test = classify.test_metrics(graphdef, best, (ds.X_test, ds.y_test), task)
        classify.write_best(
            run, best, f"depth {depth}, width {width}, {best.optimizer} lr {best.lr:g}", "best model"
        )
        summary = {
            **classify.data_record(ds, train, val),
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "strategy": strategy,
            "gradient_check": {str(d): g for d, g in gaps.items()},
            "best": {"depth": depth, "width": width, **classify.member_record(best)},
            "test": test,
            "members": [{"depth": d, "width": w, **classify.member_record(m)} for d, w, m in members],
            "seconds": time.perf_counter() - start,
        }
        classify.write_outputs(run, summary, _report(summary, depths, widths, lrs))
    return summary


def _report(summary: dict, depths, widths, lrs) -> list:
    cells = {(m["depth"], m["width"], m["optimizer"], m["lr"]): m for m in summary["members"]}
    best, test = summary["best"], summary["test"]
    lines = [
        f"# Lab C: an MLP with backpropagation by hand on {summary['dataset']}",
        "",
        f"{summary['n_train']} training / {summary['n_val']} validation examples (seeded "
        f"split), {summary['epochs']} epochs, batch size {summary['batch_size']}, ReLU, "
        f"Kaiming-uniform, cross-entropy (mean); backward pass and optimizers by hand. Wall "
        f"time {summary['seconds']:.1f} s.",
        "",
        "## The hand-written gradient against jax.grad",
        "",
        markdown_table(
            ("depth", "max abs difference (float32, one batch)"),
            ((d, f"{g:.2e}") for d, g in summary["gradient_check"].items()),
        ),
    ]
    for optimizer, rates in lrs.items():
        for lr in rates:
            lines += ["", f"## {optimizer}, lr {lr:g}: validation accuracy (%) after the last epoch", ""]
            lines.append(
                classify.accuracy_table(
                    "depth \\ width",
                    depths,
                    widths,
                    lambda d, w: cells[(d, w, optimizer, float(lr))]["logs"]["val_accuracy"][-1],
                )
            )
    lines += [
        "",
        "## Best model",
        "",
        f"depth {best['depth']}, width {best['width']}, {best['optimizer']} lr {best['lr']:g}: "
        f"validation accuracy {100 * best['logs']['val_accuracy'][best['best_epoch']]:.2f} % "
        f"at epoch {best['best_epoch']}; **test accuracy {100 * test['accuracy']:.2f} %**.",
        "",
        "![curves](best_curves.png)",
        "",
        "Its parameters: best_model.npz (theta0, theta1, ...: one (out, in + 1) matrix per layer).",
        "",
    ]
    return lines


def run_from_args(args, mode: str = "continue") -> dict:
    lrs = {name: rates for name, rates in (("sgd", args.sgd_lrs), ("adam", args.adam_lrs)) if rates}
    return run_mlp(
        args.dataset,
        args.out,
        data_dir=args.data_dir,
        epochs=args.epochs,
        depths=args.depths,
        widths=args.widths,
        lrs=lrs,
        batch_size=args.batch_size,
        seed=args.seed,
        strategy=args.strategy,
        progress=not args.no_progress,
        mode=mode,
    )
