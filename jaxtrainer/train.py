"""Training as pure compiled functions of (parameters, optimizer state, data): the data is an argument,
never a compiled-in constant (docs/performance.md); the graphdef and `Settings` are static, so runs
of one architecture share a program whatever their learning rate. `sweeps` runs `member_epoch` for
K stacked members."""

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
    """`factory` reading its learning rate from the optimizer state: data, not recompiled."""
    return optax.inject_hyperparams(factory)(learning_rate=0.0)


def init_state(model: nnx.Module, lr: float, settings: Settings = DEFAULT) -> Tuple[nnx.GraphDef, TrainState]:
    """The model's parameters and the state of `settings.optimizer` at `lr`."""
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = optax.inject_hyperparams(settings.optimizer)(learning_rate=lr).init(params)
    return graphdef, TrainState(params, opt_state)


def _step(graphdef, state: TrainState, x, y, settings: Settings):
    grads, metrics = settings.gradient(graphdef, state.params, x, y, settings.task)
    tx = _hyperparam_optimizer(settings.optimizer)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state), metrics  # pyright: ignore[reportArgumentType]


@functools.partial(jax.jit, static_argnames=("graphdef", "settings"))
def train_step(graphdef, state: TrainState, x, y, settings: Settings = DEFAULT):
    """One update; the metrics are those of the batch before the update (as PyTorch's loop reports)."""
    return _step(graphdef, state, x, y, settings)


def _scan_batches(carry, n: int, size: int, body):
    """`body(carry, start, length)` over batches of `size`: the full ones in one `lax.scan`, then the
    short last one as its own call (as a PyTorch loop over slices: not dropped, not padded)."""
    n_full, parts = n // size, []
    if n_full:
        carry, out = lax.scan(lambda c, i: body(c, i * size, size), carry, jnp.arange(n_full))
        parts.append(out)
    if n % size:
        carry, last = body(carry, n_full * size, n % size)
        parts.append(jax.tree.map(lambda v: v[None], last))
    return carry, jax.tree.map(lambda *v: jnp.concatenate(v), *parts)


def _epoch(graphdef, state, X, y, settings: Settings, order=None):
    """Training steps over X in order, or in `order` (each batch gathered inside the loop, so a
    shuffled set is never copied whole). Returns the state and the per-step metrics."""

    def step(state, start, length):
        if order is None:
            xb = lax.dynamic_slice_in_dim(X, start, length)
            yb = lax.dynamic_slice_in_dim(y, start, length)
        else:
            idx = lax.dynamic_slice_in_dim(order, start, length)
            xb, yb = X[idx], y[idx]
        return _step(graphdef, state, xb, yb, settings)

    return _scan_batches(state, X.shape[0], settings.batch_size, step)


def _evaluate(graphdef, params, X, y, task, chunk, batch_means: bool = False):
    """Means over examples, from per-chunk sums (a large set never holds all its activations); with
    `batch_means`, the mean of each chunk's mean, as a loop over a DataLoader averages them."""

    def sums(_, start, length):
        x, yy = (lax.dynamic_slice_in_dim(a, start, length) for a in (X, y))
        metrics = task.per_example(apply(graphdef, params, x), yy)
        return None, ({k: jnp.sum(v) for k, v in metrics.items()}, jnp.float32(length))

    sums, sizes = _scan_batches(None, X.shape[0], chunk, sums)[1]
    if batch_means:
        return {k: jnp.mean(v / sizes) for k, v in sums.items()}
    return {k: jnp.sum(v) / X.shape[0] for k, v in sums.items()}


@functools.partial(jax.jit, static_argnames=("graphdef", "settings"))
def evaluate(graphdef, params, X, y, settings: Settings = DEFAULT) -> Dict[str, jax.Array]:
    """Mean metrics over the whole set, evaluated in chunks of `settings.eval_chunk`."""
    return _evaluate(graphdef, params, X, y, settings.task, settings.eval_chunk)


def all_finite(tree) -> jax.Array:
    """A traceable boolean: no leaf of `tree` holds NaN or Inf."""
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree)]))


def member_epoch(graphdef, state: TrainState, data, settings: Settings):
    """One member's epoch on `data` = (X, y, order, eval_sets): the new state, the step metrics and
    a metrics dict per logged set (tensor variant: `eval_sets` evaluated; loader: {} (the steps'
    mean, taken on the host) and the test set's batch means). Non-finite parameters: left, NaN logged."""
    X, y, order, eval_sets = data

    def run(state):
        state, steps = _epoch(graphdef, state, X, y, settings, order)
        if settings.variant == "loader":
            (tx, ty), size = eval_sets[0], settings.test_batch_size or settings.batch_size
            return state, steps, [{}, _evaluate(graphdef, state.params, tx, ty, settings.task, size, True)]
        task, chunk = settings.task, settings.eval_chunk
        return state, steps, [_evaluate(graphdef, state.params, ex, ey, task, chunk) for ex, ey in eval_sets]

    def skip(state):
        shapes = jax.eval_shape(run, state)
        return state, *jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes[1:])

    return lax.cond(all_finite(state.params), run, skip, state)


def to_device(X, y, task: Any = REGRESSION):
    """Images as float32, targets in the task's label dtype (int32 for classes)."""
    return jnp.asarray(X, jnp.float32), jnp.asarray(y, task.label_dtype)


def divergence_epoch(logs: dict) -> int | None:
    """The first epoch whose `*_loss` lists hold NaN or Inf (in the tensor variant 0 is before training)."""
    losses = zip(*(values for key, values in logs.items() if key.endswith("_loss")))
    return next((epoch for epoch, values in enumerate(losses) if not all(np.isfinite(values))), None)
