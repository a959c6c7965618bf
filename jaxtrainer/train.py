"""Training as pure compiled functions of (parameters, optimizer state, data).

Everything jitted takes the data as arguments: a closed-over array would be compiled in as a constant
(5-6 s and 1.2 GB for the first MLP epoch instead of 0.4 s, docs/performance.md). The network's
structure (an NNX graphdef) and the `Settings` (batch size, task, optimizer, gradient...) are static,
so two runs of the same architecture share one compiled program whatever their learning rate.
Task (regression, classification), optimizer (optax's or one written by hand) and gradient
(`autodiff`, or a model's hand-written backward pass) are plugged in through the settings.

One member's epoch is `member_epoch`; `sweep.py` runs it for K stacked members (one run is K = 1).
"""

from __future__ import annotations

import functools
from typing import Any, Dict, NamedTuple, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

from .gradient import apply
from .settings import Settings
from .tasks import REGRESSION

DEFAULT = Settings(strategy="map")


class TrainState(NamedTuple):
    """One member's state; its learning rate is a hyper-parameter in `opt_state`: data, not compiled in."""

    params: nnx.State
    opt_state: optax.OptState


@functools.cache
def _hyperparam_optimizer(factory) -> optax.GradientTransformation:
    """`factory` with its numeric hyper-parameters read from the optimizer state, so the learning
    rate is data (a new value neither recompiles nor needs a new program)."""
    return optax.inject_hyperparams(factory)(learning_rate=0.0)


def init_state(model: nnx.Module, lr: float, settings: Settings = DEFAULT) -> Tuple[nnx.GraphDef, TrainState]:
    """The model's parameters and the state of `settings.optimizer` at `lr`: the optimizer that
    will step them (given once, here and to the step, through the settings)."""
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = optax.inject_hyperparams(settings.optimizer)(learning_rate=lr).init(params)
    return graphdef, TrainState(params, opt_state)


def _step(graphdef, state: TrainState, x, y, settings: Settings):
    grads, metrics = settings.gradient(graphdef, state.params, x, y, settings.task)
    tx = _hyperparam_optimizer(settings.optimizer)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    # apply_updates keeps the State
    return TrainState(optax.apply_updates(state.params, updates), opt_state), metrics  # pyright: ignore[reportArgumentType]


@functools.partial(jax.jit, static_argnames=("graphdef", "settings"))
def train_step(graphdef, state: TrainState, x, y, settings: Settings = DEFAULT):
    """One update; the metrics are those of the batch before the update (as PyTorch's loop reports)."""
    return _step(graphdef, state, x, y, settings)


def _scan_batches(carry, n: int, size: int, body):
    """`body(carry, start, length)` over consecutive batches of `size`: the full ones in one
    `lax.scan`, then the short last one as its own smaller call (as a PyTorch loop over slices
    does: not dropped, not padded). Returns the carry and the per-batch outputs stacked."""
    n_full, parts = n // size, []
    if n_full:
        carry, out = lax.scan(lambda c, i: body(c, i * size, size), carry, jnp.arange(n_full))
        parts.append(out)
    if n % size:
        carry, last = body(carry, n_full * size, n % size)
        parts.append(jax.tree.map(lambda v: v[None], last))
    return carry, jax.tree.map(lambda *v: jnp.concatenate(v), *parts)


def _epoch(graphdef, state, X, y, settings: Settings, order=None):
    """One pass of training steps over X in order, or in `order` (a shuffled epoch: each batch is
    gathered inside the loop, so the permuted set is never copied whole). Returns the per-step
    metrics."""

    def step(state, start, length):
        if order is None:
            xb = lax.dynamic_slice_in_dim(X, start, length)
            yb = lax.dynamic_slice_in_dim(y, start, length)
        else:
            idx = lax.dynamic_slice_in_dim(order, start, length)
            xb, yb = X[idx], y[idx]
        return _step(graphdef, state, xb, yb, settings)

    return _scan_batches(state, X.shape[0], settings.batch_size, step)


def _chunk_sums(graphdef, params, X, y, task, chunk):
    """Per-chunk sums of the per-example metrics and the chunk sizes, chunk by chunk so that a large
    set never holds all its activations at once."""

    def sums(_, start, length):
        x, yy = (lax.dynamic_slice_in_dim(a, start, length) for a in (X, y))
        metrics = task.per_example(apply(graphdef, params, x), yy)
        return None, ({k: jnp.sum(v) for k, v in metrics.items()}, jnp.float32(length))

    return _scan_batches(None, X.shape[0], chunk, sums)[1]


def _evaluate(graphdef, params, X, y, task, chunk):
    """Means over examples: sums of per-example values give the same mean as one big batch."""
    sums, _ = _chunk_sums(graphdef, params, X, y, task, chunk)
    return {k: jnp.sum(v) / X.shape[0] for k, v in sums.items()}


def _batch_means(graphdef, params, X, y, batch_size, task):
    """The mean over consecutive batches of each batch's mean, as a loop over a DataLoader averages:
    not the mean over examples when the last batch is shorter (it weighs as much as a full one)."""
    sums, sizes = _chunk_sums(graphdef, params, X, y, task, batch_size)
    return {k: jnp.mean(v / sizes) for k, v in sums.items()}


@functools.partial(jax.jit, static_argnames=("graphdef", "settings"))
def evaluate(graphdef, params, X, y, settings: Settings = DEFAULT) -> Dict[str, jax.Array]:
    """Mean metrics over the whole set, evaluated in chunks of `settings.eval_chunk`."""
    return _evaluate(graphdef, params, X, y, settings.task, settings.eval_chunk)


def all_finite(tree) -> jax.Array:
    """A boolean array: no leaf of `tree` holds NaN or Inf (traceable: `member_epoch`'s `lax.cond` test)."""
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree)]))


def member_epoch(graphdef, state: TrainState, data, settings: Settings):
    """One member's epoch and the metrics that log it: `data` is (X, y, order, eval_sets).

    Returns the new state, the per-step metrics and one metrics dict per logged set
    (`settings.names`): for the tensor variant the evaluations of `eval_sets` (the first training
    examples and the test set) with the updated parameters; for the loader variant, the steps'
    metrics are the first (their mean is taken on the host, in float64, as a Python loop sums
    them) and the test set's batch means the second. A member whose parameters are not all
    finite is left as it is and logs NaN (what the reference would log, without computing it).
    """
    X, y, order, eval_sets = data

    def run(state):
        state, steps = _epoch(graphdef, state, X, y, settings, order)
        if settings.variant == "loader":
            test = _batch_means(
                graphdef,
                state.params,
                # pyright cannot count what *eval_sets[0] unpacks: (X, y)
                *eval_sets[0],
                settings.test_batch_size or settings.batch_size,  # pyright: ignore[reportCallIssue]
                settings.task,  # pyright: ignore[reportCallIssue]
            )
            return state, steps, [{}, test]
        evals = [
            _evaluate(graphdef, state.params, ex, ey, settings.task, settings.eval_chunk)
            for ex, ey in eval_sets
        ]
        return state, steps, evals

    def skip(state):
        shapes = jax.eval_shape(run, state)
        return state, *jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes[1:])

    return lax.cond(all_finite(state.params), run, skip, state)


def to_device(X, y, task: Any = REGRESSION):
    """JAX arrays for training: images as float32, targets in the task's label dtype (int32 for classes)."""
    return jnp.asarray(X, jnp.float32), jnp.asarray(y, task.label_dtype)


def divergence_epoch(logs: dict) -> int | None:
    """The first epoch whose logged losses (every `*_loss` list) hold NaN or Inf (the first entry
    is epoch 0, before training, in the tensor variant), or None."""
    losses = [values for key, values in logs.items() if key.endswith("_loss")]
    for epoch, values in enumerate(zip(*losses)):
        if not all(np.isfinite(values)):
            return epoch
    return None
