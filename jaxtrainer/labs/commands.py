"""The labs' command lines: each lab's defaults and options, kept apart from the labs themselves so
that `jaxtrainer --help` and `jaxtrainer lab NAME --help` never import JAX. A lab's module is
imported only when it runs: its docstring is its command's description (read from the source
here), its `run_from_args` runs it.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Callable

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


def _bayesnet_options(p) -> None:
    p.add_argument(
        "--decimals",
        type=int,
        default=5,
        choices=range(1, 11),
        metavar="N",
        help="decimals shown (1-10, default 5)",
    )


def _logreg_options(p) -> None:
    p.add_argument("--lrs", type=float, nargs="+", default=list(LOGREG_LRS), help="default: 0.1 0.01 0.001")
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", default=list(LOGREG_BATCH_SIZES), help="default: 1 20 200 1000"
    )
    p.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))


def _mlp_options(p) -> None:
    p.add_argument("--depths", type=int, nargs="+", default=list(MLP_DEPTHS), help="default: 1 3 5")
    p.add_argument(
        "--widths", type=int, nargs="+", default=list(MLP_WIDTHS), help="default: 25 100 300 500 1000"
    )
    p.add_argument(
        "--sgd-lrs",
        type=float,
        nargs="*",
        default=list(MLP_LRS["sgd"]),
        help="SGD's learning rates (default: 0.1 0.01; none: no SGD)",
    )
    p.add_argument(
        "--adam-lrs",
        type=float,
        nargs="*",
        default=list(MLP_LRS["adam"]),
        help="Adam's learning rates (default: 0.001 0.0001; none: no Adam)",
    )
    p.add_argument("--batch-size", type=int, default=MLP_BATCH_SIZE)


def _mnist_options(p) -> None:
    p.add_argument("--networks", nargs="+", choices=tuple(MNIST_NETWORKS), default=list(MNIST_NETWORKS))
    p.add_argument("--lr", type=float, default=MNIST_LR)
    p.add_argument("--batch-size", type=int, default=MNIST_BATCH_SIZE)


@dataclasses.dataclass(frozen=True)
class Lab:
    """One `jaxtrainer lab` subcommand: the module that runs it, its help, its own options and the data
    defaults of a classification lab."""

    module: str  # jaxtrainer.labs.<module>
    help: str
    options: Callable  # adds the lab's own options to its parser
    dataset: str | None = None  # a classification lab's default --dataset; None: Lab A, no data
    epochs: int | None = None  # a classification lab's default --epochs

    @property
    def description(self) -> str:
        """The lab module's docstring, read from its source: importing the module would load JAX."""
        with open(os.path.join(os.path.dirname(__file__), f"{self.module}.py"), encoding="utf-8") as f:
            return ast.get_docstring(ast.parse(f.read()))


LABS = {  # the `jaxtrainer lab` subcommands
    "bayesnet": Lab(
        "student_network",
        "Lab A: exact inference with interventions in a Bayesian network",
        _bayesnet_options,
    ),
    "logreg": Lab(
        "logreg",
        "Lab B: multinomial logistic regression with gradients by hand",
        _logreg_options,
        "fashion_mnist",
        5,
    ),
    "mlp": Lab(
        "mlp",
        "Lab C: an MLP with backpropagation by hand, SGD and Adam grids",
        _mlp_options,
        "fashion_mnist",
        5,
    ),
    "mnist": Lab("mnist", "Lab D: MNIST by hand, linear and deep classifiers", _mnist_options, "mnist", 10),
}
