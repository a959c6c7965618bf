"""The one epoch loop, for K stacked members: a single run is K = 1 (`fit`), whose program has no
member axis at all. Members stay independent: a member whose parameters hold NaN or Inf stops
training (its epoch becomes a no-op logged as NaN) while the others go on."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable, List, Sequence, Tuple

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
from .placement import Placement, gathered, placement

DEFAULT = Settings(strategy="map")


@dataclasses.dataclass(frozen=True)
class Loop:
    """How the epochs run, beyond what is compiled (`Settings`): `order(e)` gives the training
    examples' indices in epoch e's order (the loader variant, e from 1); `devices` are those the
    members are split over (default: all visible); `progress` shows a bar named `desc`; `labels`
    name the members in messages (default: their learning rates); `on_epoch(epoch, states, logs)`
    runs after each epoch's logs are appended (checkpoints hook here)."""

    order: Callable[[int], np.ndarray] | None = None
    devices: Sequence | None = None
    progress: bool = True
    desc: str = "epochs"
    labels: Sequence[str] | None = None
    on_epoch: Callable | None = None


@dataclasses.dataclass
class _Sweep:
    """A sweep ready to run: its data and members placed, and its logs so far."""

    graphdef: nnx.GraphDef
    settings: Settings
    place: Placement
    data: Tuple  # X, y, eval_sets, on the devices
    states: TrainState  # padded, on the devices
    logs: List[dict]
    labels: Sequence[str]

    def append(self, per_set) -> None:
        host = to_host(per_set)
        for i, member in enumerate(self.logs):
            for prefix, metrics in zip(self.settings.names, host):
                for name, values in metrics.items():
                    member[f"{prefix}_{name}"].append(float(values[i]))

    @property
    def done(self) -> int:
        """The epochs the logs hold (the tensor variant logs epoch 0, before training)."""
        return len(self.logs[0][self.settings.log_keys[0]]) - (self.settings.variant == "tensor")


def _prepare(graphdef, states, train, test, settings: Settings, logs, loop: Loop) -> _Sweep:
    """The data and the members on their devices, and the logs: those of epochs already run, or
    new ones holding epoch 0's evaluation (the tensor variant)."""
    k = sweep_size(states)
    loader = settings.variant == "loader"
    if loader and loop.order is None:
        raise ValueError("the loader variant needs order(epoch), the training order of each epoch")
    labels = loop.labels or [f"lr {lr:g}" for lr in np.asarray(states.opt_state.hyperparams["learning_rate"])]
    place = placement(k, loop.devices)
    X, y = to_device(train[0], train[1], settings.task)
    test = to_device(test[0], test[1], settings.task)
    size = settings.train_eval_size
    eval_sets = (test,) if loader else ((X[:size], y[:size]), test)
    data = place.put((X, y, eval_sets), sharded=False)
    placed = place.put(place.pad(states), sharded=True)
    sweep = _Sweep(graphdef, settings, place, data, placed, logs, labels)
    if logs is None:
        sweep.logs = [{key: [] for key in settings.log_keys} for _ in range(k)]
        if not loader:
            sweep.append(programs.sweep_evaluate(graphdef, placed.params, eval_sets, settings, place.mesh))
    lengths = {len(member[settings.log_keys[0]]) for member in sweep.logs}
    if len(lengths) != 1 or len(sweep.logs) != k:
        raise ValueError(f"the logs of epochs already run must be {k} of one length, got {sorted(lengths)}")
    return sweep


def _train_epoch(sweep: _Sweep, epoch: int, order) -> None:
    """One epoch of every member, its metrics appended to the logs."""
    X, y, eval_sets = sweep.data
    settings, perm = sweep.settings, None
    if order is not None:
        perm = np.asarray(order(epoch))
        if perm.shape != (X.shape[0],):
            raise InputError(f"order({epoch}) has shape {perm.shape}, expected ({X.shape[0]},)")
        perm = sweep.place.put(jnp.asarray(perm, jnp.int32), sharded=False)
    sweep.states, steps, evals = programs.sweep_epoch(
        sweep.graphdef, sweep.states, (X, y, perm, eval_sets), settings, sweep.place.mesh
    )
    if settings.variant == "loader":  # the mean of the steps' metrics, in float64 as a Python loop sums them
        evals = [{m: np.mean(np.asarray(v, np.float64), axis=1) for m, v in steps.items()}, evals[1]]
    sweep.append(evals)


def _report(sweep: _Sweep, epoch: int, bar) -> None:
    """The members that diverged at this epoch, and the last logged value of each on the bar."""
    last = sweep.settings.log_keys[-1]  # test_mae for the homework, the held-out accuracy for a classifier
    k = len(sweep.logs)
    for label, member in zip(sweep.labels, sweep.logs):
        if divergence_epoch(member) == len(member[last]) - 1:
            others = ", the other members go on" if k > 1 else ""
            bar.write(
                f"diverged: {label}: the loss is not finite after epoch {epoch}; "
                f"its remaining epochs are logged as NaN{others}",
                file=sys.stderr,
            )
    values = [member[last][-1] for member in sweep.logs]
    best = np.nanmax if last.endswith("accuracy") else np.nanmin
    if k <= 4:
        shown = "/".join(f"{v:.3f}" for v in values)
    else:
        shown = f"best {best(values) if np.isfinite(values).any() else np.nan:.3f}"
    bar.set_postfix({last: shown})


def fit_sweep(graphdef, states, train, test, n_epochs: int, settings=DEFAULT, *, logs=None, loop=Loop()):
    """Train K stacked members to `n_epochs` in three phases: prepare, the epochs, report.

    Each member's logs are those the homework's loop writes for it alone, under
    `settings.log_keys`: the tensor variant logs before training and after each epoch (n_epochs + 1
    entries per list), the loader variant after each epoch. Returns (stacked states, list of logs).

    Args:
        graphdef: the network's structure, one for every member.
        states: the members' `TrainState`s stacked along a leading axis (`stack`, `init_sweep`).
        train: (X, y), NCHW images and their targets.
        test: (X, y), the test set.
        n_epochs: the epochs in all, those already in `logs` included.
        settings: what is compiled: batch size, task, optimizer, gradient, strategy, variant.
        logs: one dict per member, of the epochs already run: training continues after them.
        loop: how the epochs run beyond what is compiled (order, devices, progress, `on_epoch`).
    """
    sweep = _prepare(graphdef, states, train, test, settings, logs, loop)
    k, done = len(sweep.logs), sweep.done
    epochs = range(done + 1, n_epochs + 1)
    bar = tqdm(
        epochs, loop.desc, n_epochs, initial=done, disable=not loop.progress, unit="epoch", dynamic_ncols=True
    )
    for epoch in bar:
        _train_epoch(sweep, epoch, loop.order)
        _report(sweep, epoch, bar)
        if loop.on_epoch is not None:
            loop.on_epoch(epoch, gathered(sweep.states, k), sweep.logs)
    return gathered(sweep.states, k), sweep.logs


def fit(graphdef, state, train, test, n_epochs: int, settings=DEFAULT, *, logs=None, loop=Loop()):
    """One run: `fit_sweep` of one member (its compiled program has no member axis). Returns
    (state, logs).

    Args:
        graphdef: the network's structure (`train.init_state`).
        state: its `TrainState`, unstacked.
        train: (X, y), NCHW images and their targets.
        test: (X, y), the test set.
        n_epochs: the epochs in all, those already in `logs` included.
        settings: what is compiled: batch size, task, optimizer, gradient, variant.
        logs: the run's logs of the epochs already run: training continues after them.
        loop: as for `fit_sweep`, but `loop.on_epoch(epoch, state, logs)` gets this one member's.
    """
    hook = loop.on_epoch
    if hook is not None:
        loop = dataclasses.replace(
            loop, on_epoch=lambda e, states, logs: hook(e, unstack(states, 0), logs[0])
        )
    logs = None if logs is None else [logs]
    states, logs = fit_sweep(graphdef, stack([state]), train, test, n_epochs, settings, logs=logs, loop=loop)
    return unstack(states, 0), logs[0]


@dataclasses.dataclass
class SweepResult:
    """What `sweep` returns: the members' logs and trained state (stacked), how they were computed and
    how long it took (seconds)."""

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
    return SweepResult(
        list(spec.members),
        logs,
        graphdef,
        states,
        settings.strategy,
        time.perf_counter() - start,
        placement(len(spec.members), loop.devices).n_devices,
    )
