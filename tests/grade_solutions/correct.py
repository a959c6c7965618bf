"""A correct solution to the homework, as a student hands it in (tests of `jaxtrainer grade`)."""

import copy
import math
import os
import random
from typing import NamedTuple, Tuple

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

# The solution file's seeds: do not change them.
random.seed(197331)
np.random.seed(197331)
torch.manual_seed(197331)


class NetworkConfiguration(NamedTuple):
    n_channels: Tuple[int, ...] = (16, 32, 48)
    kernel_sizes: Tuple[int, ...] = (3, 3, 3)
    strides: Tuple[int, ...] = (1, 1, 1)
    dense_hiddens: Tuple[int, ...] = (256, 256)


class Trainer:
    def __init__(
        self,
        network_type: str = "mlp",
        net_config: NetworkConfiguration = NetworkConfiguration(),
        lr: float = 0.001,
        batch_size: int = 128,
        activation_name: str = "relu",
    ):
        self.lr = lr
        self.batch_size = batch_size
        self.train, self.test = self.load_dataset()
        activation = self.create_activation_function(activation_name)
        input_shape = self.train[0].shape[1:]
        if network_type == "mlp":
            self.network = self.create_mlp(math.prod(input_shape), net_config, activation)
        else:
            self.network = self.create_cnn(input_shape[0], net_config, activation)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)
        self.train_logs = {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}

    @staticmethod
    def load_dataset():
        def read(split):
            folder = os.path.join("rotated_fashion_mnist", split)
            names = sorted(os.listdir(folder), key=lambda name: int(name.split("_")[0]))
            images = np.stack([np.asarray(Image.open(os.path.join(folder, n)).convert("L")) for n in names])
            angles = np.array([float(n.split("_")[1][:-4]) for n in names])
            X = torch.tensor((images / 255.0 - 0.5) / 0.5, dtype=torch.float32)[:, None]
            return X, angles

        X_train, a_train = read("train")
        X_test, a_test = read("test")
        mean, std = a_train.mean(), a_train.std(ddof=1)
        y_train = torch.tensor((a_train - mean) / std, dtype=torch.float32)[:, None]
        y_test = torch.tensor((a_test - mean) / std, dtype=torch.float32)[:, None]
        return (X_train, y_train), (X_test, y_test)

    @staticmethod
    def create_mlp(input_dim: int, net_config: NetworkConfiguration, activation: nn.Module) -> nn.Module:
        layers = [nn.Flatten()]
        for hidden in net_config.dense_hiddens:
            layers += [nn.Linear(input_dim, hidden), copy.deepcopy(activation)]
            input_dim = hidden
        layers.append(nn.Linear(input_dim, 1))
        return nn.Sequential(*layers)

    @staticmethod
    def create_cnn(in_channels: int, net_config: NetworkConfiguration, activation: nn.Module) -> nn.Module:
        layers = []
        last = len(net_config.n_channels) - 1
        for i, (channels, kernel, stride) in enumerate(
            zip(net_config.n_channels, net_config.kernel_sizes, net_config.strides)
        ):
            layers.append(nn.Conv2d(in_channels, channels, kernel_size=kernel, stride=stride))
            layers.append(copy.deepcopy(activation))
            if i < last:
                layers.append(nn.MaxPool2d(kernel_size=2))
            in_channels = channels
        layers += [nn.AdaptiveMaxPool2d((4, 4)), nn.Flatten()]
        features = 16 * net_config.n_channels[-1]
        for hidden in net_config.dense_hiddens:
            layers += [nn.Linear(features, hidden), copy.deepcopy(activation)]
            features = hidden
        layers.append(nn.Linear(features, 1))
        return nn.Sequential(*layers)

    @staticmethod
    def create_activation_function(activation_str: str) -> nn.Module:
        return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation_str.lower()]()

    def compute_loss_and_mae(self, X: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        prediction = self.network(X)
        return F.mse_loss(prediction, y), F.l1_loss(prediction, y)

    def training_step(
        self, X_batch: torch.Tensor, y_batch: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad()
        loss, mae = self.compute_loss_and_mae(X_batch, y_batch)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), mae.detach()

    def log_metrics(self, X_train, y_train, X_test, y_test) -> None:
        for split, (X, y) in (("train", (X_train, y_train)), ("test", (X_test, y_test))):
            loss, mae = self.evaluate(X, y)
            self.train_logs[f"{split}_loss"].append(loss.item())
            self.train_logs[f"{split}_mae"].append(mae.item())

    def train_loop(self, n_epochs: int) -> dict:
        X_train, y_train = self.train
        X_test, y_test = self.test
        n_batches = math.ceil(len(X_train) / self.batch_size)
        self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)
        for _ in range(n_epochs):
            for batch in range(n_batches):
                rows = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
                self.training_step(X_train[rows], y_train[rows])
            self.log_metrics(X_train[:2000], y_train[:2000], X_test, y_test)
        return self.train_logs

    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.compute_loss_and_mae(X, y)

    def test_equivariance(self):
        from functools import partial

        test_im = self.train[0][0] / 2 + 0.5
        conv = nn.Conv2d(in_channels=1, out_channels=1, kernel_size=3)
        conv.weight.data.fill_(1.0 / 9)
        conv.bias.data.zero_()
        model = nn.Sequential(conv, nn.ReLU(), conv, nn.ReLU())
        shift = partial(torch.roll, shifts=(5, 5), dims=(1, 2))
        rotation = partial(torch.rot90, k=1, dims=(1, 2))
        with torch.no_grad():
            output = model(test_im)
            shifted = model(shift(test_im))
            rotated = model(rotation(test_im))
        figure, axes = plt.subplots(2, 2)
        axes[0, 0].imshow(test_im[0])
        axes[0, 1].imshow(output[0])
        axes[1, 0].imshow((shift(output) - shifted).abs()[0])
        axes[1, 1].imshow((rotation(output) - rotated).abs()[0])
        figure.savefig("equivariance.png")
        plt.close(figure)
