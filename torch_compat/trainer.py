"""The homework's ``Trainer`` with its exact signatures, on the JAX engine. Each training call reads
the network's weights, runs one compiled program and writes them back; flavours (grading.py) differ
only in ``self.network``, its initial weights (``_seed``) and its sync (``_engine_network``,
``_pull``, ``_push``)."""

from __future__ import annotations

import copy
import math
import numbers
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxtrainer import compile_cache, config, data, models, presets, runs, train
from jaxtrainer.config import NetworkConfiguration, shown
from jaxtrainer.data.dataset import numeric_array
from jaxtrainer.data.loader import BatchLoader
from jaxtrainer.equivariance import equivariance_maps
from jaxtrainer.errors import InputError
from jaxtrainer.layers import ACTIVATION_MODULES
from jaxtrainer.plots import equivariance_figure
from jaxtrainer.settings import Settings
from jaxtrainer.sweeps import Loop, fit

from . import nn


class Adam:
    """The optimizer's state, with torch's ``param_groups``: ``param_groups[0]["lr"] = x`` is the next
    step's learning rate, an argument of the compiled step (inject_hyperparams): nothing recompiles."""

    def __init__(self, network: nn.Sequential, lr: float):
        self.graphdef, state = train.init_state(network, lr)
        self._state = state.opt_state
        self.param_groups = [{"lr": lr}]

    @property
    def state(self):
        """The optimizer state, holding the learning rate ``param_groups`` says now."""
        lr = self.param_groups[0]["lr"]
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr < 0:
            # optax.inject_hyperparams' state (typed as any optimizer state)
            raise InputError(f"optimizer.param_groups[0]['lr'] must be a finite number >= 0, got {shown(lr)}")
        hyperparams = {**self._state.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)}  # pyright: ignore[reportAttributeAccessIssue]
        return self._state._replace(hyperparams=hyperparams)  # pyright: ignore[reportAttributeAccessIssue]

    @state.setter
    def state(self, state) -> None:
        self._state = state

    def __deepcopy__(self, memo):
        """An independent copy (as torch's). Deep-copying the state would turn its NNX Param nodes
        into bare arrays, which the compiled step refuses; the immutable arrays are shared instead."""
        new = copy.copy(self)
        new._state = jax.tree.map(lambda leaf: leaf, self._state)
        new.param_groups = copy.deepcopy(self.param_groups, memo)
        return new


def _array(x, name: str = "the batch"):
    """A batch as float32, refused by name when it holds no real numbers or no example."""
    if hasattr(x, "detach"):  # a torch tensor (bfloat16 read exactly, a meta tensor refused)
        x = numeric_array(x, name)
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if np.dtype(x.dtype).kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), got dtype {x.dtype}")
    if not np.shape(x) or np.shape(x)[0] == 0:
        raise InputError(f"{name} must hold at least one example, got shape {tuple(np.shape(x))}")
    return jnp.asarray(x, dtype=jnp.float32)


class Trainer:
    """The homework's Trainer: the network of `network_type` and `net_config`, trained with Adam at `lr`
    on MSE, loss and MAE logged per epoch. Constructing one turns on JAX's persistent compilation
    cache (`jaxtrainer.compile_cache`) unless JAXTRAINER_NO_CACHE=1.

    Args (the homework's first five, then keyword-only extras):
        network_type: "mlp" or "cnn".
        net_config: the layer sizes (`NetworkConfiguration`).
        lr: Adam's learning rate; `optimizer.param_groups[0]["lr"]` changes it later.
        batch_size: examples per training step.
        activation_name: "relu", "tanh" or "sigmoid".
        dataset: a name or folder, or ((X_train, y_train), (X_test, y_test)); None: the homework's.
        seed: seeds the initial weights and the data order.
        conv_impl: how the CNN's convolutions are computed (None: the default for this backend).
        progress: show a progress bar while training.
        checkpoint_dir: a folder where `train_loop` saves each epoch and resumes from.
        data_dir: where a named dataset's files are.
    """

    def __init__(
        self,
        network_type: str = "mlp",
        net_config: NetworkConfiguration = NetworkConfiguration(),
        lr: float = 0.001,
        batch_size: int = 128,
        activation_name: str = "relu",
        *,
        dataset=None,
        seed: int = presets.SEED,
        conv_impl: str | None = None,
        progress: bool = True,
        checkpoint_dir: str | None = None,
        data_dir: str | None = None,
    ):
        config.check_network_type(network_type)
        compile_cache.enable()
        self.network_type = network_type
        self.net_config = config.check_network_configuration(net_config)
        self.lr = config.check_lr(lr)
        self.batch_size = config.check_batch_size(batch_size)
        self.seed = config.check_seed(seed)
        self.conv_impl = conv_impl
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self._epochs_saved = 0  # epochs this trainer has checkpointed in checkpoint_dir
        self.train, self.test = self._load(dataset, data_dir)
        self._seed(seed)
        self.activation = self.create_activation_function(activation_name)
        c, h, w = self._arrays()[0][0].shape[1:]
        if network_type == "mlp":
            self.network = self.create_mlp(c * h * w, net_config, self.activation)
        else:
            config.check_cnn(net_config, (h, w))
            self.network = self.create_cnn(c, net_config, self.activation, conv_impl=conv_impl)
        self.optimizer = Adam(self._engine_network(), self.lr)
        self.train_logs = {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}

    @staticmethod
    def load_dataset(dataset=None, data_dir=None, batch_size: int = 128, seed: int = presets.SEED):
        """((X_train, y_train), (X_test, y_test)), NCHW float32 images and (N, 1) targets; for the loader
        variant (SVHN, CIFAR-10), two BatchLoaders instead, the training one shuffled with `seed`."""
        ds = data.load(dataset, data_dir=data_dir)
        if ds.variant == "loader":
            return (
                BatchLoader(ds.X_train, ds.y_train, batch_size, shuffle=True, seed=seed),
                BatchLoader(ds.X_test, ds.y_test, batch_size, shuffle=False),
            )
        return ds.train, ds.test

    def _load(self, dataset, data_dir):
        """The loader variant as BatchLoaders, the tensor one through the flavour's `load_dataset`."""
        ds = data.load(dataset, data_dir=data_dir)
        if ds.variant == "loader":
            return Trainer.load_dataset(ds, batch_size=self.batch_size, seed=self.seed)
        return self.load_dataset(ds)

    def _arrays(self):
        """((X_train, y_train), (X_test, y_test)) whichever the variant."""
        if isinstance(self.train, BatchLoader):
            # the test set is a BatchLoader when the training set is
            return (self.train.X, self.train.y), (self.test.X, self.test.y)  # pyright: ignore[reportAttributeAccessIssue]
        return self.train, self.test

    @staticmethod
    def create_mlp(input_dim: int, net_config: NetworkConfiguration, activation) -> nn.Sequential:
        net = models.build_mlp(input_dim, net_config, _activation_name(activation), rngs=nn.default_rngs())
        return nn.Sequential(*net.layers)

    @staticmethod
    def create_cnn(
        in_channels: int, net_config: NetworkConfiguration, activation, *, conv_impl: str | None = None
    ) -> nn.Sequential:
        net = models.build_cnn(
            in_channels, net_config, _activation_name(activation), rngs=nn.default_rngs(), conv_impl=conv_impl
        )
        return nn.Sequential(*net.layers)

    @staticmethod
    def create_activation_function(activation_str: str):
        return models.make_activation(activation_str)

    def _seed(self, seed: int) -> None:
        """Seed the generator the builders draw initial weights from."""
        nn.manual_seed(seed)

    def _engine_network(self) -> nn.Sequential:
        """The NNX network the engine trains: `self.network` itself here."""
        return self.network

    def _pull(self) -> None:
        """Copy `self.network`'s weights into the engine's network (here: nothing)."""

    def _push(self) -> None:
        """Copy the engine's weights back into `self.network` (here: nothing)."""

    def _params(self):
        self._pull()
        return nnx.state(self._engine_network(), nnx.Param)

    def _state(self) -> train.TrainState:
        return train.TrainState(self._params(), self.optimizer.state)

    def _commit(self, state: train.TrainState) -> None:
        nnx.update(self._engine_network(), state.params)
        self.optimizer.state = state.opt_state
        self._push()

    def compute_loss_and_mae(self, X, y) -> Tuple:
        """MSE and MAE of the batch; differentiate them with jax.grad over the network's parameters."""
        metrics = train.REGRESSION.per_example(self._engine_network()(_array(X, "X")), _array(y, "y"))
        return jnp.mean(metrics["loss"]), jnp.mean(metrics["mae"])

    def _identity(self) -> dict:
        """What a checkpoint must match to be resumed by this trainer."""
        return {
            "kind": "trainer",
            "network_type": self.network_type,
            "net_config": self.net_config._asdict(),
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "network": [type(layer).__name__ for layer in self._engine_network().layers],
            "data": data.fingerprint(*self._arrays()),
        }

    def training_step(self, X_batch, y_batch) -> Tuple:
        """One Adam step; returns the batch's (loss, mae) before the update."""
        X_batch, y_batch = _array(X_batch, "X_batch"), _array(y_batch, "y_batch")
        models.check_batch(self._engine_network(), X_batch.shape, y_batch.shape)
        state, metrics = train.train_step(self.optimizer.graphdef, self._state(), X_batch, y_batch)
        self._commit(state)
        return metrics["loss"], metrics["mae"]

    def evaluate(self, X, y) -> Tuple:
        """Mean loss and MAE over the given set, without updating anything."""
        X, y = _array(X, "X"), _array(y, "y")
        models.check_batch(self._engine_network(), X.shape, y.shape)
        metrics = train.evaluate(self.optimizer.graphdef, self._params(), X, y)
        return metrics["loss"], metrics["mae"]

    def log_metrics(self, X_train, y_train, X_test, y_test) -> None:
        """Appends the train and test loss and MAE to `train_logs`."""
        for split, (X, y) in (("train", (X_train, y_train)), ("test", (X_test, y_test))):
            loss, mae = self.evaluate(X, y)
            self.train_logs[f"{split}_loss"].append(float(loss))
            self.train_logs[f"{split}_mae"].append(float(mae))

    def train_loop(self, n_epochs: int, resume: bool = False, overwrite: bool = False) -> dict:
        """Logs before training and after each epoch (n_epochs + 1 entries; the loader variant: n_epochs
        epoch means). With `checkpoint_dir` every epoch ends with a checkpoint (`jaxtrainer.runs`):
        `resume=True` continues an interrupted call exactly, `overwrite=True` starts over, and a
        folder holding another trainer's run is refused otherwise."""
        config.check_n_epochs(n_epochs)
        if resume and self.checkpoint_dir is None:
            raise InputError("resume=True needs a checkpoint folder: Trainer(..., checkpoint_dir=DIR)")
        if self.checkpoint_dir is None:
            return self._extend(self._fit(self._state(), n_epochs, None, None, resume=False))
        mode = "overwrite" if overwrite else "resume" if resume else "append"
        own = self._epochs_saved if mode == "append" else None  # append: this trainer's own run only
        with runs.Run(
            self.checkpoint_dir, self._identity(), mode=mode, epochs=own, hint="overwrite=True"
        ) as folder:
            previous, state, logs = {k: list(v) for k, v in self.train_logs.items()}, self._state(), None
            if resume:
                state, saved = folder.restore(state)
                # the restored optimizer's learning rate, as torch's optimizer.load_state_dict gives
                self.optimizer.param_groups[0]["lr"] = float(state.opt_state.hyperparams["learning_rate"])
                if saved is not None:
                    previous, logs = saved["previous"], saved["current"]
                    ran = self._epochs_in(logs)
                    if ran > n_epochs:
                        raise runs.RunError(
                            f"{self.checkpoint_dir}: the checkpoint's call ran {ran} epochs, {n_epochs} were "
                            f"asked: ask {ran} or more to continue it, or pass overwrite=True to start over"
                        )
            base = folder.epochs_done - self._epochs_in(logs)

            def save(epoch, state, logs):
                self._epochs_saved = base + epoch
                folder.checkpoint(state, base + epoch, {"previous": previous, "current": logs})

            logs = self._fit(state, n_epochs, save, logs, resume)
            self.train_logs = {k: list(v) for k, v in previous.items()}
            return self._extend(logs)

    def _epochs_in(self, logs) -> int:
        """Epochs a call's logs hold (the tensor variant's first entry is before training)."""
        if not logs:
            return 0
        return len(logs["train_loss"]) - (not isinstance(self.train, BatchLoader))

    def _extend(self, logs: dict) -> dict:
        for key, values in logs.items():
            self.train_logs[key].extend(values)
        return self.train_logs

    def _fit(self, state, n_epochs, on_epoch, logs, resume):
        """The engine's loop, then the state back into the network; the call's logs. The loader variant's
        epoch trains on the loader's next order; a resumed run started from a fresh loader (epoch k:
        pass k - 1)."""
        settings, order = Settings(batch_size=self.batch_size), None
        if isinstance(self.train, BatchLoader):
            loader = self.train
            first = 0 if resume else loader.epoch
            test_batch_size = self.test.batch_size  # a BatchLoader too  # pyright: ignore[reportAttributeAccessIssue]
            settings = Settings(
                batch_size=loader.batch_size, variant="loader", test_batch_size=test_batch_size
            )
            order = lambda epoch: loader.order(first + epoch - 1)
        loop = Loop(order=order, progress=self.progress, on_epoch=on_epoch)
        state, logs = fit(
            self.optimizer.graphdef, state, *self._arrays(), n_epochs, settings, logs=logs, loop=loop
        )
        if isinstance(self.train, BatchLoader):
            self.train.epoch = first + len(logs["train_loss"])
        self._commit(state)
        return logs

    def test_equivariance(self, path: str = "equivariance.png"):
        """The homework's 2x2 figure on the first training image rescaled to [0, 1]; saved to `path`."""
        image = np.clip(np.asarray(self._arrays()[0][0][0]).mean(axis=0) * 0.5 + 0.5, 0.0, 1.0)
        maps = equivariance_maps(image, seed=self.seed)
        return equivariance_figure(maps, path)


def _activation_name(activation) -> str:
    """The engine's name for an activation module (an instance or class of ReLU/Tanh/Sigmoid)."""
    cls = activation if isinstance(activation, type) else type(activation)
    for name, module in ACTIVATION_MODULES.items():
        if issubclass(cls, module) or cls.__name__ == module.__name__:
            return name
    raise InputError(f"activation must be a ReLU, Tanh or Sigmoid module, got {activation!r}")
