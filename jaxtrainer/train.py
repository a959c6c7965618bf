"""Training as pure compiled functions of (parameters, optimizer state, data).

Everything jitted takes the data as arguments: a closed-over array would be compiled in as a constant
(5-6 s and 1.2 GB for the first MLP epoch instead of 0.4 s, docs/performance.md). The network's
structure (an NNX graphdef), the task, the optimizer factory, the gradient function and the batch
size are static, so two runs of the same architecture share one compiled program whatever their
learning rate. Task (regression, classification), optimizer (optax's or one written by hand) and
gradient (`autodiff`, or a model's hand-written backward pass) are plugged in, not copied loops.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, Dict, NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax

from .tasks import REGRESSION, log_keys

EVAL_CHUNK = 1000


class TrainState(NamedTuple):
    params: nnx.State
    opt_state: optax.OptState


@functools.cache
def _hyperparam_optimizer(factory: Callable) -> optax.GradientTransformation:
    """`factory` with its numeric hyper-parameters read from the optimizer state, so the learning
    rate is data (a new value neither recompiles nor needs a new program)."""
    return optax.inject_hyperparams(factory)(learning_rate=0.0)


def init_state(
    model: nnx.Module, lr: float, optimizer: Callable = optax.adam
) -> Tuple[nnx.GraphDef, TrainState]:
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = optax.inject_hyperparams(optimizer)(learning_rate=lr).init(params)
    return graphdef, TrainState(params, opt_state)


def apply(graphdef: nnx.GraphDef, params: nnx.State, x):
    return nnx.merge(graphdef, params)(x)


def _batch_metrics(graphdef, params, x, y, task):
    per_example = task.per_example(apply(graphdef, params, x), y)
    return task.batch_loss(per_example["loss"]), {k: jnp.mean(v) for k, v in per_example.items()}


def autodiff(graphdef, params, x, y, task):
    """The gradient of the task's batch loss by `jax.grad`, and the batch's mean metrics. Any
    function with this signature can replace it (`handgrad.backprop`: a backward pass by hand)."""
    return jax.grad(_batch_metrics, argnums=1, has_aux=True)(graphdef, params, x, y, task)


def _step(graphdef, state: TrainState, x, y, task, optimizer, gradient=autodiff):
    grads, metrics = gradient(graphdef, state.params, x, y, task)
    tx = _hyperparam_optimizer(optimizer)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return TrainState(optax.apply_updates(state.params, updates), opt_state), metrics


@functools.partial(jax.jit, static_argnames=("graphdef", "task", "optimizer", "gradient"))
def train_step(graphdef, state: TrainState, x, y, task=REGRESSION, optimizer=optax.adam, gradient=autodiff):
    """One update; the metrics are those of the batch before the update (as PyTorch's loop reports)."""
    return _step(graphdef, state, x, y, task, optimizer, gradient)


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


def _epoch(graphdef, state, X, y, batch_size, task, optimizer, order=None, gradient=autodiff):
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
        return _step(graphdef, state, xb, yb, task, optimizer, gradient)

    return _scan_batches(state, X.shape[0], batch_size, step)


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


@functools.partial(jax.jit, static_argnames=("graphdef", "task", "chunk"))
def evaluate(graphdef, params, X, y, task=REGRESSION, chunk=EVAL_CHUNK) -> Dict[str, jax.Array]:
    return _evaluate(graphdef, params, X, y, task, chunk)


@functools.partial(
    jax.jit, static_argnames=("graphdef", "batch_size", "task", "optimizer", "chunk", "gradient")
)
def train_epoch(
    graphdef,
    state: TrainState,
    X,
    y,
    eval_sets: Sequence = (),
    *,
    batch_size: int,
    task=REGRESSION,
    optimizer=optax.adam,
    chunk=EVAL_CHUNK,
    gradient=autodiff,
):
    """One epoch and the evaluations that log it, as a single compiled program.

    Returns the new state, the per-step metrics, and the metrics of each `(X, y)` in `eval_sets`
    measured with the updated parameters.
    """
    state, step_metrics = _epoch(graphdef, state, X, y, batch_size, task, optimizer, gradient=gradient)
    evals = [_evaluate(graphdef, state.params, ex, ey, task, chunk) for ex, ey in eval_sets]
    return state, step_metrics, evals


def to_device(X, y, task=REGRESSION):
    return jnp.asarray(X, jnp.float32), jnp.asarray(y, task.label_dtype)


LOG_KEYS = log_keys(REGRESSION)  # the homework's: train_loss, test_loss, train_mae, test_mae


def divergence_epoch(logs: dict) -> int | None:
    """The first epoch whose logged losses (every `*_loss` list) hold NaN or Inf (0 = before
    training), or None."""
    losses = [values for key, values in logs.items() if key.endswith("_loss")]
    for epoch, values in enumerate(zip(*losses)):
        if not all(np.isfinite(values)):
            return epoch
    return None


def _finite(params) -> bool:
    return all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(params))


def _append(logs: dict, prefix: str, metrics: dict) -> None:
    for name, value in metrics.items():
        logs[f"{prefix}_{name}"].append(float(value))


def _run_epochs(
    state, logs: dict, epochs: range, run_epoch: Callable, *, progress: bool, on_epoch: Callable | None
):
    """The loop both variants share: `run_epoch(epoch, state)` trains one epoch, appends its log
    entries and returns the new state. Once the parameters hold NaN or Inf they stay so: the
    remaining epochs are logged as NaN, as the reference would log them, without computing them."""
    from tqdm.auto import tqdm

    bar = tqdm(
        epochs,
        desc="epochs",
        unit="epoch",
        disable=not progress,
        dynamic_ncols=True,
        initial=epochs.start - 1,
        total=epochs.stop - 1,
    )
    for epoch in bar:
        if _finite(state.params):
            state = run_epoch(epoch, state)
        else:
            for values in logs.values():
                values.append(float("nan"))
        if divergence_epoch(logs) == len(logs["train_loss"]) - 1:
            bar.write(
                f"diverged: the loss is not finite after epoch {epoch} "
                f"(lr {float(state.opt_state.hyperparams['learning_rate']):g}); "
                "the remaining epochs are logged as NaN",
                file=sys.stderr,
            )
        last = list(logs)[-1]  # test_mae for the homework, the held-out accuracy for a classifier
        bar.set_postfix({"train_loss": f"{logs['train_loss'][-1]:.4f}", last: f"{logs[last][-1]:.4f}"})
        if on_epoch is not None:
            on_epoch(epoch, state, logs)
    return state, logs


def fit(
    graphdef,
    state: TrainState,
    train: Tuple,
    test: Tuple,
    n_epochs: int,
    *,
    batch_size: int,
    task=REGRESSION,
    optimizer=optax.adam,
    gradient=autodiff,
    train_eval_size: int = 2000,
    names: Tuple[str, str] = ("train", "test"),
    progress: bool = True,
    on_epoch: Callable | None = None,
    logs: dict | None = None,
):
    """The homework's tensor-variant loop: log on the first `train_eval_size` training examples and
    the test set before training and after each epoch (n_epochs + 1 entries per list), under the
    keys `log_keys(task, names)` (a lab passes its validation split as `test`, named "val").

    `logs` are those of epochs already run (a resumed run): training continues after them.
    `on_epoch(epoch, state, logs)` runs after each epoch's logs are appended (checkpoints hook here).
    Returns (state, logs).
    """
    X, y = to_device(*train, task)
    test = to_device(*test, task)
    eval_sets = ((X[:train_eval_size], y[:train_eval_size]), test)
    if logs is None:
        logs = {k: [] for k in log_keys(task, names)}
        for prefix, s in zip(names, eval_sets):
            _append(logs, prefix, evaluate(graphdef, state.params, *s, task=task))

    def run_epoch(epoch, state):
        state, _, evals = train_epoch(
            graphdef,
            state,
            X,
            y,
            eval_sets,
            batch_size=batch_size,
            task=task,
            optimizer=optimizer,
            gradient=gradient,
        )
        for prefix, metrics in zip(names, evals):
            _append(logs, prefix, metrics)
        return state

    done = len(logs["train_loss"]) - 1
    return _run_epochs(
        state, logs, range(done + 1, n_epochs + 1), run_epoch, progress=progress, on_epoch=on_epoch
    )


# -- the loader variant (SVHN, CIFAR-10): shuffled epochs, metrics as means over batches ----------


@functools.partial(
    jax.jit, static_argnames=("graphdef", "batch_size", "test_batch_size", "task", "optimizer")
)
def train_epoch_loader(
    graphdef,
    state: TrainState,
    X,
    y,
    order,
    X_test,
    y_test,
    *,
    batch_size: int,
    test_batch_size: int,
    task=REGRESSION,
    optimizer=optax.adam,
):
    """One loader-variant epoch as a single compiled program: the steps over the batches of
    `X[order]`, then the mean over the test set's batches with the updated parameters. The order is
    data, so every epoch's permutation runs the same program. Returns the new state, the per-step
    metrics and the test means."""
    state, step_metrics = _epoch(graphdef, state, X, y, batch_size, task, optimizer, order)
    return state, step_metrics, _batch_means(graphdef, state.params, X_test, y_test, test_batch_size, task)


def fit_loader(
    graphdef,
    state: TrainState,
    train: Tuple,
    test: Tuple,
    n_epochs: int,
    *,
    batch_size: int,
    order: Callable[[int], np.ndarray],
    test_batch_size: int | None = None,
    task=REGRESSION,
    optimizer=optax.adam,
    progress: bool = True,
    on_epoch: Callable | None = None,
    logs: dict | None = None,
):
    """The homework's loader-variant loop (SVHN, CIFAR-10): n_epochs entries per list, no entry
    before training. Epoch e (from 1) trains on the batches of `order(e)`, the training examples'
    indices in that epoch's order, and logs the mean over its batches of the steps' loss and MAE,
    then the mean over the test set's consecutive batches (`test_batch_size`, default
    `batch_size`) of each batch's loss and MAE. `logs`, `on_epoch` and NaN handling as in `fit`."""
    X, y = to_device(*train, task)
    X_test, y_test = to_device(*test, task)
    if logs is None:
        logs = {k: [] for k in log_keys(task)}

    def run_epoch(epoch, state):
        perm = np.asarray(order(epoch))
        if perm.shape != (X.shape[0],):
            raise ValueError(f"order({epoch}) has shape {perm.shape}, expected ({X.shape[0]},)")
        state, steps, test_means = train_epoch_loader(
            graphdef,
            state,
            X,
            y,
            jnp.asarray(perm, jnp.int32),
            X_test,
            y_test,
            batch_size=batch_size,
            test_batch_size=test_batch_size or batch_size,
            task=task,
            optimizer=optimizer,
        )
        _append(logs, "train", {k: np.mean(np.asarray(v, np.float64)) for k, v in steps.items()})
        _append(logs, "test", test_means)
        return state

    done = len(logs["train_loss"])
    return _run_epochs(
        state, logs, range(done + 1, n_epochs + 1), run_epoch, progress=progress, on_epoch=on_epoch
    )
