"""The engine's layers under PyTorch's names, in a Sequential that answers the questions graders ask
of a ``torch.nn.Sequential``: ``children()``, ``parameters()``, ``state_dict()``, indexing."""

from __future__ import annotations

from collections import OrderedDict

import jax
import numpy as np
from flax import nnx

from jaxtrainer import models, presets
from jaxtrainer.data.dataset import numeric_array
from jaxtrainer.errors import InputError
from jaxtrainer.layers import AdaptiveMaxPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh

__all__ = [
    "AdaptiveMaxPool2d",
    "Conv2d",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "manual_seed",
]


class _Generator:
    """The facade's global source of initial weights, like torch's default generator."""

    rngs = nnx.Rngs(params=presets.SEED)


def manual_seed(seed: int) -> None:
    """Seeds the generator that the facade's layers draw their initial weights from, as torch.manual_seed
    does for torch's."""
    _Generator.rngs = nnx.Rngs(params=seed)


def default_rngs() -> nnx.Rngs:
    """The generator seeded by `manual_seed`, which the builders pass to the layers."""
    return _Generator.rngs


def _device(device) -> jax.Device | None:  # jax.Device is a class  # pyright: ignore[reportInvalidTypeForm]
    """The JAX device for a torch device ("cpu", "cuda", "cuda:N", a ``torch.device``, an int N):
    None for the cpu (a no-op), the N-th GPU for cuda; without it, torch's RuntimeError."""
    text = f"cuda:{device}" if isinstance(device, int) and not isinstance(device, bool) else str(device)
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or not (index == "" or index.isdigit()):
        raise RuntimeError(
            f"device must be 'cpu', 'cuda' or 'cuda:N' (or a torch.device of those), got {device!r}"
        )
    if kind == "cpu":
        return None
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    n = int(index or 0)
    if n >= len(gpus):
        seen = f"{len(gpus)} GPU{'s' * (len(gpus) != 1)}" if gpus else f"no GPU, only {jax.default_backend()}"
        raise RuntimeError(
            f"cannot use {text}: JAX sees {seen} on this machine; use 'cpu', or "
            "torch.device('cuda' if torch.cuda.is_available() else 'cpu')"
        )
    return gpus[n]


class _Placement:
    """torch's ``cpu()`` and ``cuda()``, through the class's ``to()``."""

    def cpu(self):
        """Itself: the arrays already live on the host."""
        return self

    def cuda(self, device=0):
        """A copy on the GPU `device`, as torch's (an error where JAX sees none)."""
        return self.to(device if not isinstance(device, int) else f"cuda:{device}")  # pyright: ignore[reportAttributeAccessIssue]


class Parameter(_Placement, np.ndarray):
    """A read-only numpy copy of a weight with torch's ``numel()``: graders count parameters with
    ``sum(p.numel() for p in model.parameters())``."""

    def numel(self) -> int:
        """The number of elements, as torch's."""
        return int(self.size)

    @property
    def requires_grad(self) -> bool:
        """Always True: every weight of the homework's networks is trained."""
        return True

    def to(self, device, *args, **kwargs) -> Parameter:
        """A read-only copy stays one: the device is checked (as torch would), the copy returned."""
        _device(device)
        return self


def _parameter(array) -> Parameter:
    return np.asarray(array, dtype=np.float32).view(Parameter)


class Sequential(_Placement, models.Sequential):
    def children(self):
        """The layers in order, as torch's (a shared layer once per position here)."""
        return iter(self.layers)

    def modules(self):
        """The network itself, then its layers, as torch's."""
        yield self
        yield from self.layers

    def named_parameters(self):
        """(name, weight) pairs under torch's names ("0.weight", "0.bias", ...)."""
        for key, p in models.named_parameters(self).items():
            yield key, _parameter(p[...])

    def parameters(self):
        """The weights in torch's order."""
        for _, p in self.named_parameters():
            yield p

    def state_dict(self) -> OrderedDict[str, Parameter]:
        """The weights under torch's names, as read-only numpy copies."""
        return OrderedDict(self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Accepts numpy arrays or torch tensors in PyTorch's layouts (strict key matching only)."""
        if not strict:
            raise InputError("only strict=True is supported: every key must match")
        models.load_state_dict(self, state_dict)

    def __call__(self, x):
        if hasattr(x, "detach"):  # a torch tensor (bfloat16 read exactly, a meta tensor refused)
            x = numeric_array(x, "the input").astype(np.float32)
        return super().__call__(x)

    forward = __call__

    def to(self, device, *args, **kwargs) -> Sequential:
        """``model.to(device)`` as students write it: the cpu is a no-op; cuda places the weights
        on that GPU (JAX's), and is refused in one line where there is none."""
        target = _device(device)
        if target is not None:
            nnx.update(self, jax.device_put(nnx.state(self, nnx.Param), target))
        return self

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {_describe(layer)}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    __str__ = __repr__  # nnx's own __str__ would print every array


def _describe(layer) -> str:
    name = type(layer).__name__
    if isinstance(layer, Linear):
        return f"{name}(in_features={layer.in_features}, out_features={layer.out_features}, bias=True)"
    if isinstance(layer, Conv2d):
        return (
            f"{name}({layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, "
            f"stride={layer.stride})"
        )
    if isinstance(layer, MaxPool2d):
        return f"{name}(kernel_size={layer.kernel_size}, stride={layer.stride})"
    if isinstance(layer, AdaptiveMaxPool2d):
        return f"{name}(output_size={layer.output_size})"
    return f"{name}()"
