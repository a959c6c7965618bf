"""How a model is trained, as one frozen, hashable object: the static argument of every compiled program
(equal settings share programs whatever the learning rate or seed, which are data)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Tuple

import optax

from . import presets
from .config import check_batch_size
from .gradient import autodiff
from .registry import DEFAULT_OPTIMIZER, OPTIMIZERS, STRATEGIES, choose
from .tasks import REGRESSION, log_keys

VARIANTS = ("tensor", "loader")


@functools.cache
def optimizer(name: str, options: Tuple[Tuple[str, object], ...] = ()) -> Callable:
    """optax's optimizer `name` with `options` fixed, a factory of the learning rate; cached, so equal
    specs give equal `Settings`."""
    factory = getattr(optax, choose("optimizer", name, OPTIMIZERS))
    return functools.partial(factory, **dict(options)) if options else factory


def auto_strategy(backend: str) -> str:
    """vmap on accelerators, where one small model leaves the device idle; map on CPU, where one model
    fills the cores (measured in docs/performance.md)."""
    return "map" if backend == "cpu" else "vmap"


@dataclasses.dataclass(frozen=True)
class Settings:
    """`variant` is the homework's loop: "tensor" logs the first `train_eval_size` training examples
    and the test set before training and after each epoch; "loader" shuffles each epoch and logs
    batch means (the test set's in batches of `test_batch_size`). "auto" `strategy` is resolved here."""

    batch_size: int = presets.BATCH_SIZE
    task: object = REGRESSION
    optimizer: Callable = getattr(optax, DEFAULT_OPTIMIZER)  # a factory of the learning rate
    gradient: Callable = autodiff
    strategy: str = "auto"
    variant: str = "tensor"
    train_eval_size: int = 2000
    test_batch_size: int | None = None
    eval_chunk: int = 1000  # evaluation in chunks, so a large set never holds all its activations
    names: Tuple[str, str] = ("train", "test")  # a lab logs its validation split as "val"

    def __post_init__(self):
        check_batch_size(self.batch_size)
        choose("strategy", self.strategy, STRATEGIES)
        choose("variant", self.variant, VARIANTS)
        for field in ("train_eval_size", "eval_chunk"):
            check_batch_size(getattr(self, field), field)
        if self.test_batch_size is not None:
            check_batch_size(self.test_batch_size, "test_batch_size")
        if self.strategy == "auto":
            import jax

            object.__setattr__(self, "strategy", auto_strategy(jax.default_backend()))
        object.__setattr__(self, "names", tuple(self.names))

    @property
    def log_keys(self) -> Tuple[str, ...]:
        """The logged lists (`tasks.log_keys`)."""
        return log_keys(self.task, self.names)  # task: object holds a Task  # pyright: ignore[reportArgumentType]

    def replace(self, **changes) -> Settings:
        """A copy with `changes`, checked again as new Settings ("auto" resolved anew)."""
        return dataclasses.replace(self, **changes)
