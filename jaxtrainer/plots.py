"""Figures as PNG files, drawn on bare ``Figure`` objects: no pyplot, so no display is needed and
the user's matplotlib backend is left alone."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import files


def _printable(text: str) -> str:
    """A title matplotlib can draw: a file name's non-UTF-8 bytes (lone surrogates) shown as �."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _save(fig: Figure, path: str, title: str = "") -> Figure:
    """As PNG, atomically (an interrupted run never leaves half a figure), under `title` if any."""
    if title:
        fig.suptitle(_printable(title))
    fig.tight_layout()
    files.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), binary=True)
    return fig


def training_curves(logs: dict, path: str, title: str = "") -> Figure:
    """Train/test MAE and loss per epoch (epoch 0 = before training); NaN entries are not drawn."""
    losses = [v for k in ("train_loss", "test_loss") for v in logs.get(k, [])]
    log_loss = bool(losses) and all(v > 0 for v in losses if math.isfinite(v))
    fig = Figure(figsize=(10, 4))
    for ax, metric in zip(fig.subplots(1, 2), ("mae", "loss")):
        for split in ("train", "test"):
            values = logs.get(f"{split}_{metric}", [])
            ax.plot(range(len(values)), values, marker=".", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.upper())
        if metric == "loss" and log_loss:
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path, title)


def equivariance_figure(maps: dict, path: str) -> Figure:
    """The homework's 2x2 figure: the image, the model's output, and the shift and rotation error maps."""
    fig = Figure(figsize=(8, 8))
    panels = [
        ("image", "input image"),
        ("output", "model(x)"),
        ("shift_error_map", f"|shift(model(x)) - model(shift(x))|\nmean {maps['shift_error']:.4f}"),
        ("rotation_error_map", f"|rot90(model(x)) - model(rot90(x))|\nmean {maps['rotation_error']:.4f}"),
    ]
    for ax, (key, title) in zip(fig.subplots(2, 2).ravel(), panels):
        im = ax.imshow(maps[key], cmap="gray" if key in ("image", "output") else "magma")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def _draw_runs(ax, runs: dict, splits, metric: str) -> None:
    """`metric` per epoch, a colour per run ({label: logs}), train dashed, non-finite not drawn."""
    for i, (label, logs) in enumerate(runs.items()):
        for split in splits:
            values = [v if math.isfinite(v) else math.nan for v in logs.get(f"{split}_{metric}", [])]
            ax.plot(
                range(len(values)),
                values,
                color=f"C{i}",
                linestyle="--" if split == "train" else "-",
                marker="." if len(values) <= 20 else None,
                label=f"{label} ({split})" if len(splits) > 1 else label,
            )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def runs_figure(runs: dict, path: str, title: str = "", splits=("test",), metric: str = "mae") -> Figure:
    """One curve per run ({label: logs}) and per split in `splits` (train dashed, test solid) of
    `metric` ("mae" or "loss") per epoch, to the PNG `path`; non-finite entries are not drawn."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    _draw_runs(ax, runs, splits, metric)
    ax.set_ylabel(f"{' / '.join(splits)} {metric.upper()}")
    ax.legend(fontsize=9)
    if title:
        ax.set_title(_printable(title))
    return _save(fig, path)


def classification_curves(runs: dict, path: str, title: str = "", sets=("train", "val")) -> Figure:
    """Mean NLL and accuracy per epoch (epoch 0 = before training), one colour per run ({label: logs})."""
    fig = Figure(figsize=(11, 4.2))
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        _draw_runs(ax, runs, sets, metric)
        ax.set_ylabel("mean NLL" if metric == "loss" else "accuracy")
        ax.legend(fontsize=8)
    return _save(fig, path, title)


def confusion_figure(matrices: dict, class_names, path: str) -> Figure:
    """One panel per {label: counts} confusion matrix (rows true, columns predicted), each cell
    annotated with its count and coloured by its share of the true class."""
    fig = Figure(figsize=(5.5 * len(matrices), 5.2))
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (label, counts) in zip(axes, matrices.items()):
        shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i, j in zip(*np.nonzero(counts)):
            color = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(len(counts)), class_names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(counts)), class_names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        ax.set_title(f"{label}\ntest accuracy {100 * accuracy:.2f} %", fontsize=10)
    return _save(fig, path)
