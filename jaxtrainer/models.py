"""The homework's MLP and CNN, built as a PyTorch-ordered Sequential of NNX layers."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import (
    NetworkConfiguration,
    check_activation,
    check_cnn,
    check_dense,
    check_network_type,
    check_parameter_memory,
    check_seed,
)
from .data.dataset import numeric_array
from .errors import InputError
from .layers import ACTIVATION_MODULES, AdaptiveMaxPool2d, Conv2d, Flatten, Linear, MaxPool2d


class Sequential(nnx.Module):
    """Layers applied in order to an NCHW batch (PyTorch's input layout), computed as NHWC inside."""

    def __init__(self, *layers: nnx.Module):
        self.layers = nnx.List(layers)

    def __call__(self, x):
        x = jnp.asarray(x)
        check_input(self, x.shape)
        if x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]


def check_input(model: Sequential, shape) -> None:
    """Images the network was not built for fail at trace time with the sizes named, not deep in a matmul."""
    first = model.layers[0]
    if isinstance(first, Conv2d):
        if len(shape) != 4:
            raise InputError(
                f"the CNN takes images of shape (N, C, H, W), got an array of shape {tuple(shape)}"
            )
        if shape[1] != first.in_channels:
            raise InputError(
                f"the CNN was built for {first.in_channels}-channel images, got {shape[1]} "
                f"channels (input shape {tuple(shape)})"
            )
        convs = [l for l in model.layers if isinstance(l, Conv2d)]
        outs, kernels, strides = zip(*((c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs))
        check_cnn(NetworkConfiguration(outs, kernels, strides, ()), tuple(shape[2:]))
    elif isinstance(first, Flatten):
        expected = model.layers[1].in_features  # an MLP starts Flatten, Linear  # pyright: ignore[reportAttributeAccessIssue]
        if (int(np.prod(shape[1:])) if len(shape) >= 2 else None) != expected:
            raise InputError(
                f"the MLP was built for inputs of {expected} features (C*H*W), got an array of "
                f"shape {tuple(shape)}"
            )


def check_batch(model: Sequential, x_shape, y_shape) -> None:
    """Images and (N, 1) targets the network can take, checked eagerly before any compile."""
    check_input(model, x_shape)
    if tuple(y_shape) != (x_shape[0], 1):
        raise InputError(
            f"targets must have the predictions' shape {(x_shape[0], 1)} "
            f"(one (N, 1) target per image), got {tuple(y_shape)}"
        )


def make_activation(name: str) -> nnx.Module:
    """A new module at each call (the name in any case): every activation position is its own instance."""
    return ACTIVATION_MODULES[check_activation(name)]()


def _dense_parameters(d: int, hiddens: Sequence[int]) -> int:
    sizes = [d, *hiddens, 1]
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def _dense_head(d: int, hiddens: Sequence[int], activation: str, rngs: nnx.Rngs) -> list:
    layers = []
    for h in hiddens:
        layers += [Linear(d, h, rngs=rngs), make_activation(activation)]
        d = h
    return layers + [Linear(d, 1, rngs=rngs)]


def build_mlp(
    input_dim: int, cfg: NetworkConfiguration, activation: str = "relu", *, rngs: nnx.Rngs
) -> Sequential:
    """Flatten, then Linear + activation per hidden size, then Linear(d, 1)."""
    check_dense(cfg)
    check_parameter_memory(_dense_parameters(input_dim, cfg.dense_hiddens))
    return Sequential(Flatten(), *_dense_head(input_dim, cfg.dense_hiddens, activation, rngs))


def build_cnn(
    in_channels: int,
    cfg: NetworkConfiguration,
    activation: str = "relu",
    *,
    rngs: nnx.Rngs,
    conv_impl: str | None = None,
) -> Sequential:
    """Conv + activation + MaxPool2d(2) per layer (the last pooled by AdaptiveMaxPool2d((4, 4))),
    Flatten, then the dense head from 16 * n_channels[-1] features."""
    check_cnn(cfg)
    channels = [in_channels, *cfg.n_channels]
    convs = sum((k * k * a + 1) * b for a, b, k in zip(channels, channels[1:], cfg.kernel_sizes))
    check_parameter_memory(convs + _dense_parameters(16 * channels[-1], cfg.dense_hiddens))
    layers = []
    for i, (c, out, k, s) in enumerate(zip(channels, cfg.n_channels, cfg.kernel_sizes, cfg.strides)):
        layers += [Conv2d(c, out, k, s, rngs=rngs, impl=conv_impl), make_activation(activation)]
        layers.append(MaxPool2d(2) if i < len(cfg.n_channels) - 1 else AdaptiveMaxPool2d((4, 4)))
    layers.append(Flatten())
    return Sequential(*layers, *_dense_head(16 * channels[-1], cfg.dense_hiddens, activation, rngs))


def build_network(
    network_type: str,
    input_shape: Tuple[int, int, int],
    cfg: NetworkConfiguration,
    activation: str = "relu",
    *,
    seed: int = 0,
    conv_impl: str | None = None,
) -> Sequential:
    """The "mlp" or "cnn" network for images of `input_shape` (C, H, W), checked against it first;
    `seed` draws the weights; `conv_impl`: "im2col", "lax" or None (`layers.default_conv_impl`)."""
    check_network_type(network_type)
    check_activation(activation)
    c, h, w = input_shape
    rngs = nnx.Rngs(params=check_seed(seed))
    if network_type == "mlp":
        return build_mlp(c * h * w, cfg, activation, rngs=rngs)
    check_cnn(cfg, (h, w))
    return build_cnn(c, cfg, activation, rngs=rngs, conv_impl=conv_impl)


def named_parameters(model: Sequential) -> Dict[str, nnx.Param]:
    """PyTorch's state_dict keys ("<index in the Sequential>.weight") to the model's parameters."""
    layers = enumerate(model.layers)
    return {
        f"{i}.{n}": getattr(layer, n) for i, layer in layers for n in ("weight", "bias") if hasattr(layer, n)
    }


def state_dict(model: Sequential) -> Dict[str, np.ndarray]:
    """The weights as numpy arrays under PyTorch's keys and in its layouts."""
    return {k: np.asarray(p[...]) for k, p in named_parameters(model).items()}


def load_state_dict(model: Sequential, tensors) -> None:
    """Copy weights in PyTorch's layouts into the model; keys and shapes must match exactly."""
    params = named_parameters(model)
    missing = sorted(set(params) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    if missing or unexpected:
        raise KeyError(
            f"state_dict keys do not match the network: missing {missing}, unexpected {unexpected}"
        )
    arrays = {}
    for key, param in params.items():
        value = tensors[key]
        if hasattr(value, "detach"):  # a torch tensor (bfloat16 read exactly, a meta tensor refused)
            value = numeric_array(value, f"state_dict[{key!r}]")
        value = np.asarray(value, dtype=np.float32)
        if value.shape != param[...].shape:
            raise InputError(
                f"state_dict[{key!r}] has shape {value.shape}, the network expects {tuple(param[...].shape)}"
            )
        arrays[key] = value
    for key, param in params.items():
        param[...] = jnp.asarray(arrays[key])


def count_parameters(model: Sequential) -> int:
    """Also counts an abstract model (`nnx.eval_shape(lambda: build_network(...))`), which draws nothing."""
    return sum(int(np.prod(p.shape)) for p in named_parameters(model).values())
