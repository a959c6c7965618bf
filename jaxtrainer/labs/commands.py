"""The labs' command lines: each lab's defaults and options, kept apart from the labs themselves so
that `jaxtrainer --help` and `jaxtrainer lab NAME --help` never import JAX. A lab's module is
imported only when it runs: its docstring is its command's description (read from the source
here), its `run_from_args` runs it.
"""

from __future__ import annotations

import ast
import os
from typing import Callable, NamedTuple

from .. import registry
from ..cli import options

# -- Lab B: logistic regression ---------------------------------------------------------------------
LOGREG_LRS = (0.1, 0.01, 0.001)
LOGREG_BATCH_SIZES = (1, 20, 200, 1000)
OPTIMIZERS = ("sgd", "adam")  # handopt's

# -- Lab C: an MLP by hand ----------------------------------------------------------------------------
MLP_DEPTHS = (1, 3, 5)
MLP_WIDTHS = (25, 100, 300, 500, 1000)
MLP_LRS = {"sgd": (0.1, 0.01), "adam": (1e-3, 1e-4)}
MLP_BATCH_SIZE = 100

# -- Lab D: MNIST by hand -------------------------------------------------------------------------------
MNIST_LR = 0.01
MNIST_BATCH_SIZE = 1
MNIST_HIDDEN = 100
MNIST_NETWORKS = {  # name: (hidden layers, activation, initialisation)
    "linear": ((), "tanh", "glorot"),
    "tanh-glorot": ((MNIST_HIDDEN,), "tanh", "glorot"),
    "relu-kaiming": ((MNIST_HIDDEN,), "relu", "kaiming"),
}


def _add(p, flag: str, default, what: str, **kwargs) -> None:
    """`options.option`; a tuple default lists values to try: the flag is named in the singular, as
    its one-value form elsewhere (`--lr 0.1 0.01`), its `dest` in the plural."""
    if isinstance(default, tuple):
        kwargs = {"dest": flag[2:].replace("-", "_") + "s", "nargs": "+", **kwargs}
        default = list(default)
    options.option(p, flag, default, what, **kwargs)


def _bayesnet_options(p) -> None:
    _add(p, "--decimals", 5, "decimals shown, 1 to 10", type=int, choices=range(1, 11), metavar="N")


def _logreg_options(p) -> None:
    _add(p, "--lr", LOGREG_LRS, "learning rates", type=options.lr, metavar="LR")
    _add(p, "--batch-size", LOGREG_BATCH_SIZES, "batch sizes", type=options.batch_size, metavar="BATCH_SIZE")
    _add(p, "--optimizer", OPTIMIZERS, "optimizers, written by hand", choices=OPTIMIZERS)


def _mlp_options(p) -> None:
    _add(p, "--depth", MLP_DEPTHS, "hidden layers", type=options.int_at_least(0), metavar="DEPTH")
    _add(p, "--width", MLP_WIDTHS, "hidden units per layer", type=options.int_at_least(1), metavar="WIDTH")
    for name, shown in (("sgd", "SGD"), ("adam", "Adam")):
        what = f"{shown}'s learning rates; none: no {shown}"
        _add(p, f"--{name}-lr", MLP_LRS[name], what, type=options.lr, metavar="LR", nargs="*")
    _add(p, "--batch-size", MLP_BATCH_SIZE, "batch size", type=options.batch_size)


def _mnist_options(p) -> None:
    _add(p, "--network", tuple(MNIST_NETWORKS), "networks", choices=tuple(MNIST_NETWORKS))
    _add(p, "--lr", MNIST_LR, "learning rate", type=options.lr)
    _add(p, "--batch-size", MNIST_BATCH_SIZE, "batch size", type=options.batch_size)


class Lab(NamedTuple):
    """One `jaxtrainer lab` subcommand: its registry entry (module under jaxtrainer/labs/, help, a
    classification lab's data defaults) and the function that adds its own options to its parser."""

    module: str
    help: str
    dataset: str | None
    epochs: int | None
    options: Callable

    @property
    def description(self) -> str:
        """The lab module's docstring, read from its source: importing the module would load JAX."""
        with open(os.path.join(os.path.dirname(__file__), f"{self.module}.py"), encoding="utf-8") as f:
            return ast.get_docstring(ast.parse(f.read())) or ""


_OPTIONS = {
    "bayesnet": _bayesnet_options,
    "logreg": _logreg_options,
    "mlp": _mlp_options,
    "mnist": _mnist_options,
}
LABS = {name: Lab(*entry, _OPTIONS[name]) for name, entry in registry.LABS.items()}  # the subcommands
