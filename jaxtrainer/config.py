"""The homework's network description, checked once so that bad input fails before any compile."""

from __future__ import annotations

import math
import numbers
import os
from typing import NamedTuple, Tuple

from .errors import InputError
from .registry import ACTIVATIONS, NETWORK_TYPES, choose


class NetworkConfiguration(NamedTuple):
    """Field names, order and defaults are the homework's own (they are graded)."""

    n_channels: Tuple[int, ...] = (16, 32, 48)
    kernel_sizes: Tuple[int, ...] = (3, 3, 3)
    strides: Tuple[int, ...] = (1, 1, 1)
    dense_hiddens: Tuple[int, ...] = (256, 256)


def shown(value) -> str:
    """`repr(value)` with a numpy scalar as the number it holds: "got -1.0", not "got np.float64(-1.0)"."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return repr(value.item())
    return repr(value)


def check_network_type(network_type: str) -> str:
    """One of NETWORK_TYPES (mlp, cnn), exactly: unlike an activation, no other case is accepted."""
    return choose("network_type", network_type, NETWORK_TYPES)


def check_activation(name: str) -> str:
    """Students' tests pass "ReLU" or "SIGMOID": any case is accepted."""
    lower = name.lower() if isinstance(name, str) else name
    if lower not in ACTIVATIONS:
        choose("activation", name, ACTIVATIONS, " (any case)")
    return lower


def _number(value, kind, valid, must: str):
    """`value` if it is a `kind` for which `valid` holds (a bool is refused, not read as 1)."""
    if isinstance(value, bool) or not isinstance(value, kind) or not valid(value):
        raise InputError(f"{must}, got {shown(value)}")
    return value


def _positive_ints(field: str, values) -> Tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        raise InputError(f"{field} must be a tuple of positive ints, got {shown(values)}") from None
    must = lambda i: f"{field}[{i}] must be a positive int"
    return tuple(int(_number(v, numbers.Integral, lambda v: v > 0, must(i))) for i, v in enumerate(values))


def check_network_configuration(cfg) -> NetworkConfiguration:
    """Any object with the four fields (a student's own NamedTuple too) as ours; anything else refused."""
    if not all(hasattr(cfg, field) for field in NetworkConfiguration._fields):
        raise TypeError(
            f"net_config must be a NetworkConfiguration{NetworkConfiguration._fields}, got {cfg!r}"
        )
    return NetworkConfiguration(*(getattr(cfg, field) for field in NetworkConfiguration._fields))


def check_dense(cfg: NetworkConfiguration) -> None:
    """The dense hidden sizes, positive ints (none: a linear model): all an MLP needs checked."""
    _positive_ints("dense_hiddens", check_network_configuration(cfg).dense_hiddens)


def check_cnn(cfg: NetworkConfiguration, image_hw: Tuple[int, int] | None = None) -> Tuple[int, int] | None:
    """The conv fields; with an image size, also that no conv or pool gets too small an input (the
    layer named up front, not deep in the forward pass), and the size entering AdaptiveMaxPool2d."""
    cfg = check_network_configuration(cfg)
    channels, kernels, strides = (_positive_ints(f, getattr(cfg, f)) for f in cfg._fields[:3])
    check_dense(cfg)
    if not channels:
        raise InputError("n_channels must name at least one conv layer for a cnn, got ()")
    if not len(channels) == len(kernels) == len(strides):
        raise InputError(
            "n_channels, kernel_sizes and strides must have the same length, got "
            f"{len(channels)}, {len(kernels)} and {len(strides)} ({cfg!r})"
        )
    if image_hw is None:
        return None
    h, w = image_hw
    for i, (k, s) in enumerate(zip(kernels, strides)):
        if h < k or w < k:
            raise InputError(
                f"conv layer {i} (kernel {k}) gets a {h}x{w} input: the image is too small for this "
                f"configuration; the spatial size must stay >= the kernel size at every conv"
            )
        h, w = (h - k) // s + 1, (w - k) // s + 1
        if i < len(kernels) - 1:
            if h < 2 or w < 2:
                raise InputError(
                    f"max-pool after conv layer {i} gets a {h}x{w} input and would output "
                    f"{h // 2}x{w // 2}: the image is too small for this configuration"
                )
            h, w = h // 2, w // 2
    return h, w


def check_lr(lr) -> float:
    """A finite number > 0, as a float."""
    must = "lr must be a finite number > 0"
    return float(_number(lr, numbers.Real, lambda v: math.isfinite(v) and v > 0, must))


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """An int > 0 (`name`: what the message calls it)."""
    return int(_number(batch_size, numbers.Integral, lambda v: v > 0, f"{name} must be an int > 0"))


def check_n_epochs(n_epochs) -> int:
    """An int >= 0."""
    return int(_number(n_epochs, numbers.Integral, lambda v: v >= 0, "n_epochs must be an int >= 0"))


SEED_RANGE = (0, 2**32 - 1)  # JAX's PRNG keys hold 32 bits: seeds 2**32 apart would draw the same


def check_seed(seed) -> int:
    """One seed range for every entry point: distinct seeds in it give distinct streams."""
    low, high = SEED_RANGE
    must = f"seed must be an int in [{low}, {high}] (0 to 2**32 - 1)"
    return int(_number(seed, numbers.Integral, lambda v: low <= v <= high, must))


BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two moments


def training_memory() -> int:
    """Bytes the default device can hold: its own memory on an accelerator, the machine's on CPU."""
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    return int(stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_parameter_memory(n_parameters: int) -> int:
    """A network whose training state cannot fit in memory is refused before any weight is drawn."""
    need, have = BYTES_PER_PARAMETER * n_parameters, training_memory()
    if need > have:
        raise InputError(
            f"the network has {n_parameters:,} parameters: training it needs {need / 2**30:,.1f} GiB "
            f"(weights, gradients and Adam's two moments), more than the {have / 2**30:,.1f} GiB here; "
            "choose smaller layers"
        )
    return n_parameters
