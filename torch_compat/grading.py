"""The grading flavour: the homework's ``Trainer`` whose networks are real ``torch.nn`` modules.

A TA's one-line ``solution.py`` (``from torch_compat.grading import *``) makes an existing PyTorch test
file for the homework run against the JAX engine: ``create_mlp``/``create_cnn`` return a
``torch.nn.Sequential`` of ``torch.nn`` layers, ``create_activation_function`` a ``torch.nn`` activation,
and ``Trainer.network`` is that Sequential. Training runs in the engine on the module's current
weights and writes the trained weights back into the module, in place.

Only the builders and the base Trainer's hooks differ from the facade (``torch_compat.trainer``):

- the layer order is the facade's (its builders build the network, ``bridge.to_torch`` converts it);
  the initial weights are then redrawn with PyTorch's own default initialisation from torch's global
  generator, exactly the draws a PyTorch solution makes, so ``torch.manual_seed(s)`` before a builder
  gives the reference solution's numbers, and ``Trainer(seed=s)`` those of a PyTorch Trainer seeded
  with ``s`` in its constructor (``torch_compat/reference.py``);
- the engine trains an NNX copy of the module (``bridge.from_torch``), pulled from the module before
  each engine call and pushed back after it.

PyTorch is required here (and only here, with ``bridge``): the engine never imports it.
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
    """The facade network as a torch module initialised by PyTorch's own defaults.

    ``to_torch`` builds the torch layers in order (drawing torch's default init from the global
    generator, as any PyTorch solution does) and then copies the facade's weights in; rewinding the
    generator and calling each layer's ``reset_parameters`` (what its constructor calls) redraws
    exactly the numbers the constructors drew, and leaves the generator where a PyTorch solution
    would have left it.
    """
    rng = torch.random.get_rng_state()
    module = bridge.to_torch(network)
    torch.random.set_rng_state(rng)
    for layer in module.children():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()  # hasattr above  # pyright: ignore[reportCallIssue]
    return module


def _tensor(x) -> torch.Tensor:
    """Torch tensors as given; numpy or JAX arrays (an engine metric: a 0-d tensor, with ``.item()``,
    ``float()`` and torch arithmetic) as float32 tensors."""
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
        """``activation``: a ReLU/Tanh/Sigmoid instance (the statement) or class (students' tests);
        each activation position gets its own instance."""
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

    # -- hooks of the shared implementation ------------------------------------------------------
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

    # -- the homework's methods, with torch tensors out --------------------------------------------
    def compute_loss_and_mae(self, X, y) -> Tuple[torch.Tensor, torch.Tensor]:
        """MSE and MAE of the batch by the torch module itself: differentiable, ``loss.backward()``
        fills the module's ``.grad`` as in the PyTorch solution."""
        # this flavour's network is a torch module: a torch tensor out
        prediction = self.network(_tensor(X))
        y = _tensor(y)
        if y.dim() == 1:
            y = y.view_as(prediction)  # pyright: ignore[reportArgumentType]
        return F.mse_loss(prediction, y), F.l1_loss(prediction, y)  # pyright: ignore[reportArgumentType]

    def training_step(self, X_batch, y_batch) -> Tuple[torch.Tensor, torch.Tensor]:
        """One Adam step in the engine; the module holds the updated weights. Returns the batch's
        (loss, mae) before the update as 0-d torch tensors."""
        loss, mae = super().training_step(X_batch, y_batch)
        return _tensor(loss), _tensor(mae)

    def evaluate(self, X, y) -> Tuple[torch.Tensor, torch.Tensor]:
        """As the facade's, the mean loss and MAE as 0-d torch tensors."""
        loss, mae = super().evaluate(X, y)
        return _tensor(loss), _tensor(mae)
