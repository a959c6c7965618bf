"""One training run from the command line: data, network, fit, and its files.

Every epoch ends with a checkpoint and the logs so far on disk, so a run killed at any instant
resumes (`resume=True`) from its last finished epoch with results identical to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os
import time

from flax import nnx

from .. import checkpoint, data, models, plots, results, train
from ..config import NetworkConfiguration, check_batch_size, check_lr, check_n_epochs


@dataclasses.dataclass(frozen=True)
class RunConfig:
    network: str = "mlp"
    net_config: NetworkConfiguration = NetworkConfiguration()
    lr: float = 1e-3
    batch_size: int = 128
    activation: str = "relu"
    epochs: int = 5
    dataset: str = "digits"
    data_dir: str | None = None  # where named datasets are read; the data fingerprint identifies them
    seed: int = 197331
    conv_impl: str | None = None

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "net_config": self.net_config._asdict()}

    def identity(self, ds: data.Dataset) -> dict:
        """What a checkpoint must match to be resumed: everything but how the run is computed
        (conv_impl) and where the data was read from (its fingerprint identifies it)."""
        return {
            **self.as_dict(),
            "conv_impl": None,
            "data_dir": None,
            "data": data.fingerprint(ds.train, ds.test),
        }


def run(
    cfg: RunConfig, out_dir: str, progress: bool = True, resume: bool = False, export: str | None = None
) -> dict:
    """Train and write logs.json, logs.csv, curves.png and checkpoint.npz under `out_dir` (and the
    weights as a PyTorch state_dict to `export`). Arguments are checked before any data is read."""
    check_lr(cfg.lr)
    check_batch_size(cfg.batch_size)
    check_n_epochs(cfg.epochs)
    ds = data.load(cfg.dataset, data_dir=cfg.data_dir)
    model = models.build_network(
        cfg.network, ds.image_shape, cfg.net_config, cfg.activation, seed=cfg.seed, conv_impl=cfg.conv_impl
    )
    graphdef, state = train.init_state(model, cfg.lr)
    identity = cfg.identity(ds)
    meta = {
        **cfg.as_dict(),
        "dataset_name": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "parameters": models.count_parameters(model),
    }
    logs = None
    if resume:
        state, epoch, logs = checkpoint.load(out_dir, state, identity)
        print(f"resuming after epoch {epoch} from {os.path.join(out_dir, checkpoint.CHECKPOINT)}")

    def save(epoch, state, logs):
        results.write_logs(logs, out_dir, meta)
        checkpoint.save(out_dir, state, epoch, logs, identity)

    start = time.perf_counter()
    state, logs = train.fit(
        graphdef,
        state,
        ds.train,
        ds.test,
        cfg.epochs,
        batch_size=cfg.batch_size,
        progress=progress,
        on_epoch=save,
        logs=logs,
    )
    meta["seconds"] = time.perf_counter() - start
    meta["diverged_at_epoch"] = train.divergence_epoch(logs)
    paths = results.write_logs(logs, out_dir, meta)
    checkpoint.save(out_dir, state, len(logs["train_loss"]) - 1, logs, identity)
    paths["png"] = os.path.join(out_dir, "curves.png")
    plots.training_curves(logs, paths["png"], title=f"{cfg.network} on {ds.name}, lr={cfg.lr:g}")
    if export:
        trained = models.state_dict(nnx.merge(graphdef, state.params))
        paths["export"] = checkpoint.export_state_dict(trained, export)
    return {"logs": logs, "paths": paths, "meta": meta}
