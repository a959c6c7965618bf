"""Where a sweep's members run: with several devices visible (of one process or several, each then
running its share), the sweep axis is split over a 1-D `Mesh`, K padded with copies of member 0
(their results dropped) to a multiple of the devices used (`devices_used`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .. import distributed
from ..distributed import to_host
from .members import sweep_size
from .programs import AXIS


@dataclasses.dataclass(frozen=True)
class Placement:
    """A sweep's devices (`placement` makes it): a 1-D mesh over the members, or None for one device."""

    mesh: Mesh | None
    padded: int  # K after padding (a multiple of the devices used)

    def put(self, tree, sharded: bool):
        """`tree` (the same on every process) split along the members on the mesh, or replicated;
        each process places its own part."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, P(AXIS) if sharded else P())
        if sharding.is_fully_addressable:
            return jax.device_put(tree, sharding)
        host = jax.device_get(tree)
        return jax.tree.map(lambda a: jax.make_array_from_callback(a.shape, sharding, lambda i: a[i]), host)

    def pad(self, states):
        """The K members and copies of member 0 up to `padded`."""
        k = sweep_size(states)
        if self.padded == k:
            return states
        return jax.tree.map(
            lambda a: jnp.concatenate([a, jnp.repeat(a[:1], self.padded - k, axis=0)]), states
        )

    @property
    def n_devices(self) -> int:
        """The devices the members are split over (1: not sharded)."""
        return 1 if self.mesh is None else self.mesh.size


def devices_used(k: int, n_devices: int) -> Tuple[int, int]:
    """(devices, padded K): the fewest devices that still give the fewest members per device, and
    K padded to a multiple of them (K=3 of 4 devices: 3 devices, no padding; K=5: 3, padded to 6)."""
    per_device = math.ceil(k / n_devices)
    n = math.ceil(k / per_device)
    return n, n * per_device


def placement(k: int, devices: Sequence | None = None) -> Placement:
    """Where the K members run: a 1-D mesh over `devices_used` of `devices` (default: all visible),
    or no mesh for one device."""
    devices = list(jax.devices() if devices is None else devices)
    n, padded = devices_used(k, len(devices))
    if n <= 1:
        return Placement(None, k)
    return Placement(Mesh(np.array(devices[:n]), (AXIS,)), padded)


def gathered(states, k: int):
    """The K members' states, whole on this process. Several processes drop the padding on the host:
    slicing an array spread over them would be one more program with collectives, maybe reordered."""
    if distributed.process_count() > 1:
        return jax.tree.map(lambda a: a[:k], to_host(states))
    return states if sweep_size(states) == k else jax.tree.map(lambda a: a[:k], states)
