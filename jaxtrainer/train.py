"""Training as pure compiled functions of (parameters, optimizer state, data).

Everything jitted takes the data as arguments: a closed-over array would be compiled in as a constant
(5-6 s and 1.2 GB for the first MLP epoch instead of 0.4 s, shared/NOTES_PERFORMANCE.md). The network's
structure (an NNX graphdef), the task, the optimizer factory and the batch size are static, so two
runs of the same architecture share one compiled program whatever their learning rate.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

from .tasks import REGRESSION

EVAL_CHUNK = 1000


class TrainState(NamedTuple):
    params: nnx.State
    opt_state: optax.OptState


@functools.cache
def _hyperparam_optimizer(factory: Callable) -> optax.GradientTransformation:
    """`factory` with its numeric hyper-parameters read from the optimizer state, so the learning
    rate is data (a new value neither recompiles nor needs a new program)."""
    return optax.inject_hyperparams(factory)(learning_rate=0.0)


def init_state(model: nnx.Module, lr: float, optimizer: Callable = optax.adam
               ) -> Tuple[nnx.GraphDef, TrainState]:
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = optax.inject_hyperparams(optimizer)(learning_rate=lr).init(params)
    return graphdef, TrainState(params, opt_state)


def apply(graphdef: nnx.GraphDef, params: nnx.State, x):
    return nnx.merge(graphdef, params)(x)


def _batch_metrics(graphdef, params, x, y, task):
    per_example = task.per_example(apply(graphdef, params, x), y)
    means = {k: jnp.mean(v) for k, v in per_example.items()}
    return means["loss"], means


def _step(graphdef, state: TrainState, x, y, task, optimizer):
    grads, metrics = jax.grad(_batch_metrics, argnums=1, has_aux=True)(
        graphdef, state.params, x, y, task)
    tx = _hyperparam_optimizer(optimizer)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state), metrics


@functools.partial(jax.jit, static_argnames=("graphdef", "task", "optimizer"))
def train_step(graphdef, state: TrainState, x, y, task=REGRESSION, optimizer=optax.adam):
    """One update; the metrics are those of the batch before the update (as PyTorch's loop reports)."""
    return _step(graphdef, state, x, y, task, optimizer)


def _epoch(graphdef, state, X, y, batch_size, task, optimizer):
    """Consecutive unshuffled batches; the last short batch is its own smaller step, as a PyTorch
    loop over slices does (not dropped, not padded). Returns the per-step metrics."""
    n = X.shape[0]
    n_full = n // batch_size

    def body(state, i):
        xb = lax.dynamic_slice_in_dim(X, i * batch_size, batch_size)
        yb = lax.dynamic_slice_in_dim(y, i * batch_size, batch_size)
        return _step(graphdef, state, xb, yb, task, optimizer)

    parts = []
    if n_full:
        state, metrics = lax.scan(body, state, jnp.arange(n_full))
        parts.append(metrics)
    if n % batch_size:
        state, last = _step(graphdef, state, X[n_full * batch_size:], y[n_full * batch_size:],
                            task, optimizer)
        parts.append(jax.tree.map(lambda v: v[None], last))
    return state, jax.tree.map(lambda *v: jnp.concatenate(v), *parts)


def _evaluate(graphdef, params, X, y, task, chunk):
    """Means over the whole set, computed chunk by chunk so that a large test set never holds all
    its activations at once; sums of per-example values give the same mean as one big batch."""
    n = X.shape[0]
    n_full = n // chunk

    def sums(x, yy):
        return {k: jnp.sum(v) for k, v in task.per_example(apply(graphdef, params, x), yy).items()}

    def body(total, i):
        part = sums(lax.dynamic_slice_in_dim(X, i * chunk, chunk),
                    lax.dynamic_slice_in_dim(y, i * chunk, chunk))
        return jax.tree.map(jnp.add, total, part), None

    total = {k: jnp.zeros((), jnp.float32) for k in task.metric_names}
    if n_full:
        total, _ = lax.scan(body, total, jnp.arange(n_full))
    if n % chunk:
        total = jax.tree.map(jnp.add, total, sums(X[n_full * chunk:], y[n_full * chunk:]))
    return {k: v / n for k, v in total.items()}


@functools.partial(jax.jit, static_argnames=("graphdef", "task", "chunk"))
def evaluate(graphdef, params, X, y, task=REGRESSION, chunk=EVAL_CHUNK) -> Dict[str, jax.Array]:
    return _evaluate(graphdef, params, X, y, task, chunk)


@functools.partial(jax.jit, static_argnames=("graphdef", "batch_size", "task", "optimizer", "chunk"))
def train_epoch(graphdef, state: TrainState, X, y, eval_sets: Sequence = (), *, batch_size: int,
                task=REGRESSION, optimizer=optax.adam, chunk=EVAL_CHUNK):
    """One epoch and the evaluations that log it, as a single compiled program.

    Returns the new state, the per-step metrics, and the metrics of each `(X, y)` in `eval_sets`
    measured with the updated parameters.
    """
    state, step_metrics = _epoch(graphdef, state, X, y, batch_size, task, optimizer)
    evals = [_evaluate(graphdef, state.params, ex, ey, task, chunk) for ex, ey in eval_sets]
    return state, step_metrics, evals


def to_device(X, y):
    return jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)


LOG_KEYS = ("train_loss", "test_loss", "train_mae", "test_mae")


def divergence_epoch(logs: dict) -> Optional[int]:
    """The first epoch whose logged loss is NaN or Inf (0 = before training), or None."""
    for epoch, values in enumerate(zip(logs["train_loss"], logs["test_loss"])):
        if not all(np.isfinite(values)):
            return epoch
    return None


def _finite(params) -> bool:
    return all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(params))


def fit(graphdef, state: TrainState, train: Tuple, test: Tuple, n_epochs: int, *, batch_size: int,
        task=REGRESSION, optimizer=optax.adam, train_eval_size: int = 2000,
        progress: bool = True, on_epoch: Optional[Callable] = None, logs: Optional[dict] = None):
    """The homework's tensor-variant loop: log on the first `train_eval_size` training examples and
    the test set before training and after each epoch (n_epochs + 1 entries per list).

    `logs` are those of epochs already run (a resumed run): training continues after them.
    `on_epoch(epoch, state, logs)` runs after each epoch's logs are appended (checkpoints hook here).
    Once the parameters hold NaN or Inf they stay so: the remaining epochs are logged as NaN, as
    the reference would log them, without computing them. Returns (state, logs).
    """
    from tqdm.auto import tqdm

    X, y = to_device(*train)
    test = to_device(*test)
    train_subset = (X[:train_eval_size], y[:train_eval_size])

    def log(evals):
        for prefix, metrics in zip(("train", "test"), evals):
            for name, value in metrics.items():
                logs[f"{prefix}_{name}"].append(float(value))

    if logs is None:
        logs = {k: [] for k in LOG_KEYS}
        log([evaluate(graphdef, state.params, *s, task=task) for s in (train_subset, test)])
    done = len(logs["train_loss"]) - 1
    bar = tqdm(range(done + 1, n_epochs + 1), desc="epochs", unit="epoch", disable=not progress,
               dynamic_ncols=True, initial=done, total=n_epochs)
    for epoch in bar:
        if _finite(state.params):
            state, _, evals = train_epoch(graphdef, state, X, y, (train_subset, test),
                                          batch_size=batch_size, task=task, optimizer=optimizer)
            log(evals)
        else:
            for values in logs.values():
                values.append(float("nan"))
        if divergence_epoch(logs) == epoch:
            bar.write(f"diverged: the loss is not finite after epoch {epoch} "
                      f"(lr {float(state.opt_state.hyperparams['learning_rate']):g}); "
                      "the remaining epochs are logged as NaN", file=sys.stderr)
        bar.set_postfix(train_loss=f"{logs['train_loss'][-1]:.4f}",
                        test_mae=f"{logs['test_mae'][-1]:.4f}")
        if on_epoch is not None:
            on_epoch(epoch, state, logs)
    return state, logs
