"""Many configurations of one architecture (learning rates, seeds) trained as one compiled program.

The K members' parameters and Adam states are stacked along a leading "sweep" axis; the learning
rate is part of each member's optimizer state (`optax.inject_hyperparams`), so it is data: a sweep
over new values reuses the compiled program. Each epoch is one jitted call that runs every member's
epoch (`train.member_epoch`) either

- `"vmap"`: batched over the members, one wide program (pays where one small model leaves the
  device idle: GPU/TPU), or
- `"map"`: `lax.map`, the members one after another inside the same program (CPU: one model
  already fills the cores, and the batched matmuls vmap makes are slower there than the same
  matmuls one member at a time: measured in docs/performance.md, "Sweeps").

`Settings(strategy="auto")` picks per backend (`settings.auto_strategy`). Members stay independent:
a member whose parameters hold NaN or Inf stops training (its epoch becomes a no-op logged as NaN)
while the others go on; there is no global check that stops all.

`fit_sweep` is the one epoch loop (progress, divergence reports, logs, the per-epoch hook); a single
run is a sweep of one member (`fit`), whose program has no member axis at all.

With several devices visible the sweep axis is split over a 1-D `Mesh` ("sweep") with `shard_map`:
each device runs its share of members locally (no communication), the data replicated. A K that
the device count does not divide is padded with copies of member 0, whose results are dropped;
the number of devices used is the fewest that still gives the fewest members per device
(K=3 on 4 devices uses 3 devices, no padding; K=5 uses 3 devices, padded to 6). The devices may
belong to several processes (`distributed.py`): each process then runs its own members' share.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import sys
import time
from typing import Callable, List, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from . import distributed, presets
from .config import NetworkConfiguration, check_lr, check_n_epochs, check_seed
from .data import fingerprint
from .data import load as load_data
from .distributed import to_host
from .errors import InputError
from .models import build_network
from .settings import Settings
from .train import TrainState, _evaluate, divergence_epoch, init_state, member_epoch, to_device

AXIS = "sweep"


# -- members, stacked ----------------------------------------------------------------------------
def members_of(lrs: Sequence[float], seeds: Sequence[int], pair: bool = False) -> List[Tuple[float, int]]:
    """(lr, seed) of each member: the cross product (lr-major), or element-wise with `pair=True`."""
    lrs, seeds = [check_lr(lr) for lr in lrs], [check_seed(s) for s in seeds]
    if not lrs or not seeds:
        raise InputError("a sweep needs at least one learning rate and one seed")
    if pair:
        if len(lrs) != len(seeds):
            raise InputError(
                f"paired learning rates and seeds must have one length, got {len(lrs)} "
                f"learning rates and {len(seeds)} seeds"
            )
        return list(zip(lrs, seeds))
    return list(itertools.product(lrs, seeds))


def stack(states: Sequence) -> TrainState:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def unstack(states, i: int):
    return jax.tree.map(lambda a: a[i], states)


def sweep_size(states) -> int:
    return int(jax.tree.leaves(states)[0].shape[0])


def init_sweep(
    network: str,
    input_shape,
    net_config: NetworkConfiguration,
    members: Sequence[Tuple[float, int]],
    activation: str = "relu",
    *,
    conv_impl: str | None = None,
    optimizer: Callable = optax.adam,
):
    """(graphdef, stacked state, one model): member i is `build_network(..., seed=seed_i)` with
    the optimizer at lr_i, exactly the state a solo run of that configuration starts from."""
    graphdef, states, model = None, [], None
    for lr, seed in members:
        model = build_network(network, input_shape, net_config, activation, seed=seed, conv_impl=conv_impl)
        g, state = init_state(model, lr, optimizer)
        if graphdef is not None and g != graphdef:
            raise InputError("sweep members must share one architecture")
        graphdef = g
        states.append(state)
    return graphdef, stack(states), model


# -- the compiled programs -----------------------------------------------------------------------
def _over_members(fn, states, shared, strategy: str, mesh: Mesh | None):
    """fn(member_state, shared) for each member along the leading axis; on a mesh, each device
    takes its block of members."""

    def local(states, shared):
        if sweep_size(states) == 1:  # the solo program itself: no batch axis of size 1
            return jax.tree.map(lambda a: a[None], fn(unstack(states, 0), shared))
        if strategy == "vmap":
            return jax.vmap(fn, in_axes=(0, None))(states, shared)
        return lax.map(lambda s: fn(s, shared), states)

    if mesh is None:
        return local(states, shared)
    return jax.shard_map(local, mesh=mesh, in_specs=(P(AXIS), P()), out_specs=P(AXIS), check_vma=False)(
        states, shared
    )


@functools.partial(jax.jit, static_argnames=("graphdef", "settings", "mesh"))
def sweep_epoch(graphdef, states: TrainState, data, settings: Settings, mesh: Mesh | None = None):
    """One epoch of every member and the metrics that log it (`train.member_epoch`), as one
    compiled program. `data` is (X, y, order or None, eval_sets). Returns the new stacked state, the
    per-step metrics and, per logged set, metrics of shape (K,)."""
    member = lambda state, data: member_epoch(graphdef, state, data, settings)
    return _over_members(member, states, data, settings.strategy, mesh)


@functools.partial(jax.jit, static_argnames=("graphdef", "settings", "mesh"))
def sweep_evaluate(graphdef, params, eval_sets: Sequence, settings: Settings, mesh: Mesh | None = None):
    """Per `(X, y)` in `eval_sets`, every member's mean metrics, shape (K,)."""

    def member(p, eval_sets):
        return [_evaluate(graphdef, p, ex, ey, settings.task, settings.eval_chunk) for ex, ey in eval_sets]

    return _over_members(member, params, list(eval_sets), settings.strategy, mesh)


# -- devices ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Placement:
    mesh: Mesh | None
    padded: int  # K after padding (a multiple of the devices used)

    def put(self, tree, sharded: bool):
        """`tree` (the same on every process) placed on the mesh: split along the members, or
        replicated. A mesh of several processes' devices takes each process's own part."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, P(AXIS) if sharded else P())
        if sharding.is_fully_addressable:
            return jax.device_put(tree, sharding)
        host = jax.device_get(tree)
        return jax.tree.map(lambda a: jax.make_array_from_callback(a.shape, sharding, lambda i: a[i]), host)


def devices_used(k: int, n_devices: int) -> Tuple[int, int]:
    """(devices, padded K): the fewest devices that still give the fewest members per device, and
    K padded to a multiple of them (K=3 of 4 devices: 3 devices, no padding; K=5: 3, padded to 6)."""
    per_device = math.ceil(k / n_devices)
    n = math.ceil(k / per_device)
    return n, n * per_device


def placement(k: int, devices: Sequence | None = None) -> Placement:
    """Where the K members run: a 1-D mesh over `devices_used` of `devices` (default: all
    visible), or no mesh when that is one device."""
    devices = list(jax.devices() if devices is None else devices)
    n, padded = devices_used(k, len(devices))
    if n <= 1:
        return Placement(None, k)
    return Placement(Mesh(np.array(devices[:n]), (AXIS,)), padded)


def _pad(states, padded: int):
    k = sweep_size(states)
    if padded == k:
        return states
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[:1], padded - k, axis=0)]), states)


def _unpad(states, k: int):
    if sweep_size(states) == k:
        return states
    return jax.tree.map(lambda a: a[:k], states)


# -- the loop --------------------------------------------------------------------------------------
def fit_sweep(
    graphdef,
    states: TrainState,
    train: Tuple,
    test: Tuple,
    n_epochs: int,
    settings: Settings = Settings(strategy="map"),
    *,
    logs: List[dict] | None = None,
    order: Callable[[int], np.ndarray] | None = None,
    devices: Sequence | None = None,
    progress: bool = True,
    on_epoch: Callable | None = None,
    labels: Sequence[str] | None = None,
    desc: str = "epochs",
):
    """The one epoch loop, for K stacked members (a single run is K = 1: `fit`).

    Each member's logs are those the homework's loop writes for it alone, under
    `settings.log_keys`: the tensor variant logs before training and after each epoch (n_epochs + 1
    entries per list), the loader variant after each epoch (n_epochs entries; `order(e)` gives the
    training examples' indices in epoch e's order, e from 1). `logs` (one dict per member) are
    those of epochs already run: training continues after them. `on_epoch(epoch, states, logs)`
    runs after each epoch's logs are appended (checkpoints hook here). Returns (stacked states,
    list of logs).
    """
    k = sweep_size(states)
    place = placement(k, devices)
    loader = settings.variant == "loader"
    if loader and order is None:
        raise ValueError("the loader variant needs order(epoch), the training order of each epoch")
    if labels is None:
        lrs = np.asarray(states.opt_state.hyperparams["learning_rate"])  # inject_hyperparams' state  # pyright: ignore[reportAttributeAccessIssue]
        labels = [f"lr {lr:g}" for lr in lrs]
    X, y = to_device(*train, settings.task)  # train: (X, y)  # pyright: ignore[reportCallIssue]
    test = to_device(*test, settings.task)  # test: (X, y)  # pyright: ignore[reportCallIssue]
    size = settings.train_eval_size
    eval_sets = (test,) if loader else ((X[:size], y[:size]), test)
    X, y, eval_sets = place.put((X, y, eval_sets), sharded=False)
    run = place.put(_pad(states, place.padded), sharded=True)

    def append(per_set):
        host = to_host(per_set)
        # append runs once logs is a list (set below when None)
        for i, member in enumerate(logs):  # pyright: ignore[reportArgumentType]
            for prefix, metrics in zip(settings.names, host):
                for name, values in metrics.items():
                    member[f"{prefix}_{name}"].append(float(values[i]))

    if logs is None:
        logs = [{key: [] for key in settings.log_keys} for _ in range(k)]
        if not loader:
            append(sweep_evaluate(graphdef, run.params, eval_sets, settings, place.mesh))
    done = {len(member[settings.log_keys[0]]) - (not loader) for member in logs}
    if len(done) != 1 or len(logs) != k:
        raise ValueError(f"the logs of epochs already run must be {k} of one length, got {sorted(done)}")
    done = done.pop()
    bar = tqdm(
        range(done + 1, n_epochs + 1),
        desc=desc,
        unit="epoch",
        disable=not progress,
        dynamic_ncols=True,
        initial=done,
        total=n_epochs,
    )
    last = settings.log_keys[-1]  # test_mae for the homework, the held-out accuracy for a classifier
    for epoch in bar:
        perm = None
        if loader:
            perm = np.asarray(order(epoch))  # the loader variant has one  # pyright: ignore[reportOptionalCall]
            if perm.shape != (X.shape[0],):
                raise InputError(f"order({epoch}) has shape {perm.shape}, expected ({X.shape[0]},)")
            perm = place.put(jnp.asarray(perm, jnp.int32), sharded=False)
        run, steps, evals = sweep_epoch(graphdef, run, (X, y, perm, eval_sets), settings, place.mesh)
        if loader:  # the mean of the steps' metrics, in float64 as a Python loop sums them
            evals = [{m: np.mean(np.asarray(v, np.float64), axis=1) for m, v in steps.items()}, evals[1]]
        append(evals)
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
        shown = (
            "/".join(f"{v:.3f}" for v in values)
            if k <= 4
            else f"best {best(values) if np.isfinite(values).any() else np.nan:.3f}"
        )
        bar.set_postfix({last: shown})
        if on_epoch is not None:
            on_epoch(epoch, _gathered(run, k), logs)
    return _gathered(run, k), logs


def _gathered(states, k: int):
    """The K members' states, whole on this process. Several processes gather the padded arrays
    and drop the padding on the host: slicing an array spread over processes would be one more
    program with collectives, whose order could differ between processes."""
    if distributed.process_count() == 1:
        return _unpad(states, k)
    return jax.tree.map(lambda a: a[:k], to_host(states))


def fit(
    graphdef,
    state: TrainState,
    train: Tuple,
    test: Tuple,
    n_epochs: int,
    settings: Settings = Settings(strategy="map"),
    *,
    logs: dict | None = None,
    on_epoch: Callable | None = None,
    **loop,
):
    """One run: `fit_sweep` of one member (its compiled program has no member axis). `logs` are
    those of epochs already run; `on_epoch(epoch, state, logs)`. Returns (state, logs)."""
    hook = None if on_epoch is None else lambda e, states, logs: on_epoch(e, unstack(states, 0), logs[0])
    # fit_sweep's logs are a list; fit's `logs` names one member's
    states, logs = fit_sweep(  # pyright: ignore[reportAssignmentType]
        graphdef,
        stack([state]),
        train,
        test,
        n_epochs,
        settings,
        logs=None if logs is None else [logs],
        on_epoch=hook,
        **loop,
    )
    return unstack(states, 0), logs[0]  # fit_sweep returns a list  # pyright: ignore[reportOptionalSubscript]


@dataclasses.dataclass
class SweepResult:
    members: List[Tuple[float, int]]  # (lr, seed) per member
    logs: List[dict]
    graphdef: nnx.GraphDef
    state: TrainState  # stacked along the members
    strategy: str
    seconds: float
    n_devices: int  # devices the sweep axis was split over (1: not sharded)

    @property
    def diverged_at_epoch(self) -> List[int | None]:
        return [divergence_epoch(logs) for logs in self.logs]

    def model(self, i: int) -> nnx.Module:
        """Member i's trained network."""
        return nnx.merge(self.graphdef, unstack(self.state.params, i))


def sweep(
    network: str = "mlp",
    net_config: NetworkConfiguration = NetworkConfiguration(),
    dataset="digits",
    *,
    lrs: Sequence[float] = (presets.DEFAULT_LR,),
    seeds: Sequence[int] = (presets.SEED,),
    members: Sequence[Tuple[float, int]] | None = None,
    pair: bool = False,
    n_epochs: int = 5,
    settings: Settings | None = None,
    activation: str = presets.ACTIVATION,
    conv_impl: str | None = None,
    devices: Sequence | None = None,
    progress: bool = True,
    on_epoch: Callable | None = None,
) -> SweepResult:
    """Train every (lr, seed) configuration of one network at once, as one compiled program.

    The members are `members` if given, else the cross product of `lrs` and `seeds` (lr-major), or
    `lrs` and `seeds` element-wise with `pair=True`. `dataset` is what `data.load` takes (a name,
    a folder, arrays, a Dataset). Member i's logs equal those of `fit` on the same configuration
    alone (seed = the network's initialisation seed).
    """
    members = (
        [(check_lr(lr), check_seed(s)) for lr, s in members]
        if members is not None
        else members_of(lrs, seeds, pair)
    )
    settings = settings or Settings()
    check_n_epochs(n_epochs)
    ds = load_data(dataset)
    distributed.check_same_data(fingerprint(ds.train, ds.test))
    graphdef, states, _ = init_sweep(
        network,
        ds.image_shape,
        net_config,
        members,
        activation,
        conv_impl=conv_impl,
        optimizer=settings.optimizer,
    )
    start = time.perf_counter()
    states, logs = fit_sweep(
        graphdef,
        states,
        ds.train,
        ds.test,
        n_epochs,
        settings,
        devices=devices,
        progress=progress,
        on_epoch=on_epoch,
        labels=[f"lr {lr:g}, seed {s}" for lr, s in members],
        desc=f"{network} x{len(members)} ({settings.strategy})",
    )
    mesh = placement(len(members), devices).mesh
    return SweepResult(
        list(members),
        logs,
        graphdef,  # built by init_sweep  # pyright: ignore[reportArgumentType]
        states,
        settings.strategy,
        time.perf_counter() - start,
        1 if mesh is None else mesh.size,
    )
