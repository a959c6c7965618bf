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


def _listed(values) -> str:
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _bayesnet_options(p) -> None:
    p.add_argument(
        "--decimals",
        type=int,
        default=5,
        choices=range(1, 11),
        metavar="N",
        help="decimals shown, 1 to 10 (default: 5)",
    )


# A flag that lists values to try is named in the singular, as its one-value form elsewhere
# (`--lr 0.1 0.01`); `dest` keeps the labs' plural names.
def _logreg_options(p) -> None:
    p.add_argument(
        "--lr",
        dest="lrs",
        metavar="LR",
        type=options.lr,
        nargs="+",
        default=list(LOGREG_LRS),
        help=f"learning rates (default: {_listed(LOGREG_LRS)})",
    )
    p.add_argument(
        "--batch-size",
        dest="batch_sizes",
        metavar="BATCH_SIZE",
        type=options.batch_size,
        nargs="+",
        default=list(LOGREG_BATCH_SIZES),
        help=f"batch sizes (default: {_listed(LOGREG_BATCH_SIZES)})",
    )
    p.add_argument(
        "--optimizer",
        dest="optimizers",
        nargs="+",
        choices=OPTIMIZERS,
        default=list(OPTIMIZERS),
        help=f"optimizers, written by hand (default: {_listed(OPTIMIZERS)})",
    )


def _mlp_options(p) -> None:
    p.add_argument(
        "--depth",
        dest="depths",
        metavar="DEPTH",
        type=options.checked(int, options.at_least(0)),
        nargs="+",
        default=list(MLP_DEPTHS),
        help=f"hidden layers (default: {_listed(MLP_DEPTHS)})",
    )
    p.add_argument(
        "--width",
        dest="widths",
        metavar="WIDTH",
        type=options.checked(int, options.at_least(1)),
        nargs="+",
        default=list(MLP_WIDTHS),
        help=f"hidden units per layer (default: {_listed(MLP_WIDTHS)})",
    )
    p.add_argument(
        "--sgd-lr",
        dest="sgd_lrs",
        metavar="LR",
        type=options.lr,
        nargs="*",
        default=list(MLP_LRS["sgd"]),
        help=f"SGD's learning rates; none: no SGD (default: {_listed(MLP_LRS['sgd'])})",
    )
    p.add_argument(
        "--adam-lr",
        dest="adam_lrs",
        metavar="LR",
        type=options.lr,
        nargs="*",
        default=list(MLP_LRS["adam"]),
        help=f"Adam's learning rates; none: no Adam (default: {_listed(MLP_LRS['adam'])})",
    )
    p.add_argument(
        "--batch-size",
        type=options.batch_size,
        default=MLP_BATCH_SIZE,
        help=f"batch size (default: {MLP_BATCH_SIZE})",
    )


def _mnist_options(p) -> None:
    p.add_argument(
        "--network",
        dest="networks",
        nargs="+",
        choices=tuple(MNIST_NETWORKS),
        default=list(MNIST_NETWORKS),
        help=f"networks (default: {_listed(MNIST_NETWORKS)})",
    )
    p.add_argument("--lr", type=options.lr, default=MNIST_LR, help=f"learning rate (default: {MNIST_LR:g})")
    p.add_argument(
        "--batch-size",
        type=options.batch_size,
        default=MNIST_BATCH_SIZE,
        help=f"batch size (default: {MNIST_BATCH_SIZE})",
    )


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
