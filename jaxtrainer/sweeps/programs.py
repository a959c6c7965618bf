"""A sweep's compiled programs: every member's epoch, or evaluation, as one jitted call. "vmap" batches
the members (GPU/TPU: one small model leaves the device idle); "map" runs them in turn with `lax.map`
(CPU: one model fills the cores; docs/performance.md, "Sweeps"). On a mesh, each device runs its
block of members with `shard_map`, the data replicated."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ..settings import Settings
from ..train import TrainState, _evaluate, member_epoch
from .members import sweep_size, unstack

AXIS = "sweep"


def _over_members(fn, states, shared, strategy: str, mesh: Mesh | None):
    """fn(member_state, shared) for each member along the leading axis (each device's block)."""

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
    """One epoch of every member (`train.member_epoch`) as one program; `data` is (X, y, order or None,
    eval_sets). Returns the new stacked state, the per-step metrics and, per set, metrics of shape (K,)."""
    member = lambda state, data: member_epoch(graphdef, state, data, settings)
    return _over_members(member, states, data, settings.strategy, mesh)


@functools.partial(jax.jit, static_argnames=("graphdef", "settings", "mesh"))
def sweep_evaluate(graphdef, params, eval_sets: Sequence, settings: Settings, mesh: Mesh | None = None):
    """Per `(X, y)` in `eval_sets`, every member's mean metrics, shape (K,)."""

    def member(p, eval_sets):
        return [_evaluate(graphdef, p, ex, ey, settings.task, settings.eval_chunk) for ex, ey in eval_sets]

    return _over_members(member, params, list(eval_sets), settings.strategy, mesh)
