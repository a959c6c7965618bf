"""What is being learned, so one training loop serves every task: the per-example values logged
(`metric_names`, loss first), the labels' device dtype, and `batch_loss`, the scalar the gradient is
taken of (the homework's MSELoss averages; the labs' negative log-likelihood sums)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp

from .errors import InputError
from .registry import choose

REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class Regression:
    """The homework's task: MSE loss, MAE metric, on (B, 1) predictions and targets of that very shape
    (torch's MSELoss would silently broadcast a (B,) target into a (B, B) error matrix)."""

    metric_names = ("loss", "mae")
    label_dtype = jnp.float32

    def per_example(self, pred, y) -> Dict[str, jnp.ndarray]:
        """Squared and absolute error per example (averaged over a row of several outputs)."""
        if pred.shape != y.shape:
            raise InputError(
                f"targets must have the predictions' shape {tuple(pred.shape)} "
                f"(one (N, 1) target per image), got {tuple(y.shape)}"
            )
        err = (pred - y).reshape(pred.shape[0], -1)
        return {"loss": jnp.mean(err * err, axis=1), "mae": jnp.mean(jnp.abs(err), axis=1)}

    def batch_loss(self, per_example_loss):
        """The mean, as MSELoss's default reduction."""
        return jnp.mean(per_example_loss)


REGRESSION = Regression()


def log_softmax(logits, axis: int = -1):
    """log p̂ with the maximum subtracted first, so huge logits give finite values."""
    return jax.nn.log_softmax(logits, axis)


def softmax(logits, axis: int = -1):
    """Probabilities through `log_softmax`, so huge logits stay finite."""
    return jnp.exp(log_softmax(logits, axis))


def one_hot(labels, n_classes: int, dtype=jnp.float32):
    """(..., n_classes) indicators of integer `labels`; a label outside [0, n_classes) gives all zeros."""
    return jax.nn.one_hot(labels, n_classes, dtype=dtype)


@dataclass(frozen=True)
class Classification:
    """Softmax cross-entropy and accuracy on (B, K) logits and (B,) labels in [0, K); `reduction`
    combines a batch for the gradient: "mean" (CrossEntropyLoss) or "sum" (the labs'); logged: the mean."""

    n_classes: int
    reduction: str = "mean"
    metric_names = ("loss", "accuracy")
    label_dtype = jnp.int32

    def __post_init__(self):
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise InputError(f"n_classes must be an integer >= 2, got {self.n_classes!r}")
        choose("reduction", self.reduction, REDUCTIONS)

    def per_example(self, logits, y) -> Dict[str, jnp.ndarray]:
        """Negative log-likelihood and 0/1 accuracy per example."""
        if logits.ndim != 2 or logits.shape[1] != self.n_classes:
            raise InputError(
                f"a {self.n_classes}-class task needs (B, {self.n_classes}) logits, got {tuple(logits.shape)}"
            )
        if y.shape != logits.shape[:1]:
            raise InputError(
                f"labels must be one class index per example, shape "
                f"({logits.shape[0]},), got {tuple(y.shape)}"
            )
        logp = log_softmax(logits)
        nll = -jnp.sum(logp * one_hot(y, self.n_classes, logp.dtype), axis=1)
        return {"loss": nll, "accuracy": (jnp.argmax(logits, axis=1) == y).astype(logits.dtype)}

    def batch_loss(self, per_example_loss):
        """The sum or the mean, by `reduction`."""
        return jnp.sum(per_example_loss) if self.reduction == "sum" else jnp.mean(per_example_loss)


def log_keys(task=REGRESSION, sets: Sequence[str] = ("train", "test")) -> Tuple[str, ...]:
    """The logged lists, loss first: train_loss, test_loss, train_mae, test_mae for the homework."""
    return tuple(f"{s}_{m}" for m in task.metric_names for s in sets)
