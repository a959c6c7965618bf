"""jaxtrainer: the homework's MLP/CNN regressors trained as compiled JAX programs."""

from . import xla_flags

xla_flags.configure()  # before JAX initialises its backend

from .config import NetworkConfiguration  # noqa: E402
from .models import build_cnn, build_mlp, build_network  # noqa: E402
from .train import TrainState, evaluate, fit, init_state, train_epoch, train_step  # noqa: E402

__all__ = ["NetworkConfiguration", "TrainState", "build_cnn", "build_mlp", "build_network",
           "evaluate", "fit", "init_state", "train_epoch", "train_step"]
