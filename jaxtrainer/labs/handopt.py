"""SGD and Adam written out by hand (the labs ask for updates without a library): no optax
transformation is called; each is an optax `GradientTransformation` (a pair of functions) only to
plug into the engine's optimizer slot. Tests compare both with `optax.sgd` / `optax.adam`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ..errors import InputError


def sgd(learning_rate) -> optax.GradientTransformation:
    """θ ← θ − lr·g."""

    def init(params):
        return ()

    def update(updates, state, params=None):
        return jax.tree.map(lambda g: -learning_rate * g, updates), state

    return optax.GradientTransformation(init, update)


def adam(
    learning_rate, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    """Kingma & Ba (2015), Algorithm 1: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
    θ ← θ − lr·m̂ / (√v̂ + ε) with the bias-corrected m̂ = m / (1−β1ᵗ), v̂ = v / (1−β2ᵗ)."""

    def init(params):  # optax's container for the step count t and the moments m, v
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(jnp.zeros((), jnp.int32), zeros, zeros)

    def update(updates, state, params=None):
        t = state.count + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
        c1 = 1 - b1**t  # a weakly typed float: float32, or float64 under jax_enable_x64
        c2 = 1 - b2**t
        steps = jax.tree.map(lambda m, v: -learning_rate * (m / c1) / (jnp.sqrt(v / c2) + eps), mu, nu)
        return steps, optax.ScaleByAdamState(t, mu, nu)

    return optax.GradientTransformation(init, update)


OPTIMIZERS = {"sgd": sgd, "adam": adam}


def by_name(name: str):
    """The hand-written optimizer `name` ("sgd", "adam"), refused by name otherwise."""
    if name not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name]
