"""PyTorch's layers as Flax NNX modules: same names, attributes, parameter layouts (a state_dict maps
one to one) and initialisation. Images flow as NHWC, as XLA prefers; ``Flatten`` restores (C, H, W)."""

from __future__ import annotations

import math
import os
from typing import Tuple

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from .errors import InputError
from .registry import ACTIVATIONS, CONV_IMPLS, choose


def default_conv_impl() -> str:
    """im2col on CPU (XLA:CPU's ``lax.conv`` inside ``lax.scan`` is ~10x slower, jax-ml/jax#16611),
    lax.conv elsewhere; ``JAXTRAINER_CONV=im2col|lax`` overrides."""
    impl = os.environ.get("JAXTRAINER_CONV")
    if impl:
        return choose("conv implementation", impl, CONV_IMPLS)
    return "im2col" if jax.default_backend() == "cpu" else "lax"


def torch_uniform(key: jax.Array, shape: Tuple[int, ...], fan_in: int) -> jax.Array:
    """PyTorch's default Linear/Conv2d init (kaiming_uniform, a=sqrt(5)): U(±1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class Linear(nnx.Module):
    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nnx.Param(torch_uniform(rngs.params(), (out_features, in_features), in_features))
        self.bias = nnx.Param(torch_uniform(rngs.params(), (out_features,), in_features))

    def __call__(self, x):
        return x @ self.weight[...].T + self.bias[...]


def _windows(x, axis: int, size: int, stride: int, out: int):
    """The patches of a 1-D convolution along `axis`, stacked as a new axis just before the channels."""
    limit = (out - 1) * stride + 1
    parts = [lax.slice_in_dim(x, d, d + limit, stride, axis) for d in range(size)]
    return jnp.stack(parts, axis=-2)


def conv_im2col(x, weight, bias, stride: Tuple[int, int]):
    """Valid NHWC convolution as patches (kh row slices, then kw column slices, (kh, kw, C) contiguous
    with no transpose) and one matmul with the weight permuted to match."""
    b, h, w, c = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = (h - kh) // stride[0] + 1, (w - kw) // stride[1] + 1
    rows = _windows(x, 1, kh, stride[0], ho)  # (B, Ho, W, kh, C)
    patches = _windows(rows, 2, kw, stride[1], wo)  # (B, Ho, Wo, kh, kw, C)
    patches = patches.reshape(b, ho, wo, kh * kw * c)
    matrix = weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, o)
    return patches @ matrix + bias


def conv_lax(x, weight, bias, stride: Tuple[int, int]):
    """Valid NHWC convolution by `lax.conv_general_dilated` (OIHW weight): the fast path off CPU."""
    y = lax.conv_general_dilated(x, weight, stride, "VALID", dimension_numbers=("NHWC", "OIHW", "NHWC"))
    return y + bias


class Conv2d(nnx.Module):
    """``torch.nn.Conv2d`` without padding; ``impl`` is fixed at build time (part of the program)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        rngs: nnx.Rngs,
        impl: str | None = None,
    ):
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = (stride, stride)
        self.impl = default_conv_impl() if impl is None else choose("conv implementation", impl, CONV_IMPLS)
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nnx.Param(torch_uniform(rngs.params(), shape, fan_in))
        self.bias = nnx.Param(torch_uniform(rngs.params(), (out_channels,), fan_in))

    def __call__(self, x):
        conv = conv_im2col if self.impl == "im2col" else conv_lax
        return conv(x, self.weight[...], self.bias[...], self.stride)


def _pool_windows(x):
    """The four elements of each 2x2 window (floor mode) in PyTorch's scan order."""
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2].reshape(b, h // 2, 2, w // 2, 2, c)
    return [x[:, :, i, :, j] for i in (0, 1) for j in (0, 1)]


@jax.custom_vjp
def max_pool_2x2(x):
    """``MaxPool2d(2)`` as elementwise maxima; its gradient goes to each window's first maximum, as
    PyTorch's does (JAX's splits ties, with an extra pass over the largest activation)."""
    p = _pool_windows(x)
    return jnp.maximum(jnp.maximum(p[0], p[1]), jnp.maximum(p[2], p[3]))


def _max_pool_fwd(x):
    y = max_pool_2x2(x)
    return y, (x, y)


def _max_pool_bwd(residual, g):
    x, y = residual
    taken = jnp.zeros(y.shape, bool)
    grads = []
    for part in _pool_windows(x):
        first = (part == y) & ~taken
        taken = taken | first
        grads.append(jnp.where(first, g, 0.0))
    b, h, w, c = x.shape
    dx = jnp.stack(grads, axis=-2).reshape(b, h // 2, w // 2, 2, 2, c)
    dx = dx.transpose(0, 1, 3, 2, 4, 5).reshape(b, h - h % 2, w - w % 2, c)
    return (jnp.pad(dx, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


def adaptive_windows(size: int, out: int):
    """PyTorch's adaptive pooling windows: cell i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def adaptive_max_pool(x, output_size: Tuple[int, int]):
    """Separable max over PyTorch's windows, which overlap or repeat on an input smaller than the output."""
    for axis, out in zip((1, 2), output_size):
        cells = [
            lax.slice_in_dim(x, lo, hi, 1, axis).max(axis=axis, keepdims=True)
            for lo, hi in adaptive_windows(x.shape[axis], out)
        ]
        x = jnp.concatenate(cells, axis=axis)
    return x


class MaxPool2d(nnx.Module):
    def __init__(self, kernel_size: int = 2):
        if kernel_size != 2:
            raise InputError(f"only MaxPool2d(kernel_size=2) is supported, got {kernel_size!r}")
        self.kernel_size = kernel_size
        self.stride = kernel_size

    def __call__(self, x):
        return max_pool_2x2(x)


class AdaptiveMaxPool2d(nnx.Module):
    def __init__(self, output_size=(4, 4)):
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        ok = isinstance(size, (tuple, list)) and len(size) == 2
        if not ok or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in size):
            raise InputError(
                f"AdaptiveMaxPool2d's output_size is an int or (height, width) of ints >= 1 (as torch's, "
                f"without None), got {output_size!r}"
            )
        self.output_size = (size[0], size[1])  # torch's AdaptiveMaxPool2d(4) is (4, 4)

    def __call__(self, x):
        return adaptive_max_pool(x, self.output_size)


class Flatten(nnx.Module):
    """Flattens NHWC images in PyTorch's (C, H, W) order, so dense weights match torch's."""

    def __init__(self):
        self.start_dim = 1
        self.end_dim = -1

    def __call__(self, x):
        if x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(x.shape[0], -1)


class ReLU(nnx.Module):
    def __call__(self, x):
        return jax.nn.relu(x)


class Tanh(nnx.Module):
    def __call__(self, x):
        return jnp.tanh(x)


class Sigmoid(nnx.Module):
    def __call__(self, x):
        return jax.nn.sigmoid(x)


ACTIVATION_MODULES = {name: globals()[cls] for name, cls in ACTIVATIONS.items()}
