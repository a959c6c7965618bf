"""What `jaxtrainer grade` asks of a submission and checks: the check ids in their order, the
networks the builders are called for, and the request the sandboxed collector carries out.

Read by both sides of the sandbox boundary, but only as data: the grader builds the request here,
`collector.py` (standalone, inside the sandbox) reads it as JSON, and `torch_compat.grade_checks`
(the grader's process) judges what came back against the same request."""

from __future__ import annotations

import secrets
from typing import NamedTuple, Tuple

import numpy as np

from jaxtrainer import presets
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.registry import ACTIVATIONS, CHECK_IDS  # noqa: F401 (CHECK_IDS: read from here too)

VARIANTS = ("tensor", "loader")  # the rotated Fashion-MNIST year, the SVHN/CIFAR-10 DataLoader year


class Case(NamedTuple):
    """One call of a builder: `create_mlp(C*H*W, config, activation())` or `create_cnn(C, ...)`,
    and the input images (C, H, W) it must take."""

    label: str
    network_type: str
    config: NetworkConfiguration
    input_shape: Tuple[int, int, int]
    activation: str = "ReLU"  # a torch.nn class name; one case passes Tanh to catch a hard-coded ReLU


MLP_CASES = (
    Case("the default configuration", "mlp", NetworkConfiguration(), (1, 28, 28)),
    Case("the MLP (128, 128) on 3x32x32 images, Tanh", "mlp", presets.MLP, (3, 32, 32), "Tanh"),
    Case("one hidden layer of 7", "mlp", NetworkConfiguration(dense_hiddens=(7,)), (1, 28, 28)),
)
CNN_CASES = (
    Case("the default configuration", "cnn", NetworkConfiguration(), (1, 28, 28)),
    Case("kernel sizes (4, 5)", "cnn", NetworkConfiguration((6, 8), (4, 5), (1, 1), (16,)), (1, 28, 28)),
    Case("strides (1, 2)", "cnn", NetworkConfiguration((6, 8), (3, 3), (1, 2), (16,)), (1, 28, 28)),
    Case("the kernel-1 deep CNN", "cnn", presets.DEEP_CNN, (1, 28, 28)),
    Case("the kernel-28 shallow CNN", "cnn", presets.SHALLOW_CNN_28, (1, 28, 28)),
    Case("the CNN (16, 32, 45) on 3x32x32 images, Tanh", "cnn", presets.CNN, (3, 32, 32), "Tanh"),
)
CASES = (*MLP_CASES, *CNN_CASES)
INIT_CASES = (0, 3, 4)  # indices in CASES whose builds are drawn under two seeds
FORWARD_BATCH = 4
# Q1's names: the statement's set {"relu", "tanh", "sigmoid"} (other letter cases are not asked).
ACTIVATION_NAMES = tuple(ACTIVATIONS)
BAD_ACTIVATION = "softplus"
PROBE = tuple(float(v) for v in np.linspace(-6.0, 6.0, 49))  # where ReLU, Tanh and Sigmoid part
TOLERANCE = 1e-5  # outputs and losses, relative to max(1, |reference|)
# The weights' change over 1-3 steps, relative (see grade_checks._relative_gap). Adam's first step
# moves each weight by lr * sign(gradient): where a gradient is ~0 (two terms that nearly cancel),
# float32 rounding picks the sign, and one flipped weight among N gives 2 / sqrt(N) (0.006 for the
# 117k weights here: 1e-3 failed a CI run with its fresh seeds). 0.02 allows ~10 flips; the
# usual mistakes (SGD, an ignored lr, no zero_grad, MAE or MSE + MAE gradients) give 0.3 and more.
STEP_TOLERANCE = 0.02
LOGS_TOLERANCE = 1e-4  # train_loop logs: two epochs of float32 Adam (as tests/test_parity.py)
LOSS_ROWS, EVALUATE_ROWS, EVALUATE_BATCH = 64, 300, 100


class TrainingSettings(NamedTuple):
    """The Trainer the training checks construct: the learning rate is not the default (1e-3), so
    that an ignored lr shows. Its builders are replaced by the collector with a plain network of
    this shape, so that Q4-Q6 are judged whatever Q2-Q3 got wrong."""

    network_type: str = "mlp"
    config: NetworkConfiguration = presets.MLP
    lr: float = presets.LRS[0]
    batch_size: int = presets.BATCH_SIZE
    activation: str = presets.ACTIVATION
    steps: int = 3  # training_step: consecutive batches of step_batch rows
    step_batch: int = 32
    epochs: int = 2  # train_loop_logs


TRAINING = TrainingSettings()


def inputs(seed: int, key: str, shape, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """The inputs of one call, drawn from the run's fresh seed (collector.py draws the same)."""
    rng = np.random.default_rng(seed + sum(map(ord, key)))
    return rng.uniform(low, high, tuple(shape)).astype(np.float32)


def batch(seed: int, name: str, n: int, shape, variant: str) -> Tuple[np.ndarray, np.ndarray]:
    """The rows and float32 targets of one call (collector.py draws the same, with the loader
    year's labels as int64): the loader year's images lean on a pattern in proportion to their
    label, so that the predictions follow the labels and a (B,) against (B, 1) broadcast shows."""
    X = inputs(seed, f"{name}-x", (n, *shape))
    if variant == "tensor":
        return X, inputs(seed, f"{name}-y", (n, 1), -2.0, 2.0)
    y = np.random.default_rng(seed + sum(map(ord, f"{name}-y"))).integers(0, 10, n)
    lean = ((y - 4.5) / 4.5).astype(np.float32).reshape(n, 1, 1, 1)
    return (0.1 * X + lean * inputs(seed, "pattern", shape)).astype(np.float32), y.astype(np.float32)


def request(variant: str | None, threads: int, seed: int | None = None) -> dict:
    """A fresh request: a new seed per run, so no submission can know its inputs in advance."""
    seed = secrets.randbelow(2**31) if seed is None else seed
    return {
        "seed": seed,
        "variant": variant or "auto",
        "threads": threads,
        "probe": list(PROBE),
        "activation_names": list(ACTIVATION_NAMES),
        "bad_activation": BAD_ACTIVATION,
        "forward_batch": FORWARD_BATCH,
        "cases": [
            {
                "label": case.label,
                "network_type": case.network_type,
                "config": {k: list(v) for k, v in case.config._asdict().items()},
                "input_shape": list(case.input_shape),
                "activation": case.activation,
                "seeds": [seed % 100_000 + k, seed % 100_000 + 1000 + k]
                if k in INIT_CASES
                else [seed % 100_000 + k],
            }
            for k, case in enumerate(CASES)
        ],
        "training": {
            **{k: v for k, v in TRAINING._asdict().items() if k != "config"},
            "config": {k: list(v) for k, v in TRAINING.config._asdict().items()},
            "network_seed": seed % 100_000 + 7,
        },
        "loss_rows": LOSS_ROWS,
        "evaluate_rows": EVALUATE_ROWS,
        "evaluate_batch": EVALUATE_BATCH,
    }
