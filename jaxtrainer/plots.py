"""Figures as PNG files, drawn on bare ``Figure`` objects: no pyplot, so no display is needed and
the user's matplotlib backend is left alone."""

from __future__ import annotations

import math

from matplotlib.figure import Figure


def training_curves(logs: dict, path: str, title: str = "") -> Figure:
    """Train/test MAE and loss per epoch (epoch 0 = before training). NaN entries (a diverged run)
    are simply not drawn."""
    fig = Figure(figsize=(10, 4))
    for ax, metric in zip(fig.subplots(1, 2), ("mae", "loss")):
        for split in ("train", "test"):
            values = logs.get(f"{split}_{metric}", [])
            ax.plot(range(len(values)), values, marker=".", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.upper())
        if metric == "loss" and _positive(logs):
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def _positive(logs) -> bool:
    values = [v for k in ("train_loss", "test_loss") for v in logs.get(k, [])]
    return bool(values) and all(v > 0 for v in values if math.isfinite(v))


def equivariance_figure(maps: dict, path: str) -> Figure:
    """SPEC's 2x2 figure: the image, the model's output, and the shift and rotation error maps."""
    fig = Figure(figsize=(8, 8))
    panels = [("image", "input image"), ("output", "model(x)"),
              ("shift_error_map", f"|shift(model(x)) - model(shift(x))|\nmean {maps['shift_error']:.4f}"),
              ("rotation_error_map",
               f"|rot90(model(x)) - model(rot90(x))|\nmean {maps['rotation_error']:.4f}")]
    for ax, (key, title) in zip(fig.subplots(2, 2).ravel(), panels):
        im = ax.imshow(maps[key], cmap="gray" if key in ("image", "output") else "magma")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig
