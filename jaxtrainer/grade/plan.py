"""What `jaxtrainer grade` checks: the check ids in their order, and the networks and settings the
checks build. Read by both sides: the orchestrator (no PyTorch) and the checks that run in each
submission's process (`torch_compat.grade_checks`)."""

from __future__ import annotations

from typing import NamedTuple, Tuple

from jaxtrainer import presets
from jaxtrainer.config import NetworkConfiguration

# Other tools parse these ids: keep the names and the order (issue 16).
CHECK_IDS = (
    "import",
    "structure.mlp",
    "structure.cnn",
    "activation_instances",
    "init",
    "forward",
    "loss_and_mae",
    "training_step",
    "train_loop_logs",
    "equivariance",
)


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
INIT_CASES = (MLP_CASES[0], CNN_CASES[0], CNN_CASES[1])
INIT_SEEDS = (presets.SEED, 0)
FORWARD_BATCH = 4
TOLERANCE = 1e-5  # outputs and losses (the engine matches PyTorch far closer)
# The weights' change over 1-3 steps, relative (see grade_checks._relative_gap): float32 rounding
# gives ~2e-5, the usual mistakes (SGD, an ignored lr, no zero_grad) 0.1 and more.
STEP_TOLERANCE = 1e-3
LOGS_TOLERANCE = 1e-4  # train_loop logs: two epochs of float32 Adam (as tests/test_parity.py)


class TrainingSettings(NamedTuple):
    """The Trainer the training checks build from the submission, on ./rotated_fashion_mnist. The
    learning rate is not the default (1e-3), so that an ignored lr shows."""

    network_type: str = "mlp"
    config: NetworkConfiguration = presets.MLP
    lr: float = presets.LRS[0]
    batch_size: int = presets.BATCH_SIZE
    activation: str = presets.ACTIVATION
    steps: int = 3  # training_step: consecutive batches of step_batch rows
    step_batch: int = 32
    epochs: int = 2  # train_loop_logs


TRAINING = TrainingSettings()
