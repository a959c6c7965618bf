"""Every name a user can choose, once, without importing JAX: the CLI's `choices=` and the engine's
checks both read them here, so adding a network type, an activation or an optimizer is one line.

Optimizers are optax's own, by name: the engine resolves one with `getattr(optax, name)` and trains
it with its learning rate as data (`optax.inject_hyperparams`), so each must take `learning_rate`.
"""

from __future__ import annotations

from .errors import InputError

NETWORK_TYPES = ("mlp", "cnn")
ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}  # any case: PyTorch's class name
CONV_IMPLS = ("im2col", "lax")
STRATEGIES = ("auto", "vmap", "map")
OPTIMIZERS = (
    "adam",  # the homework's, the default
    "sgd",
    "adamw",
    "rmsprop",
    "adagrad",
    "adamax",
    "nadam",
    "radam",
    "lamb",
    "lion",
    "adabelief",
    "yogi",
    "amsgrad",
    "novograd",
)
DEFAULT_OPTIMIZER = OPTIMIZERS[0]

# The grader's checks in their order. Other tools parse these ids: keep the names and their order
# (new ids are only ever inserted).
CHECK_IDS = (
    "import",
    "activation_function",
    "structure.mlp",
    "structure.cnn",
    "activation_instances",
    "init",
    "forward",
    "loss_and_mae",
    "training_step",
    "evaluate",
    "train_loop_logs",
    "equivariance",
)


def choose(what: str, name, allowed, note: str = "") -> str:
    """`name` if it is one of `allowed`, else one line naming it and the choices."""
    if not isinstance(name, str) or name not in allowed:
        raise InputError(f"{what} must be one of {tuple(allowed)}{note}, got {name!r}")
    return name
