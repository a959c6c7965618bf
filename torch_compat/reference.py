"""The homework's ``Trainer`` in plain, eager PyTorch, from the statement: the baseline of the parity
tests and benchmarks, independent of the JAX engine (tensor variant only, data always passed in).
Run as a file (not with -m, which would load JAX), it is ``jaxtrainer bench``'s PyTorch worker.
"""

import argparse
import copy
import json
import math
import os
import random
import time
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from jaxtrainer.bench import peak_rss_mb  # numpy and the stdlib, as config and registry: no JAX here
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.registry import ACTIVATIONS

_ACTIVATIONS = {name: getattr(nn, cls) for name, cls in ACTIVATIONS.items()}


def set_threads() -> int:
    """Let torch use every core this process may run on, so the baseline is not handicapped in
    benchmarks; returns that number (macOS and Windows have no affinity query: every core)."""
    n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(n_threads)
    return n_threads


def _dense_head(layers: list, in_features: int, dense_hiddens, activation: nn.Module) -> nn.Sequential:
    """Append the dense part shared by the MLP and the CNN and wrap everything in a Sequential."""
    for hidden in dense_hiddens:
        # A fresh copy per position: children() lists a shared module only once (SPEC).
        layers += [nn.Linear(in_features, hidden), copy.deepcopy(activation)]
        in_features = hidden
    layers.append(nn.Linear(in_features, 1))
    return nn.Sequential(*layers)


def _affine_warp(image: torch.Tensor, theta) -> torch.Tensor:
    """Warp a (1, C, H, W) batch with a 2x3 affine matrix in normalised coordinates, zero fill."""
    theta = torch.tensor(theta, dtype=image.dtype)[None]
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move the content dy pixels down and dx pixels right (a pixel is 2/size normalised)."""
    height, width = image.shape[-2:]
    return _affine_warp(image, [[1.0, 0.0, -2.0 * dx / width], [0.0, 1.0, -2.0 * dy / height]])


def _rotate90(image: torch.Tensor) -> torch.Tensor:
    """Rotate a square image by 90 degrees about its centre; exact entries keep samples on pixel centres."""
    return _affine_warp(image, [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])


class Trainer:
    """The homework's Trainer as the statement describes it, in eager PyTorch."""

    def __init__(
        self,
        network_type: str = "mlp",
        net_config: NetworkConfiguration = NetworkConfiguration(),
        lr: float = 0.001,
        batch_size: int = 128,
        activation_name: str = "relu",
        *,
        dataset=None,
        seed: int = 197331,
        progress: bool = True,
        device: str = "cpu",
    ):
        """The homework's constructor, with the data passed in.

        Args:
            network_type: "mlp" or "cnn".
            net_config: the layer sizes.
            lr: Adam's learning rate.
            batch_size: examples per training step.
            activation_name: "relu", "tanh" or "sigmoid" (any case).
            dataset: ``((X_train, y_train), (X_test, y_test))``, X (N, C, H, W), y (N, 1); required.
            seed: seeds random, numpy and torch, as the homework's solution file does.
            progress: show a tqdm bar over epochs.
            device: where the network and data live (weights drawn on the CPU: same for a seed).
        """
        if dataset is None:
            raise ValueError(
                "a dataset must be passed as dataset=((X_train, y_train), (X_test, y_test)); "
                "this reference Trainer never downloads or reads folders"
            )
        set_threads()
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        self.lr = lr
        self.batch_size = batch_size
        self.progress = progress
        self.train, self.test = (
            tuple(torch.as_tensor(a, dtype=torch.float32).to(device) for a in split) for split in dataset
        )

        activation = self.create_activation_function(activation_name)
        input_shape = self.train[0].shape[1:]
        if network_type == "mlp":
            self.network = self.create_mlp(math.prod(input_shape), net_config, activation)
        elif network_type == "cnn":
            self.network = self.create_cnn(input_shape[0], net_config, activation)
        else:
            raise ValueError(f"network_type must be 'mlp' or 'cnn', got {network_type!r}")
        self.network.to(device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)
        self.train_logs = {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}

    @staticmethod
    def create_mlp(input_dim: int, net_config: NetworkConfiguration, activation: nn.Module) -> nn.Module:
        """Flatten, then the dense layers; only ``dense_hiddens`` is used."""
        return _dense_head([nn.Flatten()], input_dim, net_config.dense_hiddens, activation)

    @staticmethod
    def create_cnn(in_channels: int, net_config: NetworkConfiguration, activation: nn.Module) -> nn.Module:
        """Conv + activation + max-pool blocks, the last pool AdaptiveMaxPool2d((4, 4)) and Flatten, so
        the dense part does not depend on the image size."""
        layers = []
        last = len(net_config.n_channels) - 1
        for i, (channels, kernel, stride) in enumerate(
            zip(net_config.n_channels, net_config.kernel_sizes, net_config.strides)
        ):
            layers += [
                nn.Conv2d(in_channels, channels, kernel_size=kernel, stride=stride),
                copy.deepcopy(activation),
            ]
            layers += (
                [nn.MaxPool2d(kernel_size=2)] if i < last else [nn.AdaptiveMaxPool2d((4, 4)), nn.Flatten()]
            )
            in_channels = channels
        return _dense_head(layers, 16 * net_config.n_channels[-1], net_config.dense_hiddens, activation)

    @staticmethod
    def create_activation_function(activation_str: str) -> nn.Module:
        """Map 'relu', 'tanh' or 'sigmoid' (any case) to a new activation module."""
        key = activation_str.lower() if isinstance(activation_str, str) else None
        if key not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation_str!r}: expected 'relu', 'tanh' or 'sigmoid' (any case)"
            )
        return _ACTIVATIONS[key]()

    def compute_loss_and_mae(self, X: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """MSE and MAE over the batch, both still attached to the autograd graph."""
        prediction = self.network(X)
        return F.mse_loss(prediction, y), F.l1_loss(prediction, y)

    def training_step(
        self, X_batch: torch.Tensor, y_batch: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One Adam update on the batch MSE; returns the batch's loss and MAE from before the update."""
        self.network.train()
        self.optimizer.zero_grad()
        loss, mae = self.compute_loss_and_mae(X_batch, y_batch)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), mae.detach()

    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and MAE over the whole given set in one pass, without gradients."""
        self.network.eval()
        with torch.no_grad():
            return self.compute_loss_and_mae(X, y)

    def log_metrics(self, X_train, y_train, X_test, y_test) -> None:
        """Appends the train and test loss and MAE to `train_logs`."""
        for split, (X, y) in (("train", (X_train, y_train)), ("test", (X_test, y_test))):
            loss, mae = self.evaluate(X, y)
            self.train_logs[f"{split}_loss"].append(loss.item())
            self.train_logs[f"{split}_mae"].append(mae.item())

    def train_loop(self, n_epochs: int) -> dict:
        """Log before training and after every epoch (``n_epochs + 1`` entries per list); an epoch
        walks the training set in order, the last batch shorter."""
        X_train, y_train = self.train
        X_test, y_test = self.test
        n_batches = math.ceil(len(X_train) / self.batch_size)
        self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)
        for _ in tqdm(range(n_epochs), disable=not self.progress):
            for batch in range(n_batches):
                rows = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
                self.training_step(X_train[rows], y_train[rows])
            self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)
        return self.train_logs

    def test_equivariance(self, *, path=None) -> Figure:
        """Show that a random two-layer conv net commutes with a shift (away from the borders) but not
        with a 90-degree rotation; drawn without pyplot, saved to ``path`` (equivariance_torch.png)."""
        image = self.train[0][0].cpu().mean(dim=0, keepdim=True)[None]  # (1, 1, H, W), grey
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
        conv = nn.Conv2d(1, 1, kernel_size=3)

        def model(x):
            return F.relu(conv(F.relu(conv(x))))

        with torch.no_grad():
            output = model(image)
            shift_error = (_shift(output, 5, 5) - model(_shift(image, 5, 5))).abs()
            rotation_error = (_rotate90(output) - model(_rotate90(image))).abs()

        figure = Figure(figsize=(8, 8))
        panels = [
            (image, "image"),
            (output, "model output"),
            (shift_error, "|shift(model(x)) - model(shift(x))|"),
            (rotation_error, "|rot90(model(x)) - model(rot90(x))|"),
        ]
        for axis, (panel, title) in zip(figure.subplots(2, 2).flat, panels):
            shown = axis.imshow(panel[0, 0].numpy(), cmap="gray")
            figure.colorbar(shown, ax=axis)
            axis.set_title(title, fontsize=9)
            axis.axis("off")
        figure.savefig("equivariance_torch.png" if path is None else path)
        return figure


def epoch_seconds(trainer: Trainer, n_epochs: int) -> list:
    """The seconds of each epoch of ``trainer.train_loop(n_epochs)``, between its log_metrics calls
    (whose ``.item()`` waits for the device), logging included."""
    stamps, log = [], trainer.log_metrics

    def timed_log(*args):
        log(*args)
        stamps.append(time.perf_counter())

    trainer.log_metrics = timed_log  # a timed wrapper  # pyright: ignore[reportAttributeAccessIssue]
    trainer.train_loop(n_epochs)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main(argv=None) -> int:
    """One benchmark worker: a run per learning rate, one after another, on ``--data`` (an .npz), on
    the GPU when there is one; prints one JSON line: each run's epoch seconds, device, peak RSS."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--data", required=True)
    p.add_argument("--network-type", choices=("mlp", "cnn"), required=True)
    p.add_argument("--net-config", required=True, help="NetworkConfiguration's four fields as JSON lists")
    p.add_argument("--lrs", type=float, nargs="+", required=True)
    p.add_argument("--epochs", type=int, required=True)
    args = p.parse_args(argv)
    with np.load(args.data) as arrays:
        dataset = ((arrays["X_train"], arrays["y_train"]), (arrays["X_test"], arrays["y_test"]))
    net_config = NetworkConfiguration(*(tuple(field) for field in json.loads(args.net_config)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = [
        epoch_seconds(
            Trainer(args.network_type, net_config, lr, dataset=dataset, progress=False, device=device),
            args.epochs,
        )
        for lr in args.lrs
    ]
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(json.dumps({"runs": runs, "device": name, "peak_rss_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
