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

import itertools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..config import check_batch_size, check_lr
from ..errors import InputError
from ..gradient import autodiff
from ..tables import markdown_table
from ..train import to_device
from . import classify, handopt
from .commands import MLP_BATCH_SIZE, MLP_DEPTHS, MLP_LRS, MLP_WIDTHS
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
    options: classify.Options,
    depths: Sequence[int] = MLP_DEPTHS,
    widths: Sequence[int] = MLP_WIDTHS,
    lrs: Mapping[str, Sequence[float]] = MLP_LRS,
    batch_size: int = MLP_BATCH_SIZE,
) -> dict:
    """Checks the hand-written gradient per depth, trains the grid, one sweep over its learning rates
    (`lrs`: optimizer name -> rates) per (depth, width, optimizer) in OUT/sweeps/, and keeps the best
    model; writes report.md, results.json, best_curves.png and best_model.npz; returns the summary."""
    batch_size = check_batch_size(batch_size)
    lrs = {name: [check_lr(lr) for lr in rates] for name, rates in lrs.items()}
    for name in lrs:
        handopt.by_name(name)
    bad = [d for d in depths if isinstance(d, bool) or not isinstance(d, int) or d < 0]
    if bad or not all(isinstance(w, int) and w >= 1 for w in widths):
        raise InputError(
            f"depths must be integers >= 0 and widths integers >= 1, got depths "
            f"{list(depths)}, widths {list(widths)}"
        )
    config = {"depths": depths, "widths": widths, "lrs": lrs, "batch_size": batch_size}
    gaps, grid = {}, []  # grid: (depth, width, graphdef, member) per member
    with classify.open_lab("mlp", options, config) as lab:
        train, ds = lab.train, lab.ds
        for depth, width in itertools.product(depths, widths):
            build = lambda: SoftmaxMLP(
                ds.n_features, [width] * depth, ds.n_classes, init="kaiming", seed=options.seed
            )
            if depth not in gaps:
                gaps[depth] = gradient_gap(build(), train[0][:CHECK_BATCH], train[1][:CHECK_BATCH], lab.task)
            for optimizer, rates in lrs.items():
                name = f"depth{depth}-width{width}-{optimizer}"
                graphdef, trained = lab.sweep(build(), optimizer, rates, batch_size, name)
                grid += [(depth, width, graphdef, m) for m in trained]
        best = classify.best_member([m for *_, m in grid])
        depth, width, graphdef, _ = next(entry for entry in grid if entry[3] is best)
        label = f"depth {depth}, width {width}, {best.optimizer} lr {best.lr:g}"
        classify.write_best(lab.run, best, label, "best model")
        summary = {
            "batch_size": batch_size,
            "gradient_check": {str(d): g for d, g in gaps.items()},
            "best": {"depth": depth, "width": width, **classify.member_record(best)},
            "test": lab.test(graphdef, best),
            "members": [{"depth": d, "width": w, **classify.member_record(m)} for d, w, _, m in grid],
        }
        return lab.finish(summary, lambda summary: _report(summary, depths, widths, lrs))


def _report(summary: dict, depths, widths, lrs) -> list:
    cells = {
        (m["depth"], m["width"], m["optimizer"], m["lr"]): m["logs"]["val_accuracy"][-1]
        for m in summary["members"]
    }
    best = summary["best"]
    setup = (
        f"{summary['epochs']} epochs, batch size {summary['batch_size']}, ReLU, Kaiming-uniform, "
        "cross-entropy (mean); backward pass and optimizers by hand"
    )
    lines = classify.report_head(
        f"Lab C: an MLP with backpropagation by hand on {summary['dataset']}", summary, setup
    )
    gaps = [(d, f"{g:.2e}") for d, g in summary["gradient_check"].items()]
    table = markdown_table(("depth", "max abs difference (float32, one batch)"), gaps)
    lines += ["## The hand-written gradient against jax.grad", "", table, ""]
    for optimizer, rates in lrs.items():
        for lr in rates:
            accuracy = lambda d, w: cells[(d, w, optimizer, float(lr))]
            heading = f"{optimizer}, lr {lr:g}"
            lines += classify.accuracy_section(heading, "depth \\ width", depths, widths, accuracy)
    label = f"depth {best['depth']}, width {best['width']}, {best['optimizer']} lr {best['lr']:g}"
    return lines + classify.best_section("Best model", label, best, summary["test"])


def run_from_args(args, mode: str = "continue") -> dict:
    """`jaxtrainer lab mlp`: --sgd-lr and --adam-lr, an empty one leaving its optimizer out."""
    lrs = {name: rates for name, rates in (("sgd", args.sgd_lrs), ("adam", args.adam_lrs)) if rates}
    return run_mlp(classify.Options.from_args(args, mode), args.depths, args.widths, lrs, args.batch_size)
