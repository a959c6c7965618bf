"""The grading flavour: the facade's ``Trainer`` with real ``torch.nn`` networks, so that a TA's
``solution.py`` (``from torch_compat.grading import *``) runs a PyTorch test file on the engine. The
builders draw PyTorch's own initial weights (``torch.manual_seed`` gives the reference's numbers);
the engine trains an NNX copy (``bridge.from_torch``), pulled before each call and pushed back after.
"""

from __future__ import annotations

import random
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx

from jaxtrainer import config, presets, registry
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.errors import InputError

from . import bridge, nn
from . import trainer as _facade

__all__ = ["NetworkConfiguration", "Trainer"]

# The homework's solution file seeds numpy, random and torch at import time ("do not change the seed
# already set in the solution file"); a drop-in solution.py does the same.
random.seed(presets.SEED)
np.random.seed(presets.SEED)
torch.manual_seed(presets.SEED)

_TORCH_ACTIVATIONS = {name: getattr(torch.nn, cls) for name, cls in registry.ACTIVATIONS.items()}


def _as_torch(network: nn.Sequential) -> torch.nn.Sequential:
    """The facade network as a torch module initialised by PyTorch's own defaults: ``to_torch``'s
    constructors draw them, then copy the facade's weights in; rewinding the generator and calling
    each layer's ``reset_parameters`` redraws exactly those numbers, as a PyTorch solution would."""
    rng = torch.random.get_rng_state()
    module = bridge.to_torch(network)
    torch.random.set_rng_state(rng)
    for layer in module.children():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()  # hasattr above  # pyright: ignore[reportCallIssue]
    return module


def _tensor(x) -> torch.Tensor:
    """Torch tensors as given; numpy or JAX arrays (an engine metric) as float32 tensors."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.from_numpy(np.array(x, dtype=np.float32))


class Trainer(_facade.Trainer):
    """The facade's Trainer (same signature, same engine) with real ``torch.nn`` networks."""

    @staticmethod
    def load_dataset(dataset=None):
        """As the facade's, as float32 torch tensors (the homework's ``self.train``/``self.test``)."""
        train, test = _facade.Trainer.load_dataset(dataset)
        return (tuple(_tensor(a) for a in train), tuple(_tensor(a) for a in test))

    @staticmethod
    def create_mlp(input_dim: int, net_config: NetworkConfiguration, activation) -> torch.nn.Sequential:
        """``activation``: a ReLU/Tanh/Sigmoid instance or class; each position gets its own instance."""
        return _as_torch(_facade.Trainer.create_mlp(input_dim, net_config, activation))

    @staticmethod
    def create_cnn(
        in_channels: int, net_config: NetworkConfiguration, activation, *, conv_impl: str | None = None
    ) -> torch.nn.Sequential:
        """As ``create_mlp``; ``conv_impl`` only concerns the engine's copy and is ignored here."""
        return _as_torch(_facade.Trainer.create_cnn(in_channels, net_config, activation))

    @staticmethod
    def create_activation_function(activation_str: str) -> torch.nn.Module:
        return _TORCH_ACTIVATIONS[config.check_activation(activation_str)]()

    def _seed(self, seed: int) -> None:
        """Seed as the PyTorch reference Trainer does, before its builders draw torch's init."""
        super()._seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _engine_network(self) -> nn.Sequential:
        """The engine's NNX copy of ``self.network``, rebuilt if ``self.network`` is replaced."""
        if getattr(self, "_engine_source", None) is not self.network:
            engine = bridge.from_torch(self.network, conv_impl=self.conv_impl)
            optimizer = getattr(self, "optimizer", None)
            if optimizer is not None and nnx.graphdef(engine) != optimizer.graphdef:
                raise InputError(
                    "trainer.network was replaced by a network of another structure: the "
                    "optimizer state cannot follow it; create a new Trainer instead"
                )
            self._engine, self._engine_source = engine, self.network
        return self._engine

    def _pull(self) -> None:
        self._engine_network().load_state_dict(self.network.state_dict())

    def _push(self) -> None:
        weights = self._engine_network().state_dict()
        self.network.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})

    def compute_loss_and_mae(self, X, y) -> Tuple[torch.Tensor, torch.Tensor]:
        """MSE and MAE of the batch by the torch module itself: ``loss.backward()`` fills its ``.grad``."""
        prediction = self.network(_tensor(X))
        y = _tensor(y)
        if y.dim() == 1:
            y = y.view_as(prediction)  # pyright: ignore[reportArgumentType]
        return F.mse_loss(prediction, y), F.l1_loss(prediction, y)  # pyright: ignore[reportArgumentType]

    def training_step(self, X_batch, y_batch) -> Tuple[torch.Tensor, torch.Tensor]:
        """One Adam step in the engine, the module updated; the (loss, mae) before, as torch tensors."""
        loss, mae = super().training_step(X_batch, y_batch)
        return _tensor(loss), _tensor(mae)

    def evaluate(self, X, y) -> Tuple[torch.Tensor, torch.Tensor]:
        """As the facade's, the mean loss and MAE as 0-d torch tensors."""
        loss, mae = super().evaluate(X, y)
        return _tensor(loss), _tensor(mae)
