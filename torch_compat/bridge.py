"""To and from real ``torch.nn`` modules (PyTorch is imported here only, and only when called)."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from jaxtrainer.errors import InputError
from jaxtrainer.registry import ACTIVATIONS

from . import nn

_ACTIVATIONS = tuple(ACTIVATIONS.values())
_TORCH_ARGUMENTS = {
    "Linear": ("in_features", "out_features"),
    "Conv2d": ("in_channels", "out_channels", "kernel_size", "stride"),
    "MaxPool2d": ("kernel_size",),
    "AdaptiveMaxPool2d": ("output_size",),
}


def to_torch(network: nn.Sequential, copy_weights: bool = True):
    """A real ``torch.nn.Sequential`` with the same layers and weights.

    ``copy_weights=False`` keeps the weights the torch layers' constructors draw (PyTorch's default
    initialisation from torch's generator, in layer order); the network may then be abstract
    (``nnx.eval_shape``), which draws nothing in JAX."""
    import torch

    def torch_layer(layer):
        name = type(layer).__name__  # torch's class of the same name, built from the same attributes
        return getattr(torch.nn, name)(**{key: getattr(layer, key) for key in _TORCH_ARGUMENTS.get(name, ())})

    module = torch.nn.Sequential(*map(torch_layer, network.layers))
    if copy_weights:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in network.state_dict().items()})
    return module


def from_torch(module, conv_impl: str | None = None) -> nn.Sequential:
    """The facade network equivalent to a ``torch.nn.Sequential`` of the homework's layer types.

    Read by position, as the Sequential's forward runs it: a module instance placed at several
    positions (one shared activation) is a layer at each, where ``children()`` lists it once."""
    import torch

    makers = []  # each layer as a function of rngs, built below without drawing any weights
    for i, child in enumerate(module):
        if isinstance(child, torch.nn.Linear):
            if child.bias is None:
                raise InputError(f"layer {i}: only Linear with bias is supported, got {child}")
            makers.append(lambda rngs, c=child: nn.Linear(c.in_features, c.out_features, rngs=rngs))
        elif isinstance(child, torch.nn.Conv2d):
            (kh, kw), (sh, sw) = child.kernel_size, child.stride
            plain = child.dilation == (1, 1) and child.groups == 1 and child.padding in ((0, 0), "valid")
            if kh != kw or sh != sw or not plain or child.bias is None:
                raise InputError(
                    f"layer {i}: only square, unpadded, undilated, ungrouped Conv2d with bias is "
                    f"supported, got {child}"
                )
            makers.append(
                lambda rngs, c=child, k=kh, s=sh: nn.Conv2d(
                    c.in_channels, c.out_channels, k, s, rngs=rngs, impl=conv_impl
                )
            )
        elif isinstance(child, torch.nn.MaxPool2d):
            if _pool_settings(child) != ((2, 2), (2, 2), (0, 0), (1, 1), False, False):
                raise InputError(
                    f"layer {i}: only MaxPool2d(2) (a 2x2 window, stride 2, no padding, dilation or "
                    f"ceil_mode) is supported, got {child}"
                )
            makers.append(lambda rngs: nn.MaxPool2d(2))
        elif isinstance(child, torch.nn.AdaptiveMaxPool2d):
            makers.append(lambda rngs, c=child: nn.AdaptiveMaxPool2d(c.output_size))
        elif isinstance(child, torch.nn.Flatten):
            makers.append(lambda rngs: nn.Flatten())
        elif type(child).__name__ in _ACTIVATIONS:
            makers.append(lambda rngs, c=child: getattr(nn, type(c).__name__)())
        else:
            raise InputError(
                f"layer {i}: {type(child).__name__} is not one of the homework's layers "
                "(Linear, Conv2d, MaxPool2d, AdaptiveMaxPool2d, Flatten, ReLU, Tanh, Sigmoid)"
            )

    def build():
        rngs = nnx.Rngs(params=0)
        return nn.Sequential(*(make(rngs) for make in makers))

    network = _with_zero_weights(build)
    network.load_state_dict(module.state_dict())
    return network


def _pool_settings(pool) -> tuple:
    """A torch MaxPool2d's settings, each int as the (height, width) pair it stands for."""
    sizes = (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
    pairs = (tuple(v) if isinstance(v, (tuple, list)) else (v, v) for v in sizes)
    return (*pairs, pool.ceil_mode, pool.return_indices)


def _with_zero_weights(build) -> nn.Sequential:
    """`build()` with zeros for weights: traced abstractly, so no random draw is compiled (each new
    weight shape drawn eagerly would compile a program; here the weights are overwritten anyway)."""
    graphdef, state = nnx.split(nnx.eval_shape(build))
    return nnx.merge(graphdef, jax.tree.map(lambda a: jax.device_put(np.zeros(a.shape, a.dtype)), state))
