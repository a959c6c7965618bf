"""To and from real ``torch.nn`` modules (PyTorch is imported here only, and only when called)."""

from __future__ import annotations

import numpy as np

from . import nn

_ACTIVATIONS = ("ReLU", "Tanh", "Sigmoid")


def to_torch(network: nn.Sequential):
    """A real ``torch.nn.Sequential`` with the same layers and weights."""
    import torch

    layers = []
    for layer in network.layers:
        if isinstance(layer, nn.Linear):
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, nn.Conv2d):
            layers.append(
                torch.nn.Conv2d(
                    layer.in_channels, layer.out_channels, kernel_size=layer.kernel_size, stride=layer.stride
                )
            )
        elif isinstance(layer, nn.MaxPool2d):
            layers.append(torch.nn.MaxPool2d(kernel_size=layer.kernel_size))
        elif isinstance(layer, nn.AdaptiveMaxPool2d):
            layers.append(torch.nn.AdaptiveMaxPool2d(layer.output_size))
        elif isinstance(layer, nn.Flatten):
            layers.append(torch.nn.Flatten())
        else:
            layers.append(getattr(torch.nn, type(layer).__name__)())
    module = torch.nn.Sequential(*layers)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in network.state_dict().items()})
    return module


def from_torch(module, conv_impl: str | None = None) -> nn.Sequential:
    """The facade network equivalent to a ``torch.nn.Sequential`` of the homework's layer types."""
    import torch

    rngs = nn.default_rngs()
    layers = []
    for i, child in enumerate(module.children()):
        if isinstance(child, torch.nn.Linear):
            layers.append(nn.Linear(child.in_features, child.out_features, rngs=rngs))
        elif isinstance(child, torch.nn.Conv2d):
            (kh, kw), (sh, sw) = child.kernel_size, child.stride
            if kh != kw or sh != sw or child.padding not in ((0, 0), "valid") or child.bias is None:
                raise ValueError(
                    f"layer {i}: only square, unpadded Conv2d with bias is supported, got {child}"
                )
            layers.append(nn.Conv2d(child.in_channels, child.out_channels, kh, sh, rngs=rngs, impl=conv_impl))
        elif isinstance(child, torch.nn.MaxPool2d):
            layers.append(nn.MaxPool2d(child.kernel_size))
        elif isinstance(child, torch.nn.AdaptiveMaxPool2d):
            layers.append(nn.AdaptiveMaxPool2d(child.output_size))
        elif isinstance(child, torch.nn.Flatten):
            layers.append(nn.Flatten())
        elif type(child).__name__ in _ACTIVATIONS:
            layers.append(getattr(nn, type(child).__name__)())
        else:
            raise ValueError(
                f"layer {i}: {type(child).__name__} is not one of the homework's layers "
                "(Linear, Conv2d, MaxPool2d, AdaptiveMaxPool2d, Flatten, ReLU, Tanh, Sigmoid)"
            )
    network = nn.Sequential(*layers)
    network.load_state_dict(module.state_dict())
    return network
