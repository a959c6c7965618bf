"""A sweep's members: their training states stacked along a leading "sweep" axis, each the state a
solo run of the same (lr, seed) starts from."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from ..errors import InputError
from ..models import build_network
from ..spec import Spec
from ..train import TrainState, init_state


def stack(states: Sequence) -> TrainState:
    """Trees of one structure as one tree whose leaves gain a leading member axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def unstack(states, i: int):
    """Member `i` of stacked `states` (any tree stacked by `stack`)."""
    return jax.tree.map(lambda a: a[i], states)


def sweep_size(states) -> int:
    """The members in stacked `states`: the leading axis of its leaves."""
    return int(jax.tree.leaves(states)[0].shape[0])


def init_sweep(spec: Spec, input_shape):
    """(graphdef, stacked state, one model): member i is the spec's network drawn from seed_i, with
    the optimizer that will step it (`spec.settings()`) at lr_i."""
    settings, built = spec.settings(), []
    for lr, seed in spec.members:
        model = build_network(
            spec.network, input_shape, spec.net_config, spec.activation, seed=seed, conv_impl=spec.conv_impl
        )
        built.append((model, *init_state(model, lr, settings)))
    graphdef = built[0][1]
    if any(g != graphdef for _, g, _ in built):
        raise InputError("sweep members must share one architecture")
    return graphdef, stack([state for _, _, state in built]), built[-1][0]
