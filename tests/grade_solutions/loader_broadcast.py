"""The loader year's silent broadcast, as real solutions make it: `loader_correct.py` whose
`compute_loss_and_mae` compares the (B, 1) predictions with the loader's (B,) labels without
reshaping them, so MSE and MAE average over all B x B pairs (PyTorch only warns). Nothing else differs.
"""

import copy
import random
from typing import NamedTuple, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms
from tqdm import tqdm

# Seed all random number generators
np.random.seed(197331)
torch.manual_seed(197331)
random.seed(197331)


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
        self.train, self.test = self.load_dataset(self)
        images, _ = next(iter(self.train))
        input_dim = images.shape[1:]  # (3, 32, 32)
        self.network_type = network_type
        activation_function = self.create_activation_function(activation_name)
        if network_type == "mlp":
            self.network = self.create_mlp(
                input_dim[0] * input_dim[1] * input_dim[2], net_config, activation_function
            )
        elif network_type == "cnn":
            self.network = self.create_cnn(input_dim[0], net_config, activation_function)
        else:
            raise ValueError("Network type not supported")
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)

        self.train_logs = {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}

    @staticmethod
    def load_dataset(self):
        transform = transforms.ToTensor()

        trainset = torchvision.datasets.SVHN(root="./data", split="train", download=True, transform=transform)
        trainloader = torch.utils.data.DataLoader(trainset, batch_size=self.batch_size, shuffle=True)

        testset = torchvision.datasets.SVHN(root="./data", split="test", download=True, transform=transform)
        testloader = torch.utils.data.DataLoader(testset, batch_size=self.batch_size, shuffle=False)

        return trainloader, testloader

    @staticmethod
    def create_mlp(
        input_dim: int, net_config: NetworkConfiguration, activation: torch.nn.Module
    ) -> torch.nn.Module:
        layers = [torch.nn.Flatten()]
        for hidden in net_config.dense_hiddens:
            layers.append(torch.nn.Linear(input_dim, hidden))
            layers.append(copy.deepcopy(activation))
            input_dim = hidden
        layers.append(torch.nn.Linear(input_dim, 1))
        return torch.nn.Sequential(*layers)

    @staticmethod
    def create_cnn(
        in_channels: int, net_config: NetworkConfiguration, activation: torch.nn.Module
    ) -> torch.nn.Module:
        layers = []
        n_convs = len(net_config.n_channels)
        for i in range(n_convs):
            layers.append(
                torch.nn.Conv2d(
                    in_channels,
                    net_config.n_channels[i],
                    kernel_size=net_config.kernel_sizes[i],
                    stride=net_config.strides[i],
                )
            )
            layers.append(copy.deepcopy(activation))
            if i < n_convs - 1:
                layers.append(torch.nn.MaxPool2d(kernel_size=2))
            in_channels = net_config.n_channels[i]
        layers.append(torch.nn.AdaptiveMaxPool2d((4, 4)))
        layers.append(torch.nn.Flatten())
        features = 16 * net_config.n_channels[-1]
        for hidden in net_config.dense_hiddens:
            layers.append(torch.nn.Linear(features, hidden))
            layers.append(copy.deepcopy(activation))
            features = hidden
        layers.append(torch.nn.Linear(features, 1))
        return torch.nn.Sequential(*layers)

    @staticmethod
    def create_activation_function(activation_str: str) -> torch.nn.Module:
        name = activation_str.lower()
        if name == "relu":
            return torch.nn.ReLU()
        if name == "tanh":
            return torch.nn.Tanh()
        if name == "sigmoid":
            return torch.nn.Sigmoid()
        raise ValueError(f"Unknown activation function: {activation_str}")

    def compute_loss_and_mae(self, X: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        prediction = self.network(X)
        y = y.float()
        return F.mse_loss(prediction, y), F.l1_loss(prediction, y)

    def training_step(self, X_batch: torch.Tensor, y_batch: torch.Tensor):
        self.optimizer.zero_grad()
        loss, mae = self.compute_loss_and_mae(X_batch, y_batch)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), mae.detach()

    def train_loop(self, n_epochs: int) -> dict:
        N = len(self.train)
        for _ in tqdm(range(n_epochs)):
            train_loss = 0.0
            train_mae = 0.0
            for inputs, labels in self.train:
                loss, mae = self.training_step(inputs, labels)
                train_loss += loss
                train_mae += mae

            # Log data every epoch
            self.train_logs["train_mae"].append(train_mae / N)
            self.train_logs["train_loss"].append(train_loss / N)
            self.evaluation_loop()

        return self.train_logs

    def evaluation_loop(self) -> None:
        self.network.eval()
        N = len(self.test)
        with torch.inference_mode():
            test_loss = 0.0
            test_mae = 0.0
            for inputs, labels in self.test:
                loss, mae = self.compute_loss_and_mae(inputs, labels)
                test_loss += loss.item()
                test_mae += mae.item()

        self.train_logs["test_mae"].append(test_mae / N)
        self.train_logs["test_loss"].append(test_loss / N)

    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        self.network.eval()
        with torch.no_grad():
            loss, mae = self.compute_loss_and_mae(X, y)
        return loss, mae
