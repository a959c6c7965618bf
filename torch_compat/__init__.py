"""The homework's PyTorch API on the JAX engine: change the import line, keep the experiments."""

from jaxtrainer.config import NetworkConfiguration

from . import nn
from .bridge import from_torch, to_torch
from .trainer import Trainer

__all__ = ["NetworkConfiguration", "Trainer", "from_torch", "nn", "to_torch"]
