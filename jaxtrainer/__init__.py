"""jaxtrainer: the homework's MLP/CNN regressors trained as compiled JAX programs.

The names below load on first use, so `import jaxtrainer.<module>` pays only for what that module
needs (the Bayesian-network lab and `jaxtrainer --help` never load JAX).
"""

import importlib

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, `jaxtrainer --version` prints it

_EXPORTS = {
    "NetworkConfiguration": "config",
    "Settings": "settings",
    "build_cnn": "models",
    "build_mlp": "models",
    "build_network": "models",
    "TrainState": "train",
    "evaluate": "train",
    "init_state": "train",
    "train_step": "train",
    "Loop": "sweeps",
    "Spec": "spec",
    "SweepResult": "sweeps",
    "fit": "sweeps",
    "fit_sweep": "sweeps",
    "sweep": "sweeps",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxtrainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
