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
    """`repr(value)` with a numpy scalar as the number it holds: a student who passed
    np.float64(-1.0) reads "got -1.0", not numpy's repr."""
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


def _positive_ints(field: str, values) -> Tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        raise InputError(f"{field} must be a tuple of positive ints, got {shown(values)}") from None
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
            raise InputError(f"{field}[{i}] must be a positive int, got {shown(v)}")
    return tuple(int(v) for v in values)


def check_network_configuration(cfg) -> NetworkConfiguration:
    """Any object with the four fields (a student's own NamedTuple too), as ours; anything else
    is refused by name rather than failing on a missing attribute."""
    if not all(hasattr(cfg, field) for field in NetworkConfiguration._fields):
        raise TypeError(
            f"net_config must be a NetworkConfiguration{NetworkConfiguration._fields}, got {cfg!r}"
        )
    return NetworkConfiguration(*(getattr(cfg, field) for field in NetworkConfiguration._fields))


def check_dense(cfg: NetworkConfiguration) -> None:
    """The dense hidden sizes, a tuple of positive ints (empty: a linear model); all an MLP needs checked."""
    _positive_ints("dense_hiddens", check_network_configuration(cfg).dense_hiddens)


def check_cnn(cfg: NetworkConfiguration, image_hw: Tuple[int, int] | None = None) -> Tuple[int, int] | None:
    """Validate the conv fields; with an image size, also check that no conv gets an empty input
    and return the spatial size entering AdaptiveMaxPool2d (3x3 for the homework's CNN on 28x28).

    PyTorch reports a too-small input deep inside the forward pass with an obscure message; here the
    failing layer and the size it would get are named up front.
    """
    cfg = check_network_configuration(cfg)
    channels = _positive_ints("n_channels", cfg.n_channels)
    kernels = _positive_ints("kernel_sizes", cfg.kernel_sizes)
    strides = _positive_ints("strides", cfg.strides)
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
    """A finite number > 0, as a float; a bool is refused, not read as 1."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise InputError(f"lr must be a finite number > 0, got {shown(lr)}")
    return float(lr)


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """An int > 0 (`name`: what the message calls it); a bool is refused, not read as 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise InputError(f"{name} must be an int > 0, got {shown(batch_size)}")
    return int(batch_size)


def check_n_epochs(n_epochs) -> int:
    """An int >= 0; a bool is refused, not read as 1."""
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, numbers.Integral) or n_epochs < 0:
        raise InputError(f"n_epochs must be an int >= 0, got {shown(n_epochs)}")
    return int(n_epochs)


SEED_RANGE = (0, 2**32 - 1)  # JAX's PRNG keys hold 32 bits: seeds 2**32 apart would draw the same


def check_seed(seed) -> int:
    """One seed range for every entry point (CLI, facade, sweeps): distinct seeds in it give
    distinct streams."""
    low, high = SEED_RANGE
    # an Integral compares with ints (numbers.Integral's stub has no __le__)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not low <= seed <= high:  # pyright: ignore[reportOperatorIssue]
        raise InputError(f"seed must be an int in [{low}, {high}] (0 to 2**32 - 1), got {shown(seed)}")
    return int(seed)


BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two moments


def training_memory() -> int:
    """Bytes the default device can hold: its own memory on an accelerator, the machine's on CPU."""
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    return int(stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_parameter_memory(n_parameters: int) -> int:
    """A network whose training state cannot fit in memory is refused by its size before any
    weight is drawn (not as an allocation failure minutes later, deep inside XLA)."""
    need, have = BYTES_PER_PARAMETER * n_parameters, training_memory()
    if need > have:
        raise InputError(
            f"the network has {n_parameters:,} parameters: training it needs {need / 2**30:,.1f} GiB "
            f"(weights, gradients and Adam's two moments), more than the {have / 2**30:,.1f} GiB here; "
            "choose smaller layers"
        )
    return n_parameters
