"""jaxtrainer: the homework's MLP/CNN regressors trained as compiled JAX programs. The names below load
on first use, so `jaxtrainer --help` and the Bayesian-network lab never load JAX."""

import importlib

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, `jaxtrainer --version` prints it

_EXPORTS = {
    name: module
    for module, names in {
        "config": "NetworkConfiguration",
        "settings": "Settings",
        "models": "build_cnn build_mlp build_network",
        "train": "TrainState evaluate init_state train_step",
        "sweeps": "Loop SweepResult fit fit_sweep sweep",
        "spec": "Spec",
    }.items()
    for name in names.split()
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxtrainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
