"""The homework's ``Trainer`` with its exact signatures, running on the JAX engine.

The network (a ``torch_compat.nn.Sequential``) holds the weights; each training call reads them,
runs one compiled program and writes them back, so weights loaded with ``load_state_dict`` at any
time are the ones trained.
"""

from __future__ import annotations

from typing import Tuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxtrainer import config, data, models, train
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.equivariance import equivariance_maps
from jaxtrainer.layers import ACTIVATION_MODULES
from jaxtrainer.plots import equivariance_figure

from . import nn


class Adam:
    """The optimizer's state, with torch's ``param_groups`` view of the learning rate."""

    def __init__(self, network: nn.Sequential, lr: float):
        self.graphdef, state = train.init_state(network, lr)
        self.state = state.opt_state

    @property
    def param_groups(self):
        return [{"lr": float(self.state.hyperparams["learning_rate"])}]


def _array(x):
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return jnp.asarray(x, dtype=jnp.float32)


class Trainer:
    def __init__(self, network_type: str = "mlp", net_config: NetworkConfiguration = NetworkConfiguration(),
                 lr: float = 0.001, batch_size: int = 128, activation_name: str = "relu", *,
                 dataset=None, seed: int = nn.REFERENCE_SEED, conv_impl: str | None = None,
                 progress: bool = True):
        config.check_network_type(network_type)
        self.network_type = network_type
        self.net_config = net_config
        self.lr = config.check_lr(lr)
        self.batch_size = config.check_batch_size(batch_size)
        self.seed = seed
        self.conv_impl = conv_impl
        self.progress = progress
        self.train, self.test = self.load_dataset(dataset)
        nn.manual_seed(seed)
        self.activation = self.create_activation_function(activation_name)
        c, h, w = self.train[0].shape[1:]
        if network_type == "mlp":
            self.network = self.create_mlp(c * h * w, net_config, self.activation)
        else:
            config.check_cnn(net_config, (h, w))
            self.network = self.create_cnn(c, net_config, self.activation, conv_impl=conv_impl)
        self.optimizer = Adam(self.network, self.lr)
        self.train_logs = {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}

    @staticmethod
    def load_dataset(dataset=None):
        """((X_train, y_train), (X_test, y_test)) as NCHW float32 images and (N, 1) targets."""
        ds = data.load(dataset)
        return ds.train, ds.test

    @staticmethod
    def create_mlp(input_dim: int, net_config: NetworkConfiguration, activation) -> nn.Sequential:
        net = models.build_mlp(input_dim, net_config, _activation_name(activation),
                               rngs=nn.default_rngs())
        return nn.Sequential(*net.layers)

    @staticmethod
    def create_cnn(in_channels: int, net_config: NetworkConfiguration, activation, *,
                   conv_impl: str | None = None) -> nn.Sequential:
        net = models.build_cnn(in_channels, net_config, _activation_name(activation),
                               rngs=nn.default_rngs(), conv_impl=conv_impl)
        return nn.Sequential(*net.layers)

    @staticmethod
    def create_activation_function(activation_str: str):
        return models.make_activation(activation_str)

    # -- the engine, on the network's current weights -------------------------------------------
    def _params(self):
        return nnx.state(self.network, nnx.Param)

    def _state(self) -> train.TrainState:
        return train.TrainState(self._params(), self.optimizer.state)

    def _commit(self, state: train.TrainState) -> None:
        nnx.update(self.network, state.params)
        self.optimizer.state = state.opt_state

    def compute_loss_and_mae(self, X, y) -> Tuple:
        """MSE and MAE of the batch; differentiate them with jax.grad over the network's parameters."""
        metrics = train.REGRESSION.per_example(self.network(_array(X)), _array(y))
        return jnp.mean(metrics["loss"]), jnp.mean(metrics["mae"])

    def training_step(self, X_batch, y_batch) -> Tuple:
        """One Adam step; returns the batch's (loss, mae) before the update."""
        state, metrics = train.train_step(self.optimizer.graphdef, self._state(), _array(X_batch),
                                          _array(y_batch))
        self._commit(state)
        return metrics["loss"], metrics["mae"]

    def evaluate(self, X, y) -> Tuple:
        metrics = train.evaluate(self.optimizer.graphdef, self._params(), _array(X), _array(y))
        return metrics["loss"], metrics["mae"]

    def log_metrics(self, X_train, y_train, X_test, y_test) -> None:
        for split, (X, y) in (("train", (X_train, y_train)), ("test", (X_test, y_test))):
            loss, mae = self.evaluate(X, y)
            self.train_logs[f"{split}_loss"].append(float(loss))
            self.train_logs[f"{split}_mae"].append(float(mae))

    def train_loop(self, n_epochs: int) -> dict:
        """Logs before training and after each epoch (n_epochs + 1 entries per list); each epoch,
        with its logging, is one compiled program."""
        config.check_n_epochs(n_epochs)
        state, logs = train.fit(self.optimizer.graphdef, self._state(), self.train, self.test,
                                n_epochs, batch_size=self.batch_size, progress=self.progress)
        self._commit(state)
        for key, values in logs.items():
            self.train_logs[key].extend(values)
        return self.train_logs

    def test_equivariance(self, path: str = "equivariance.png"):
        """SPEC's 2x2 figure on the first training image rescaled to [0, 1]; saved to `path`."""
        image = np.clip(np.asarray(self.train[0][0]).mean(axis=0) * 0.5 + 0.5, 0.0, 1.0)
        maps = equivariance_maps(image, seed=self.seed)
        return equivariance_figure(maps, path)


def _activation_name(activation) -> str:
    """The engine's name for an activation module (an instance or class of ReLU/Tanh/Sigmoid)."""
    cls = activation if isinstance(activation, type) else type(activation)
    for name, module in ACTIVATION_MODULES.items():
        if issubclass(cls, module) or cls.__name__ == module.__name__:
            return name
    raise ValueError(f"activation must be a ReLU, Tanh or Sigmoid module, got {activation!r}")
