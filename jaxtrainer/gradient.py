"""How a batch's gradient is computed: `autodiff` by default, or a backward pass written by hand with
the same signature (the labs' `labs.handgrad.backprop`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def apply(graphdef: nnx.GraphDef, params: nnx.State, x):
    """The network's output on `x` from its split form (the pure function jax.grad and vmap take)."""
    return nnx.merge(graphdef, params)(x)


def batch_metrics(graphdef, params, x, y, task):
    """The task's scalar batch loss (what the gradient is taken of) and the batch's mean metrics."""
    per_example = task.per_example(apply(graphdef, params, x), y)
    return task.batch_loss(per_example["loss"]), {k: jnp.mean(v) for k, v in per_example.items()}


def autodiff(graphdef, params, x, y, task):
    """(gradient of the task's batch loss, the batch's mean metrics) by `jax.grad`."""
    return jax.grad(batch_metrics, argnums=1, has_aux=True)(graphdef, params, x, y, task)
