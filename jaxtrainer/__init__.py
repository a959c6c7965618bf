"""jaxtrainer: the homework's MLP/CNN regressors trained as compiled JAX programs."""

from . import compile_cache
from .config import NetworkConfiguration
from .models import build_cnn, build_mlp, build_network

# The function shadows its module as an attribute of the package: import the module's other names
# with `from jaxtrainer.sweep import fit_sweep` (which reads sys.modules), not `jaxtrainer.sweep.x`.
from .sweep import SweepResult, fit_sweep, sweep
from .train import TrainState, evaluate, fit, init_state, train_epoch, train_step

compile_cache.enable()  # programs compiled by an earlier command are read back, not compiled again

__all__ = [
    "NetworkConfiguration",
    "TrainState",
    "build_cnn",
    "build_mlp",
    "build_network",
    "SweepResult",
    "evaluate",
    "fit",
    "fit_sweep",
    "init_state",
    "sweep",
    "train_epoch",
    "train_step",
]
