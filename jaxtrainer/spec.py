"""THE run spec: what to train (one member or a sweep's several), one frozen object that travels whole.
The run's identity (what resuming checks), its logs' metadata and the programs' `Settings` derive
from it; the run folder saves it as spec.json."""

from __future__ import annotations

import dataclasses
import itertools
import os
from typing import Any, List, Sequence, Tuple

from . import presets
from .config import (
    NetworkConfiguration,
    check_activation,
    check_batch_size,
    check_lr,
    check_n_epochs,
    check_network_configuration,
    check_network_type,
    check_seed,
)
from .errors import InputError
from .registry import CONV_IMPLS, DEFAULT_OPTIMIZER, OPTIMIZERS, STRATEGIES, choose
from .settings import Settings, optimizer

# Not a run's identity: more epochs may be asked; conv_impl and strategy say how, not what; the data
# is identified by its fingerprint, not where it was read from.
_NOT_IDENTITY = ("epochs", "conv_impl", "strategy", "dataset", "data_dir")


def members_of(lrs: Sequence[float], seeds: Sequence[int], pair: bool = False) -> List[Tuple[float, int]]:
    """(lr, seed) of each member: the cross product (lr-major), or element-wise with `pair=True`."""
    if pair and len(lrs) != len(seeds):
        raise InputError(
            f"paired learning rates and seeds must have one length, got {len(lrs)} "
            f"learning rates and {len(seeds)} seeds"
        )
    return list(zip(lrs, seeds) if pair else itertools.product(lrs, seeds))


@dataclasses.dataclass(frozen=True)
class Spec:
    """One run (or sweep) as asked, every field checked on creation.

    Args:
        optimizer, optimizer_options: an optax name (`registry.OPTIMIZERS`) and its other arguments.
        members: the (lr, seed) pairs trained together, at least one (`members_of` makes them).
        epochs: the epochs in all, those a continued run already holds included.
        dataset, data_dir: what `data.load` takes; where named datasets are (None: $JAXTRAINER_DATA_DIR).
        conv_impl, strategy: "im2col"/"lax"/None (by backend); "vmap"/"map"/"auto" (by backend).
    """

    network: str = "mlp"
    net_config: NetworkConfiguration = NetworkConfiguration()
    activation: str = presets.ACTIVATION
    optimizer: str = DEFAULT_OPTIMIZER
    optimizer_options: Tuple[Tuple[str, Any], ...] = ()
    members: Tuple[Tuple[float, int], ...] = ((presets.DEFAULT_LR, presets.SEED),)
    batch_size: int = presets.BATCH_SIZE
    epochs: int = 5
    dataset: Any = "digits"
    data_dir: str | None = None
    conv_impl: str | None = None
    strategy: str = "auto"

    def __post_init__(self):
        fix = lambda name, value: object.__setattr__(self, name, value)  # frozen
        fix("network", check_network_type(self.network))
        fix("net_config", check_network_configuration(self.net_config))
        fix("activation", check_activation(self.activation))
        choose("optimizer", self.optimizer, OPTIMIZERS)
        fix("optimizer_options", tuple(sorted(dict(self.optimizer_options).items())))
        fix("members", tuple((check_lr(lr), check_seed(seed)) for lr, seed in self.members))
        if not self.members:
            raise InputError("a sweep needs at least one learning rate and one seed")
        fix("batch_size", check_batch_size(self.batch_size))
        fix("epochs", check_n_epochs(self.epochs))
        if self.conv_impl is not None:
            choose("conv implementation", self.conv_impl, CONV_IMPLS)
        choose("strategy", self.strategy, STRATEGIES)

    def replace(self, **changes) -> Spec:
        """A copy with `changes`, checked again as a new Spec."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The spec as JSON (what spec.json holds); a dataset given as arrays is named, not saved."""
        saved = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        dataset = self.dataset
        if isinstance(dataset, os.PathLike):
            dataset = os.fspath(dataset)
        elif dataset is not None and not isinstance(dataset, str):
            dataset = getattr(dataset, "name", type(dataset).__name__)
        return {
            **saved,
            "net_config": self.net_config._asdict(),
            "optimizer_options": dict(self.optimizer_options),
            "members": [{"lr": lr, "seed": seed} for lr, seed in self.members],
            "dataset": dataset,
        }

    def identity(self, data_id: dict) -> dict:
        """What makes two runs the same run, with `data_id` the data's fingerprint; the members as two
        lists, so that a refusal names the one that differs ("lrs: saved [0.001], now [0.01]")."""
        same = {k: v for k, v in self.as_dict().items() if k not in _NOT_IDENTITY}
        lrs, seeds = ([member[i] for member in self.members] for i in (0, 1))
        return {**same, "members": {"lrs": lrs, "seeds": seeds}, "data": data_id}

    def meta(self, ds, parameters: int) -> dict:
        """logs.json's "config": the spec, the data it read and the network's size."""
        sizes = {"n_train": len(ds.X_train), "n_test": len(ds.X_test)}
        return {**self.as_dict(), "dataset_name": ds.name, **sizes, "parameters": parameters}

    def settings(self) -> Settings:
        """The compiled programs' static argument."""
        tx = optimizer(self.optimizer, self.optimizer_options)
        return Settings(batch_size=self.batch_size, strategy=self.strategy, optimizer=tx)
