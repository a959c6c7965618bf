"""The homework's networks, learning rates and seed, written once for every reader."""

from __future__ import annotations

from typing import Dict, NamedTuple

from .config import NetworkConfiguration

SEED = 197331  # the homework seeds numpy, random and torch with it at import time
LRS = (1e-2, 1e-4, 1e-8)  # experiment 1's learning rates
DEFAULT_LR = 1e-3  # the Trainer's default, experiments 2 and 3
BATCH_SIZE = 128
EPOCHS = 50
ACTIVATION = "relu"

MLP = NetworkConfiguration(dense_hiddens=(128, 128))
CNN = NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,))
DEEP_CNN = NetworkConfiguration((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256))
SHALLOW_CNN_28 = NetworkConfiguration((9,), (28,), (1,), (256, 256))  # 28x28 images: 9 channels


def shallow_cnn(channels: int, image_size: int) -> NetworkConfiguration:
    """Experiment 3's shallow CNN: one conv whose kernel is the whole image."""
    return NetworkConfiguration((channels,), (image_size,), (1,), (256, 256))


class Network(NamedTuple):
    """One of the homework's networks: type, layer sizes, and the label its tables and figures show."""

    network_type: str
    net_config: NetworkConfiguration
    label: str


# The four networks of experiments 1-3 (the shallow CNN as matched on 28x28 images).
NETWORKS: Dict[str, Network] = {
    "mlp": Network("mlp", MLP, "MLP (128, 128)"),
    "cnn": Network("cnn", CNN, "CNN (16, 32, 45) k3 + (128,)"),
    "deep_cnn": Network("cnn", DEEP_CNN, "deep CNN (8, 16, 32, 64) k1 + (256, 256)"),
    "shallow_cnn": Network("cnn", SHALLOW_CNN_28, "shallow CNN (9,) k28 + (256, 256)"),
}
