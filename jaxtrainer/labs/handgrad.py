"""Softmax classifiers whose gradients are written by hand, no `jax.grad` on that path: the labs'
linear model and MLP. A layer θ (out, in + 1) computes θ x̃, x̃ = [x, 1]. `backprop`, the engine's
gradient plug, is the backward pass for B examples, p̂ = softmax(z_L), Y the one-hot labels:
δ_L = (p̂ − Y)·c (c: 1 summed, 1/B mean), ∂θ_l = δ_lᵀ x̃_{l-1}, δ_{l-1} = (δ_l θ_l)[:, :-1] ⊙ f′(z_{l-1}).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from ..errors import InputError
from ..tasks import Classification, one_hot, softmax

INITS = ("normal", "glorot", "kaiming")
ACTIVATIONS = {
    "relu": (jax.nn.relu, lambda z, h: (z > 0).astype(z.dtype)),
    "tanh": (jnp.tanh, lambda z, h: 1 - h * h),
}


def init_theta(key, n_in: int, n_out: int, init: str, dtype=jnp.float32) -> jax.Array:
    """θ (n_out, n_in + 1): "normal" N(0, 0.01²) everywhere (lab B); "glorot" U(±√(6/(in+out)))
    and "kaiming" U(±√(6/in)) weights (labs C, D) with a zero bias column."""
    if init == "normal":
        return 0.01 * jax.random.normal(key, (n_out, n_in + 1), dtype)
    limit = math.sqrt(6 / (n_in + n_out)) if init == "glorot" else math.sqrt(6 / n_in)
    weights = jax.random.uniform(key, (n_out, n_in), dtype, -limit, limit)
    return jnp.concatenate([weights, jnp.zeros((n_out, 1), dtype)], axis=1)


def with_bias(h):
    """x̃ = [x, 1] per row."""
    return jnp.concatenate([h, jnp.ones((h.shape[0], 1), h.dtype)], axis=1)


class SoftmaxMLP(nnx.Module):
    """Flattened input (`n_in` per example) → `hidden` layers of `activation` (`ACTIVATIONS`) →
    logits over `n_classes`, weights drawn by `init` (`INITS`); no hidden layer is multinomial
    logistic regression."""

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_classes: int,
        *,
        activation: str = "relu",
        init: str = "glorot",
        seed: int = 0,
        dtype=jnp.float32,
    ):
        if activation not in ACTIVATIONS:
            raise InputError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise InputError(f"init must be one of {INITS}, got {init!r}")
        sizes = [n_in, *hidden, n_classes]
        bad = [s for s in sizes if isinstance(s, bool) or not isinstance(s, int) or s < 1]
        if bad:
            raise InputError(f"layer sizes must be positive integers, got {sizes}")
        keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
        self.activation = activation
        self.thetas = nnx.List(
            [nnx.Param(init_theta(k, a, b, init, dtype)) for k, a, b in zip(keys, sizes, sizes[1:])]
        )

    def _forward(self, x):
        """Every layer's input x̃ (with its 1), pre-activation z and output h; the logits last."""
        f, _ = ACTIVATIONS[self.activation]
        h = x.reshape(x.shape[0], -1)
        inputs, zs, hs = [], [], []
        for i, theta in enumerate(self.thetas):
            inputs.append(with_bias(h))
            z = inputs[-1] @ theta[...].T
            h = z if i == len(self.thetas) - 1 else f(z)
            zs.append(z)
            hs.append(h)
        return inputs, zs, hs

    def __call__(self, x):
        return self._forward(x)[2][-1]

    def backward(self, x, y, task: Classification):
        """(∂L/∂θ per layer, batch mean metrics), L the task's batch loss, by the formulas above."""
        _, f_prime = ACTIVATIONS[self.activation]
        inputs, zs, hs = self._forward(x)
        logits = hs[-1]
        scale = 1.0 if task.reduction == "sum" else 1.0 / logits.shape[0]
        delta = (softmax(logits) - one_hot(y, task.n_classes, logits.dtype)) * scale
        grads = []
        for layer in reversed(range(len(self.thetas))):
            grads.append(delta.T @ inputs[layer])
            if layer:
                # δ θ_l, then the bias column dropped: slicing θ_l first would copy it every step
                delta = (delta @ self.thetas[layer][...])[:, :-1] * f_prime(zs[layer - 1], hs[layer - 1])
        metrics = {k: jnp.mean(v) for k, v in task.per_example(logits, y).items()}
        return grads[::-1], metrics


def backprop(graphdef, params, x, y, task):
    """The engine's gradient plug for a `SoftmaxMLP`: `gradient.autodiff`'s signature and results,
    the gradient from `SoftmaxMLP.backward`."""
    if not isinstance(task, Classification):
        raise InputError(
            f"backprop by hand is written for softmax cross-entropy (a Classification "
            f"task), got {type(task).__name__}"
        )
    grads, metrics = nnx.merge(graphdef, params).backward(x, y, task)
    # the parameters are exactly the θ's, flattened in layer order: the gradients take their places
    return jax.tree.unflatten(jax.tree.structure(params), grads), metrics
