"""One training run from the command line: data, network, fit, and its files (logs, curves)."""

from __future__ import annotations

import dataclasses
import os
import time

from .. import data, models, plots, results, train
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
    seed: int = 197331
    conv_impl: str | None = None


def run(cfg: RunConfig, out_dir: str, progress: bool = True) -> dict:
    """Train and write logs.json, logs.csv and curves.png under `out_dir`. Every argument is checked
    before any data is read or anything compiled."""
    check_lr(cfg.lr)
    check_batch_size(cfg.batch_size)
    check_n_epochs(cfg.epochs)
    ds = data.load(cfg.dataset)
    model = models.build_network(cfg.network, ds.image_shape, cfg.net_config, cfg.activation,
                                 seed=cfg.seed, conv_impl=cfg.conv_impl)
    graphdef, state = train.init_state(model, cfg.lr)
    start = time.perf_counter()
    _, logs = train.fit(graphdef, state, ds.train, ds.test, cfg.epochs,
                        batch_size=cfg.batch_size, progress=progress)
    meta = {**dataclasses.asdict(cfg), "net_config": cfg.net_config._asdict(),
            "dataset_name": ds.name, "n_train": len(ds.X_train), "n_test": len(ds.X_test),
            "parameters": models.count_parameters(model), "seconds": time.perf_counter() - start}
    paths = results.write_logs(logs, out_dir, meta)
    paths["png"] = os.path.join(out_dir, "curves.png")
    plots.training_curves(logs, paths["png"], title=f"{cfg.network} on {ds.name}, lr={cfg.lr:g}")
    return {"logs": logs, "paths": paths, "meta": meta}
