"""The one epoch loop, for K stacked members: a single run is K = 1 (`fit`), whose program has no
member axis at all. Members stay independent: a member whose parameters hold NaN or Inf stops
training (its epoch becomes a no-op logged as NaN) while the others go on."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Callable, List, NamedTuple, Sequence, Tuple

import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from .. import distributed
from ..data import fingerprint
from ..data import load as load_data
from ..distributed import to_host
from ..errors import InputError
from ..settings import Settings
from ..spec import Spec
from ..train import TrainState, divergence_epoch, to_device
from . import programs
from .members import init_sweep, stack, sweep_size, unstack
from .placement import gathered, placement

DEFAULT = Settings(strategy="map")


@dataclasses.dataclass(frozen=True)
class Loop:
    """How the epochs run, beyond what is compiled (`Settings`): `order(e)`, the training indices of
    epoch e (the loader variant, e from 1); the `devices` to split the members over (default: all);
    a `progress` bar named `desc`; `labels` naming the members (default: their learning rates);
    `on_epoch(epoch, states, logs)` after each epoch's logs are appended (checkpoints hook here)."""

    order: Callable[[int], np.ndarray] | None = None
    devices: Sequence | None = None
    progress: bool = True
    desc: str = "epochs"
    labels: Sequence[str] | None = None
    on_epoch: Callable | None = None


def _append(logs: List[dict], per_set, names: Sequence[str]) -> None:
    """Each logged set's metrics (shape (K,), padding dropped) appended to the members' logs."""
    host = to_host(per_set)
    for i, member in enumerate(logs):
        for prefix, metrics in zip(names, host):
            for name, values in metrics.items():
                member[f"{prefix}_{name}"].append(float(values[i]))


def _report(labels: Sequence[str], logs: List[dict], epoch: int, last: str, bar) -> None:
    """Phase 3, after each epoch: the members that diverged at it, and each one's `last` value on the bar."""
    k = len(logs)
    for label, member in zip(labels, logs):
        if divergence_epoch(member) == len(member[last]) - 1:
            others = ", the other members go on" if k > 1 else ""
            bar.write(
                f"diverged: {label}: the loss is not finite after epoch {epoch}; "
                f"its remaining epochs are logged as NaN{others}",
                file=sys.stderr,
            )
    values = [member[last][-1] for member in logs]
    best = np.nanmax if last.endswith("accuracy") else np.nanmin
    if k <= 4:
        shown = "/".join(f"{v:.3f}" for v in values)
    else:
        shown = f"best {best(values) if np.isfinite(values).any() else np.nan:.3f}"
    bar.set_postfix({last: shown})


class _Placed(NamedTuple):
    """What `_prepare` placed on the devices: the training set, the sets each epoch evaluates."""

    place: Any
    X: Any
    y: Any
    eval_sets: Any


def _prepare(graphdef, states, train, test, settings, logs, devices):
    """Phase 1: the data and the members placed on the devices; new logs hold epoch 0's evaluation
    (the tensor variant), given ones are checked to be the K members' of one length."""
    k, loader, keys = sweep_size(states), settings.variant == "loader", settings.log_keys
    place = placement(k, devices)
    X, y = to_device(train[0], train[1], settings.task)
    test = to_device(test[0], test[1], settings.task)
    size = settings.train_eval_size
    eval_sets = (test,) if loader else ((X[:size], y[:size]), test)
    placed = _Placed(place, *place.put((X, y, eval_sets), sharded=False))
    states = place.put(place.pad(states), sharded=True)
    if logs is None:
        logs = [{key: [] for key in keys} for _ in range(k)]
        if not loader:
            evals = programs.sweep_evaluate(graphdef, states.params, eval_sets, settings, place.mesh)
            _append(logs, evals, settings.names)
    lengths = {len(member[keys[0]]) for member in logs}
    if len(lengths) != 1 or len(logs) != k:
        raise ValueError(f"the logs of epochs already run must be {k} of one length, got {sorted(lengths)}")
    return placed, states, logs


def _train_epoch(graphdef, states, placed: _Placed, epoch: int, settings, order):
    """Phase 2, one epoch of every member: the new states and each logged set's metrics."""
    perm = None
    if order is not None:
        perm = np.asarray(order(epoch))
        if perm.shape != (placed.X.shape[0],):
            raise InputError(f"order({epoch}) has shape {perm.shape}, expected ({placed.X.shape[0]},)")
        perm = placed.place.put(jnp.asarray(perm, jnp.int32), sharded=False)
    data = (placed.X, placed.y, perm, placed.eval_sets)
    states, steps, evals = programs.sweep_epoch(graphdef, states, data, settings, placed.place.mesh)
    if settings.variant == "loader":  # the mean of the steps' metrics, in float64 as a Python loop sums them
        evals = [{m: np.mean(np.asarray(v, np.float64), axis=1) for m, v in steps.items()}, evals[1]]
    return states, evals


def fit_sweep(graphdef, states, train, test, n_epochs: int, settings=DEFAULT, *, logs=None, loop=Loop()):
    """Train K stacked members to `n_epochs` in three phases (`_prepare`, `_train_epoch` each epoch,
    `_report` after it); each member's logs (`settings.log_keys`) are those the homework's loop
    writes for it alone: the tensor variant's hold epoch 0 too. Returns (stacked states, list of logs).

    Args:
        graphdef: the network's structure, one for every member.
        states: the members' `TrainState`s stacked along a leading axis (`stack`, `init_sweep`).
        train: (X, y), NCHW images and their targets; `test` likewise.
        n_epochs: the epochs in all, those already in `logs` included.
        settings: what is compiled: batch size, task, optimizer, gradient, strategy, variant.
        logs: one dict per member, of the epochs already run: training continues after them.
        loop: how the epochs run beyond what is compiled (order, devices, progress, `on_epoch`).
    """
    if settings.variant == "loader" and loop.order is None:
        raise ValueError("the loader variant needs order(epoch), the training order of each epoch")
    k, keys = sweep_size(states), settings.log_keys
    labels = loop.labels or [f"lr {lr:g}" for lr in np.asarray(states.opt_state.hyperparams["learning_rate"])]
    placed, states, logs = _prepare(graphdef, states, train, test, settings, logs, loop.devices)
    done = len(logs[0][keys[0]]) - (settings.variant == "tensor")  # the tensor variant logs epoch 0
    epochs = range(done + 1, n_epochs + 1)
    bar = tqdm(
        epochs, loop.desc, n_epochs, initial=done, disable=not loop.progress, unit="epoch", dynamic_ncols=True
    )
    for epoch in bar:
        states, evals = _train_epoch(graphdef, states, placed, epoch, settings, loop.order)
        _append(logs, evals, settings.names)
        _report(labels, logs, epoch, keys[-1], bar)  # test_mae, or a classifier's held-out accuracy
        if loop.on_epoch is not None:
            loop.on_epoch(epoch, gathered(states, k), logs)
    return gathered(states, k), logs


def fit(graphdef, state, train, test, n_epochs: int, settings=DEFAULT, *, logs=None, loop=Loop()):
    """One run: `fit_sweep` of one unstacked `state` and its `logs` (its compiled program has no
    member axis; `loop.on_epoch(epoch, state, logs)` gets this member's). Returns (state, logs)."""
    if (hook := loop.on_epoch) is not None:
        on_epoch = lambda e, states, logs: hook(e, unstack(states, 0), logs[0])
        loop = dataclasses.replace(loop, on_epoch=on_epoch)
    logs = None if logs is None else [logs]
    states, logs = fit_sweep(graphdef, stack([state]), train, test, n_epochs, settings, logs=logs, loop=loop)
    return unstack(states, 0), logs[0]


@dataclasses.dataclass
class SweepResult:
    """What `sweep` returns: the members' logs and trained state (stacked), their strategy and time."""

    members: List[Tuple[float, int]]  # (lr, seed) per member
    logs: List[dict]
    graphdef: nnx.GraphDef
    state: TrainState  # stacked along the members
    strategy: str
    seconds: float
    n_devices: int  # devices the sweep axis was split over (1: not sharded)

    @property
    def diverged_at_epoch(self) -> List[int | None]:
        """Each member's first epoch with a non-finite loss, or None."""
        return [divergence_epoch(logs) for logs in self.logs]

    def model(self, i: int) -> nnx.Module:
        """Member i's trained network."""
        return nnx.merge(self.graphdef, unstack(self.state.params, i))


def sweep(spec: Spec, loop: Loop = Loop()) -> SweepResult:
    """Train every member of `spec` at once, as one compiled program, in memory (no run folder).
    Member i's logs equal those of `fit` on the same configuration alone."""
    ds = load_data(spec.dataset, data_dir=spec.data_dir)
    distributed.check_same_data(fingerprint(ds.train, ds.test))
    settings = spec.settings()
    graphdef, states, _ = init_sweep(spec, ds.image_shape)
    loop = dataclasses.replace(
        loop,
        labels=loop.labels or [f"lr {lr:g}, seed {s}" for lr, s in spec.members],
        desc=f"{spec.network} x{len(spec.members)} ({settings.strategy})",
    )
    start = time.perf_counter()
    states, logs = fit_sweep(graphdef, states, ds.train, ds.test, spec.epochs, settings, loop=loop)
    seconds, n_devices = time.perf_counter() - start, placement(len(spec.members), loop.devices).n_devices
    return SweepResult(list(spec.members), logs, graphdef, states, settings.strategy, seconds, n_devices)
