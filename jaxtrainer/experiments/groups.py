"""The one road of `train`, `sweep` and `homework`: a group is the members of one spec, trained
together as one sweep in one run folder (`runs.Run`), its logs and checkpoint written every epoch:
the same command continues an interrupted group (its seconds those of all its epochs), and a
finished one is not trained again."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import List, Tuple

from .. import data, distributed, models
from ..errors import InputError
from ..runs import Run, check_writable_folder
from ..spec import Spec
from ..sweeps import Loop, fit_sweep, init_sweep
from ..train import divergence_epoch

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Group:
    """`spec`'s members as one sweep in the run folder `name` under the output folder ("": itself),
    of kind `kind`; `folder` is each member's sub-folder, formatted with its lr and seed."""

    spec: Spec
    name: str = ""
    label: str = ""
    kind: str = "sweep"
    folder: str = "lr_{lr:g}"

    @property
    def folders(self) -> Tuple[str, ...]:
        """Each member's sub-folder, in `spec.members` order."""
        return tuple(self.folder.format(lr=lr, seed=seed) for lr, seed in self.spec.members)

    def run_names(self) -> List[str]:
        """How each member is named in messages and tables."""
        return [
            os.path.join(self.name, folder) or f"lr {lr:g}"
            for folder, (lr, _) in zip(self.folders, self.spec.members)
        ]

    def open(self, out_dir: str, data_id: dict, mode: str = "continue") -> Run:
        """The group's run folder under `out_dir`, opened under the resume rule, with spec.json."""
        path = os.path.join(out_dir, self.name) if self.name else out_dir
        run = Run(
            path, {"kind": self.kind, **self.spec.identity(data_id)}, mode=mode, epochs=self.spec.epochs
        )
        run.write_json("spec.json", self.spec.as_dict())
        return run


def load(spec: Spec, out_dir: str) -> Tuple[data.Dataset, dict]:
    """(the spec's dataset, its fingerprint), once `out_dir` is known to be writable (a bad folder
    fails before any data is read) and every process holds the same data."""
    check_writable_folder(out_dir)
    ds = data.load(spec.dataset, data_dir=spec.data_dir)
    data_id = data.fingerprint(ds.train, ds.test)
    distributed.check_same_data(data_id)
    return ds, data_id


def train_group(group: Group, ds, run: Run, progress: bool = True):
    """The group's sweep in the open `run`, continued from its checkpoint (read whole: a damaged one
    is refused even when the run is finished). Returns (one record per member: name, lr, seed, dir,
    logs, meta, skipped; and the members' (graphdef, stacked states))."""
    spec, folders, name = group.spec, group.folders, group.name or group.spec.network
    if len(set(folders)) != len(folders):
        raise InputError(f"{name}: two members would share one folder: {folders}")
    graphdef, states, model = init_sweep(spec, ds.image_shape)
    states, logs = run.restore(states)
    if run.epochs_done == spec.epochs and spec.epochs:
        logger.info(f"{name}: {len(folders)} run(s) already finished in {run.folder}, skipped")
        saved = distributed.from_writer(run.finished_logs(folders))
        records = [_record(group, i, run, s["logs"], s["config"], True) for i, s in enumerate(saved)]
        return records, (graphdef, states)
    settings, lrs = spec.settings(), ", ".join(f"{lr:g}" for lr, _ in spec.members)
    logger.info(
        f"{name}: {len(folders)} run(s) (lr {lrs}) as one sweep ({settings.strategy}), {spec.epochs} epochs"
    )
    sweep = {"size": len(folders), "strategy": settings.strategy, "members": list(folders)}
    meta = {**spec.meta(ds, models.count_parameters(model)), "sweep": sweep}
    metas = []

    def save(epoch, states, logs):
        seconds = run.elapsed()  # the earlier processes' time too (the checkpoint keeps it)
        metas[:] = [
            {**meta, "lr": lr, "seed": seed, "seconds": seconds, "diverged_at_epoch": divergence_epoch(m)}
            for (lr, seed), m in zip(spec.members, logs)
        ]
        for folder, member, member_meta in zip(folders, logs, metas):
            run.write_logs(folder, member, member_meta, epoch)
        run.checkpoint(states, epoch, logs)

    names = group.run_names()
    loop = Loop(progress=progress, on_epoch=save, labels=names, desc=f"{name} x{len(names)}")
    states, logs = fit_sweep(graphdef, states, ds.train, ds.test, spec.epochs, settings, logs=logs, loop=loop)
    if run.epochs_done != spec.epochs or not spec.epochs:  # nothing was trained: epoch 0's logs
        save(spec.epochs, states, logs)
    records = [_record(group, i, run, member, metas[i], False) for i, member in enumerate(logs)]
    return records, (graphdef, states)


def _record(group: Group, i: int, run: Run, logs: dict, meta: dict, skipped: bool) -> dict:
    lr, seed = group.spec.members[i]
    name, folder = group.run_names()[i], run.path(group.folders[i])
    return dict(name=name, lr=lr, seed=seed, dir=folder, logs=logs, meta=meta, skipped=skipped)
