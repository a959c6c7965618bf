"""One training run from the command line: data, network, fit, and its files in one run folder.

Every epoch ends with a checkpoint and the logs so far on disk (`runs.Run`), so a run killed at any
instant continues, when the same command is run again, from its last finished epoch with results
identical to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses

from flax import nnx

from .. import data, models, plots, presets, state_dict
from ..config import NetworkConfiguration, check_lr, check_n_epochs, check_seed
from ..runs import Run, check_writable_folder
from ..settings import Settings
from ..sweeps import fit
from ..train import divergence_epoch, init_state


@dataclasses.dataclass(frozen=True)
class RunConfig:
    network: str = "mlp"
    net_config: NetworkConfiguration = NetworkConfiguration()
    lr: float = presets.DEFAULT_LR
    batch_size: int = presets.BATCH_SIZE
    activation: str = presets.ACTIVATION
    epochs: int = 5
    dataset: str = "digits"
    data_dir: str | None = None  # where named datasets are read; the data fingerprint identifies them
    seed: int = presets.SEED
    conv_impl: str | None = None

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "net_config": self.net_config._asdict()}

    def identity(self, ds: data.Dataset) -> dict:
        """What makes two runs the same run: everything but the epoch count (more may be asked),
        how the run is computed (conv_impl) and where the data was read from (its fingerprint
        identifies it)."""
        same = {k: v for k, v in self.as_dict().items() if k not in ("epochs", "conv_impl", "data_dir")}
        return {"kind": "train", **same, "data": data.fingerprint(ds.train, ds.test)}


def run(
    cfg: RunConfig,
    out_dir: str,
    progress: bool = True,
    mode: str = "continue",
    export: str | None = None,
    say=print,
) -> dict:
    """Train and write logs.json, logs.csv, curves.png and checkpoint.npz under `out_dir` (and the
    weights as a PyTorch state_dict to `export`). Arguments and outputs are checked before any data
    is read; `mode` is the run folder's (`runs.Run`)."""
    check_lr(cfg.lr)
    check_n_epochs(cfg.epochs)
    check_seed(cfg.seed)
    settings = Settings(batch_size=cfg.batch_size)
    if export:
        state_dict.check_export_path(export)
    check_writable_folder(out_dir)
    ds = data.load(cfg.dataset, data_dir=cfg.data_dir)
    model = models.build_network(
        cfg.network, ds.image_shape, cfg.net_config, cfg.activation, seed=cfg.seed, conv_impl=cfg.conv_impl
    )
    graphdef, state = init_state(model, cfg.lr)
    meta = {
        **cfg.as_dict(),
        "dataset_name": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "parameters": models.count_parameters(model),
    }
    with Run(out_dir, cfg.identity(ds), mode=mode, epochs=cfg.epochs) as folder:
        state, logs = folder.restore(state)

        def save(epoch, state, logs):
            meta["seconds"] = folder.elapsed()  # the earlier processes' time too
            meta["diverged_at_epoch"] = divergence_epoch(logs)
            folder.write_logs("", logs, meta, epoch)
            folder.checkpoint(state, epoch, logs)

        state, logs = fit(
            graphdef,
            state,
            ds.train,
            ds.test,
            cfg.epochs,
            settings,
            logs=logs,
            on_epoch=save,
            progress=progress,
        )
        epochs = len(logs["train_loss"]) - 1
        meta["seconds"] = folder.elapsed()  # the earlier processes' time too
        meta["diverged_at_epoch"] = divergence_epoch(logs)
        paths = folder.write_logs("", logs, meta, epochs)
        title = f"{cfg.network} on {ds.name}, lr={cfg.lr:g}"
        paths["png"] = folder.figure(
            "curves.png", lambda path: plots.training_curves(logs, path, title=title)
        )
        if export:
            trained = models.state_dict(nnx.merge(graphdef, state.params))
            paths["export"] = state_dict.export_state_dict(trained, export)
    return {"logs": logs, "paths": paths, "meta": meta}
