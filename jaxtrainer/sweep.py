"""Many configurations of one architecture (learning rates, seeds) trained as one compiled program.

The K members' parameters and Adam states are stacked along a leading "sweep" axis; the learning
rate is part of each member's optimizer state (`optax.inject_hyperparams`), so it is data: a sweep
over new values reuses the compiled program. Each epoch is one jitted call that runs every member's
epoch (train.py's `_epoch` and `_evaluate`, unchanged) either

- `"vmap"`: batched over the members, one wide program (pays where one small model leaves the
  device idle: GPU/TPU), or
- `"map"`: `lax.map`, the members one after another inside the same program (CPU: one model
  already fills the cores, and the batched matmuls vmap makes are slower there than the same
  matmuls one member at a time: measured in docs/performance.md, "Sweeps").

`strategy="auto"` picks per backend (`auto_strategy`). Members stay independent: a
member whose parameters hold NaN or Inf stops training (its epoch becomes a no-op logged as NaN,
exactly as `train.fit` logs it) while the others go on; there is no global check that stops all.

With several devices visible the sweep axis is split over a 1-D `Mesh` ("sweep") with `shard_map`:
each device runs its share of members locally (no communication), the data replicated. A K that
the device count does not divide is padded with copies of member 0, whose results are dropped;
the number of devices used is the fewest that still gives the fewest members per device
(K=3 on 4 devices uses 3 devices, no padding; K=5 uses 3 devices, padded to 6).
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

from .config import NetworkConfiguration, check_batch_size, check_lr, check_n_epochs
from .tasks import REGRESSION, log_keys
from .train import (
    EVAL_CHUNK,
    TrainState,
    _epoch,
    _evaluate,
    autodiff,
    divergence_epoch,
    init_state,
    to_device,
)

STRATEGIES = ("auto", "vmap", "map")
AXIS = "sweep"


# -- which strategy ------------------------------------------------------------------------------
def auto_strategy(backend: str) -> str:
    """vmap on accelerators, where one small model leaves the device idle; map on CPU, where one
    model already fills the cores. Measured on the 2-core machine (60k images, K=3,
    docs/performance.md, "Sweeps"): the CNN's epoch costs 4.00x one run's by vmap, 2.96x by map;
    the MLP's 3.67x against 3.07x (K=8: 8.30x against 7.92x)."""
    return "map" if backend == "cpu" else "vmap"


def resolve_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy != "auto":
        return strategy
    return auto_strategy(jax.default_backend())


# -- members, stacked ----------------------------------------------------------------------------
def members_of(lrs: Sequence[float], seeds: Sequence[int], pair: bool = False) -> List[Tuple[float, int]]:
    """(lr, seed) of each member: the cross product (lr-major), or element-wise with `pair=True`."""
    lrs, seeds = [check_lr(lr) for lr in lrs], [int(s) for s in seeds]
    if not lrs or not seeds:
        raise ValueError("a sweep needs at least one learning rate and one seed")
    if pair:
        if len(lrs) != len(seeds):
            raise ValueError(
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
    Adam at lr_i, exactly the state a solo run of that configuration starts from."""
    from .models import build_network

    graphdef, states, model = None, [], None
    for lr, seed in members:
        model = build_network(network, input_shape, net_config, activation, seed=seed, conv_impl=conv_impl)
        g, state = init_state(model, lr, optimizer)
        if graphdef is not None and g != graphdef:
            raise ValueError("sweep members must share one architecture")
        graphdef = g
        states.append(state)
    return graphdef, stack(states), model


# -- the compiled programs -----------------------------------------------------------------------
def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree)]))


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


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "batch_size", "task", "optimizer", "chunk", "strategy", "mesh", "gradient"),
)
def sweep_epoch(
    graphdef,
    states: TrainState,
    X,
    y,
    eval_sets: Sequence = (),
    *,
    batch_size: int,
    task=REGRESSION,
    optimizer=optax.adam,
    chunk=EVAL_CHUNK,
    strategy: str = "vmap",
    mesh: Mesh | None = None,
    gradient=autodiff,
):
    """One epoch of every member and the evaluations that log it, as one compiled program.

    A member whose parameters are not all finite is left as it is and its evaluations are NaN (what
    `train.fit` logs for a diverged run, without computing it); the others are unaffected.
    Returns the new stacked state and, per `(X, y)` in `eval_sets`, metrics of shape (K,).
    """

    def member(state, data):
        X, y, eval_sets = data

        def run(state):
            state, _ = _epoch(graphdef, state, X, y, batch_size, task, optimizer, gradient=gradient)
            return state, [_evaluate(graphdef, state.params, ex, ey, task, chunk) for ex, ey in eval_sets]

        def skip(state):
            nan = {k: jnp.full((), jnp.nan, jnp.float32) for k in task.metric_names}
            return state, [dict(nan) for _ in eval_sets]

        return lax.cond(_all_finite(state.params), run, skip, state)

    return _over_members(member, states, (X, y, list(eval_sets)), strategy, mesh)


@functools.partial(jax.jit, static_argnames=("graphdef", "task", "chunk", "strategy", "mesh"))
def sweep_evaluate(
    graphdef,
    params,
    eval_sets: Sequence,
    *,
    task=REGRESSION,
    chunk=EVAL_CHUNK,
    strategy: str = "vmap",
    mesh: Mesh | None = None,
):
    """Per `(X, y)` in `eval_sets`, every member's mean metrics, shape (K,)."""

    def member(p, eval_sets):
        return [_evaluate(graphdef, p, ex, ey, task, chunk) for ex, ey in eval_sets]

    return _over_members(member, params, list(eval_sets), strategy, mesh)


# -- devices ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Placement:
    mesh: Mesh | None
    padded: int  # K after padding (a multiple of the devices used)

    def put(self, tree, sharded: bool):
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, P(AXIS) if sharded else P()))


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
    *,
    batch_size: int,
    task=REGRESSION,
    optimizer=optax.adam,
    gradient=autodiff,
    train_eval_size: int = 2000,
    names: Tuple[str, str] = ("train", "test"),
    strategy: str = "auto",
    devices: Sequence | None = None,
    progress: bool = True,
    on_epoch: Callable | None = None,
    logs: List[dict] | None = None,
    labels: Sequence[str] | None = None,
    desc: str = "sweep",
):
    """`train.fit` for K stacked members: each member's logs are those `fit` writes for it alone
    (n_epochs + 1 entries per list, epoch 0 before training, keys `log_keys(task, names)`).
    `logs` (one dict per member) are those of epochs already run; `on_epoch(epoch, states, logs)`
    runs after each epoch. Returns (stacked states, list of logs)."""
    from tqdm.auto import tqdm

    k = sweep_size(states)
    strategy = resolve_strategy(strategy)
    place = placement(k, devices)
    lrs = np.asarray(states.opt_state.hyperparams["learning_rate"])
    labels = list(labels) if labels is not None else [f"member {i} (lr {lrs[i]:g})" for i in range(k)]
    X, y = to_device(*train, task)
    test = to_device(*test, task)
    data = place.put((X, y, (X[:train_eval_size], y[:train_eval_size]), test), sharded=False)
    X, y, eval_sets = data[0], data[1], data[2:]
    run = place.put(_pad(states, place.padded), sharded=True)

    def log(evals):
        host = jax.device_get(evals)
        for i in range(k):
            for prefix, metrics in zip(names, host):
                for name, values in metrics.items():
                    logs[i][f"{prefix}_{name}"].append(float(values[i]))

    if logs is None:
        logs = [{key: [] for key in log_keys(task, names)} for _ in range(k)]
        log(sweep_evaluate(graphdef, run.params, eval_sets, task=task, strategy=strategy, mesh=place.mesh))
    done = {len(member[f"{names[0]}_loss"]) - 1 for member in logs}
    if len(done) != 1:
        raise ValueError(f"the members' logs have different lengths: {sorted(done)}")
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
    for epoch in bar:
        run, evals = sweep_epoch(
            graphdef,
            run,
            X,
            y,
            eval_sets,
            batch_size=batch_size,
            task=task,
            optimizer=optimizer,
            strategy=strategy,
            mesh=place.mesh,
            gradient=gradient,
        )
        log(evals)
        for i in range(k):
            if divergence_epoch(logs[i]) == epoch:
                bar.write(
                    f"diverged: {labels[i]}: the loss is not finite after "
                    f"epoch {epoch}; its remaining epochs are logged as NaN, the other "
                    "members go on",
                    file=sys.stderr,
                )
        last = list(logs[0])[-1]  # test_mae for the homework, the held-out accuracy for a classifier
        values = [m[last][-1] for m in logs]
        best = np.nanmax if last.endswith("accuracy") else np.nanmin
        bar.set_postfix(
            {
                last: "/".join(f"{v:.3f}" for v in values)
                if k <= 4
                else f"best {best(values) if np.isfinite(values).any() else np.nan:.3f}"
            }
        )
        if on_epoch is not None:
            on_epoch(epoch, _unpad(run, k), logs)
    return _unpad(run, k), logs


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
    lrs: Sequence[float] = (1e-3,),
    seeds: Sequence[int] = (197331,),
    members: Sequence[Tuple[float, int]] | None = None,
    pair: bool = False,
    n_epochs: int = 5,
    batch_size: int = 128,
    activation: str = "relu",
    conv_impl: str | None = None,
    strategy: str = "auto",
    devices: Sequence | None = None,
    train_eval_size: int = 2000,
    progress: bool = True,
    on_epoch: Callable | None = None,
) -> SweepResult:
    """Train every (lr, seed) configuration of one network at once, as one compiled program.

    The members are `members` if given, else the cross product of `lrs` and `seeds` (lr-major), or
    `lrs` and `seeds` element-wise with `pair=True`. `dataset` is what `data.load` takes (a name,
    a folder, arrays, a Dataset). Member i's logs equal those of `train.fit` on the same
    configuration alone (seed = the network's initialisation seed).
    """
    from . import data

    members = (
        [(check_lr(lr), int(s)) for lr, s in members] if members is not None else members_of(lrs, seeds, pair)
    )
    check_batch_size(batch_size)
    check_n_epochs(n_epochs)
    ds = data.load(dataset)
    graphdef, states, _ = init_sweep(
        network, ds.image_shape, net_config, members, activation, conv_impl=conv_impl
    )
    strategy = resolve_strategy(strategy)
    start = time.perf_counter()
    states, logs = fit_sweep(
        graphdef,
        states,
        ds.train,
        ds.test,
        n_epochs,
        batch_size=batch_size,
        train_eval_size=train_eval_size,
        strategy=strategy,
        devices=devices,
        progress=progress,
        on_epoch=on_epoch,
        labels=[f"lr {lr:g}, seed {s}" for lr, s in members],
        desc=f"{network} x{len(members)} ({strategy})",
    )
    mesh = placement(len(members), devices).mesh
    return SweepResult(
        list(members),
        logs,
        graphdef,
        states,
        strategy,
        time.perf_counter() - start,
        1 if mesh is None else mesh.size,
    )
