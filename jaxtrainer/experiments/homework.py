"""The homework's experiments 1-4 (docs/homework.md) in one call, and sweeps written to disk.

`run_group` trains the members of one architecture (learning rates, seeds) as one sweep
(jaxtrainer.sweep) in one run folder (`runs.Run`): each member's logs.json/logs.csv and the
sweep's checkpoint are written every epoch, so the same command continues an interrupted sweep
from its last finished epoch, and a finished one is not trained again.

`run_homework` runs the four experiments as such groups (one sweep per architecture), then draws
the figures and writes report.md and summary.json.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import List, Sequence, Tuple

import numpy as np

from .. import data, distributed, equivariance, models, plots, presets
from ..config import NetworkConfiguration, check_n_epochs
from ..runs import Run, check_writable_folder, read_json
from ..settings import Settings
from ..sweeps import fit_sweep, init_sweep
from ..train import divergence_epoch


@dataclasses.dataclass(frozen=True)
class Member:
    lr: float
    seed: int = presets.SEED
    name: str = ""  # its folder under the group's; default lr_<lr>

    @property
    def folder(self) -> str:
        return self.name or f"lr_{self.lr:g}"


@dataclasses.dataclass(frozen=True)
class Group:
    """Members of one architecture, trained together as one sweep."""

    name: str
    network: str
    net_config: NetworkConfiguration
    members: Tuple[Member, ...]
    label: str = ""


def group_identity(group: Group, settings: Settings, activation: str, data_id: dict) -> dict:
    """What makes two sweeps the same sweep (the epoch count aside: more epochs may be asked)."""
    return {
        "kind": "sweep",
        "network": group.network,
        "net_config": group.net_config._asdict(),
        "activation": activation,
        "batch_size": settings.batch_size,
        "members": [{"lr": m.lr, "seed": m.seed, "folder": m.folder} for m in group.members],
        "data": data_id,
    }


def run_group(
    group: Group,
    ds,
    out_dir: str,
    *,
    epochs: int,
    settings: Settings | None = None,
    activation: str = presets.ACTIVATION,
    data_id: dict | None = None,
    mode: str = "continue",
    say=print,
    **train,
) -> List[dict]:
    """Train the group's members as one sweep in the run folder `out_dir/<group.name>/` (`train`:
    conv_impl, progress); returns one record per member (in the group's order): name, lr, seed,
    dir, logs, meta, skipped."""
    settings = settings or Settings()
    group_dir = os.path.join(out_dir, group.name) if group.name else out_dir
    identity = group_identity(group, settings, activation, data_id or data.fingerprint(ds.train, ds.test))
    with Run(group_dir, identity, mode=mode, epochs=epochs) as folder:
        return train_group(
            group, ds, folder, epochs=epochs, settings=settings, activation=activation, say=say, **train
        )


def train_group(
    group: Group,
    ds,
    folder: Run,
    *,
    epochs: int,
    settings: Settings,
    activation: str = presets.ACTIVATION,
    conv_impl: str | None = None,
    progress: bool = True,
    say=print,
) -> List[dict]:
    """The group's sweep in the open run `folder` (continued from its checkpoint, or nothing to do
    when it already holds `epochs`): each member's logs under `folder/<member>/`."""
    name = group.name or group.network
    folders = [m.folder for m in group.members]
    if len(set(folders)) != len(folders):
        raise ValueError(f"{name}: two members would share one folder: {folders}")
    if folder.epochs_done == epochs and epochs:
        say(f"{name}: {len(folders)} run(s) already finished in {folder.folder}, skipped")
        saved = distributed.from_writer(folder.finished_logs(folders))
        return [_record(group, m, folder, s["logs"], s["config"], True) for m, s in zip(group.members, saved)]
    members = [(m.lr, m.seed) for m in group.members]
    graphdef, states, model = init_sweep(
        group.network, ds.image_shape, group.net_config, members, activation, conv_impl=conv_impl
    )
    states, logs = folder.restore(states)
    prior = distributed.from_writer(_previous_seconds(folder.path(folders[0], "logs.json")) if logs else 0.0)
    lrs = ", ".join(f"{m.lr:g}" for m in group.members)
    say(f"{name}: {len(folders)} run(s) (lr {lrs}) as one sweep ({settings.strategy}), {epochs} epochs")
    meta = {
        "network": group.network,
        "net_config": group.net_config._asdict(),
        "activation": activation,
        "batch_size": settings.batch_size,
        "dataset_name": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "parameters": models.count_parameters(model),
        "sweep": {"size": len(folders), "strategy": settings.strategy, "members": folders},
    }
    start = time.perf_counter()

    metas = {}

    def save(epoch, states, logs):
        for m, member_logs in zip(group.members, logs):
            metas[m.folder] = {
                **meta,
                "lr": m.lr,
                "seed": m.seed,
                "seconds": prior + time.perf_counter() - start,
                "diverged_at_epoch": divergence_epoch(member_logs),
                "epochs": epoch,
            }
            folder.write_logs(m.folder, member_logs, metas[m.folder], epoch)
        folder.checkpoint(states, epoch, logs)

    states, logs = fit_sweep(
        graphdef,
        states,
        ds.train,
        ds.test,
        epochs,
        settings,
        logs=logs,
        on_epoch=save,
        progress=progress,
        labels=[_run_name(group, m) for m in group.members],
        desc=f"{name} x{len(folders)}",
    )
    if folder.epochs_done != epochs or not epochs:  # nothing was trained: epoch 0's logs
        save(epochs, states, logs)
    return [_record(group, m, folder, lg, metas[m.folder], False) for m, lg in zip(group.members, logs)]


def _record(group: Group, member: Member, folder: Run, logs: dict, meta: dict, skipped: bool) -> dict:
    return {
        "name": _run_name(group, member),
        "lr": member.lr,
        "seed": member.seed,
        "dir": folder.path(member.folder),
        "logs": logs,
        "meta": meta,
        "skipped": skipped,
    }


def _run_name(group: Group, member: Member) -> str:
    return f"{group.name}/{member.folder}" if group.name else member.folder


def _previous_seconds(path: str) -> float:
    try:
        return float(read_json(path)["config"]["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


# -- the homework ----------------------------------------------------------------------------------
def parameter_count(network: str, cfg: NetworkConfiguration, image_shape) -> int:
    """Counted on the abstract network (shapes only): initialising each candidate for real would
    compile a random draw per new shape, ~10 s for the shallow-CNN search on the 2-core machine."""
    from flax import nnx

    abstract = nnx.eval_shape(lambda: models.build_network(network, image_shape, cfg, seed=0))
    return models.count_parameters(abstract)


def matching_shallow_cnn(image_shape, target: int) -> Tuple[NetworkConfiguration, int]:
    """The one-conv CNN (kernel = image size) whose parameter count is closest to `target`
    (ties: fewer channels); counts grow with the channels, so the search stops past the target."""
    size = min(image_shape[1:])
    best = None
    for channels in range(1, 100_000):
        cfg = presets.shallow_cnn(channels, size)
        count = parameter_count("cnn", cfg, image_shape)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (cfg, count)
        if count >= target:
            return best
    return best


def homework_groups(image_shape) -> Tuple[List[Group], dict]:
    cnn_count = parameter_count("cnn", presets.CNN, image_shape)
    shallow, shallow_count = matching_shallow_cnn(image_shape, cnn_count)
    counts = {
        "cnn": cnn_count,
        "deep_cnn": parameter_count("cnn", presets.DEEP_CNN, image_shape),
        "shallow_cnn": shallow_count,
    }
    default, label = presets.DEFAULT_LR, lambda name: presets.NETWORKS[name].label
    groups = [
        Group("mlp", "mlp", presets.MLP, tuple(Member(lr) for lr in presets.LRS), label("mlp")),
        # The report swept the three learning rates on the CNN too; lr 1e-3 (the default) is the
        # CNN of experiment 3. One architecture, so one sweep.
        Group(
            "cnn",
            "cnn",
            presets.CNN,
            tuple(Member(lr) for lr in (presets.LRS[0], default, *presets.LRS[1:])),
            label("cnn"),
        ),
        Group("deep_cnn", "cnn", presets.DEEP_CNN, (Member(default),), label("deep_cnn")),
        Group(
            "shallow_cnn",
            "cnn",
            shallow,
            (Member(default),),
            f"shallow CNN ({shallow.n_channels[0]},) k{shallow.kernel_sizes[0]} + (256, 256)",
        ),
    ]
    return groups, counts


def summary_row(record: dict) -> dict:
    logs = record["logs"]
    test_mae = np.array(logs["test_mae"], dtype=np.float64)
    finite = np.isfinite(test_mae)
    best_epoch = int(np.nanargmin(np.where(finite, test_mae, np.nan))) if finite.any() else None
    meta = record["meta"]
    return {
        "run": record["name"],
        "dir": record["dir"],
        "lr": record["lr"],
        "seed": record["seed"],
        **{f"final_{k}": logs[k][-1] for k in ("train_loss", "test_loss", "train_mae", "test_mae")},
        "best_test_mae": float(test_mae[best_epoch]) if best_epoch is not None else math.nan,
        "best_epoch": best_epoch,
        "diverged_at_epoch": divergence_epoch(logs),
        "seconds": meta.get("seconds"),
        "sweep_size": meta.get("sweep", {}).get("size"),
        "strategy": meta.get("sweep", {}).get("strategy"),
        "skipped": record["skipped"],
    }


def fmt(v) -> str:
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
        return f"{v:.4e}"
    return f"{v:.4f}"


TABLE_HEADER = (
    "| run | lr | final train loss | final test loss | final train MAE | final test MAE | "
    "best test MAE (epoch) | diverged? | seconds (sweep) |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def table_line(row: dict, out_dir: str) -> str:
    link = os.path.relpath(os.path.join(row["dir"], "logs.json"), out_dir)
    diverged = "no" if row["diverged_at_epoch"] is None else f"epoch {row['diverged_at_epoch']}"
    best = "-" if row["best_epoch"] is None else f"{fmt(row['best_test_mae'])} ({row['best_epoch']})"
    size = row["sweep_size"]
    seconds = "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
    sweep = "" if not size else " (1 run)" if size == 1 else f" ({size} runs, {row['strategy']})"
    return (
        f"| [{row['run']}]({link}) | {row['lr']:g} | {fmt(row['final_train_loss'])} | "
        f"{fmt(row['final_test_loss'])} | {fmt(row['final_train_mae'])} | "
        f"{fmt(row['final_test_mae'])} | {best} | {diverged} | {seconds}{sweep} |"
    )


def run_homework(
    dataset,
    out_dir: str,
    *,
    epochs: int = presets.EPOCHS,
    settings: Settings | None = None,
    conv_impl: str | None = None,
    progress: bool = True,
    mode: str = "continue",
    say=print,
    data_dir: str | None = None,
) -> dict:
    """Experiments 1-4 on `dataset` (a name, a folder, arrays) into the run folder `out_dir`:
    every run's logs (one run folder per architecture), four figures, report.md and summary.json.
    The same command continues an interrupted homework; finished runs are not trained again."""

    check_n_epochs(epochs)
    settings = settings or Settings()
    check_writable_folder(out_dir)
    start = time.perf_counter()
    ds = data.load(dataset, data_dir=data_dir)
    data_id = data.fingerprint(ds.train, ds.test)
    distributed.check_same_data(data_id)
    groups, counts = homework_groups(ds.image_shape)
    shallow = groups[3].net_config
    say(
        f"parameters: CNN (16, 32, 45) {counts['cnn']:,}; deep CNN {counts['deep_cnn']:,}; "
        f"shallow CNN ({shallow.n_channels[0]} channels, kernel {shallow.kernel_sizes[0]}) "
        f"{counts['shallow_cnn']:,}"
    )
    identity = {"kind": "homework", "batch_size": settings.batch_size, "data": data_id}
    with Run(out_dir, identity, mode=mode) as folder:
        by_group = {
            group.name: run_group(
                group,
                ds,
                out_dir,
                epochs=epochs,
                settings=settings,
                conv_impl=conv_impl,
                progress=progress,
                data_id=data_id,
                mode=mode,
                say=say,
            )
            for group in groups
        }
        return _write_homework(folder, ds, groups, counts, by_group, epochs, settings, start)


def _write_homework(folder: Run, ds, groups, counts, by_group, epochs, settings, start) -> dict:
    """The figures, summary.json and report.md of a finished homework."""
    import jax

    out_dir = folder.folder
    shallow = groups[3].net_config
    # 4. Equivariance, on the first training image in [0, 1] (channels averaged).
    image01 = (np.asarray(ds.X_train[0]).mean(axis=0) + 1.0) / 2.0
    maps = equivariance.equivariance_maps(image01, seed=presets.SEED)
    paths = {}
    for key, group in (("mlp_lr", groups[0]), ("cnn_lr", groups[1])):
        runs = {f"lr {r['lr']:g}": r["logs"] for r in by_group[group.name]}
        title = f"{group.label} on {ds.name}: test MAE per epoch"
        paths[key] = folder.figure(f"{key}.png", lambda path: plots.runs_figure(runs, path, title=title))
    cnn_default = next(r for r in by_group["cnn"] if r["lr"] == presets.DEFAULT_LR)
    three = {
        groups[1].label: cnn_default["logs"],
        groups[2].label: by_group["deep_cnn"][0]["logs"],
        groups[3].label: by_group["shallow_cnn"][0]["logs"],
    }
    title = f"three CNNs on {ds.name}, lr {presets.DEFAULT_LR:g}: train vs test MAE"
    paths["cnns_train_test"] = folder.figure(
        "cnns_train_test.png",
        lambda path: plots.runs_figure(three, path, splits=("train", "test"), title=title),
    )
    paths["equivariance"] = folder.figure(
        "equivariance.png", lambda path: plots.equivariance_figure(maps, path)
    )

    rows = [summary_row(r) for group in groups for r in by_group[group.name]]
    seconds = time.perf_counter() - start
    summary = {
        "dataset": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "image_shape": list(ds.image_shape),
        "epochs": epochs,
        "batch_size": settings.batch_size,
        "activation": presets.ACTIVATION,
        "seed": presets.SEED,
        "backend": jax.default_backend(),
        "parameters": counts,
        "shallow_cnn": shallow._asdict(),
        "equivariance": {
            "shift": list(equivariance.SHIFT),
            "shift_error": maps["shift_error"],
            "rotation_error": maps["rotation_error"],
        },
        "runs": rows,
        "seconds": seconds,
        "figures": {k: os.path.basename(p) for k, p in paths.items()},
    }
    summary_path = folder.write_json("summary.json", summary)
    report_path = folder.write_text("report.md", report_markdown(summary, groups, out_dir))
    return {
        "summary": summary,
        "rows": rows,
        "paths": {**paths, "summary": summary_path, "report": report_path},
    }


def report_markdown(summary: dict, groups: Sequence[Group], out_dir: str) -> str:
    s, counts, eq = summary, summary["parameters"], summary["equivariance"]
    figures = s["figures"]
    lines = [
        "# The homework: experiments 1-4",
        "",
        f"Dataset `{s['dataset']}`: {s['n_train']} training / {s['n_test']} test images of shape "
        f"{tuple(s['image_shape'])}; {s['epochs']} epochs, batch {s['batch_size']}, ReLU, Adam, MSE, "
        f"seed {s['seed']}; JAX backend `{s['backend']}`. Train metrics are measured on the first "
        "2,000 training images, as the homework's loop does; epoch 0 is before training. "
        f"Wall time of this command: {s['seconds']:.1f} s (runs read back from an earlier "
        "invocation keep that invocation's seconds).",
        "",
        "Runs of one architecture are trained together as one compiled sweep; a run's seconds are "
        "its sweep's wall time (compilation included), shared by the sweep's runs.",
        "",
        TABLE_HEADER,
        *(table_line(row, out_dir) for row in s["runs"]),
        "",
        "## 1. MLP (128, 128), learning rates " + ", ".join(f"{lr:g}" for lr in presets.LRS),
        "",
        f"![test MAE per epoch, MLP]({figures['mlp_lr']})",
        "",
        "## 2. CNN (16, 32, 45), kernel 3, dense (128,)",
        "",
        f"The default lr {presets.DEFAULT_LR:g} and the three learning rates of experiment 1, in one sweep.",
        "",
        f"![test MAE per epoch, CNN]({figures['cnn_lr']})",
        "",
        "## 3. Deep and shallow CNNs",
        "",
        f"Parameters: {groups[1].label}: {counts['cnn']:,}; {groups[2].label}: "
        f"{counts['deep_cnn']:,}; {groups[3].label}: {counts['shallow_cnn']:,} (its channel count "
        "is the one whose parameter count is closest to the (16, 32, 45) CNN's). All at lr "
        f"{presets.DEFAULT_LR:g}.",
        "",
        f"![train and test MAE of the three CNNs]({figures['cnns_train_test']})",
        "",
        "## 4. Equivariance",
        "",
        "`relu(conv(relu(conv(x))))` with one random 3x3 conv (no padding) on the first training "
        f"image; mean absolute error |T(model(x)) - model(T(x))| over the map: shift by "
        f"{tuple(eq['shift'])} pixels **{eq['shift_error']:.4f}**, 90-degree rotation "
        f"**{eq['rotation_error']:.4f}**.",
        "",
        f"![equivariance]({figures['equivariance']})",
        "",
    ]
    return "\n".join(lines)


# -- one sweep from the command line -----------------------------------------------------------------
def run_sweep(
    network: str,
    net_config: NetworkConfiguration,
    dataset,
    out_dir: str,
    *,
    members: Sequence[Tuple[float, int]],
    epochs: int,
    settings: Settings | None = None,
    activation: str = presets.ACTIVATION,
    mode: str = "continue",
    say=print,
    data_dir: str | None = None,
    **train,
) -> dict:
    """`jaxtrainer sweep`: the members as one sweep in the run folder `out_dir`, each under
    `lr_<lr>_seed_<seed>/`, then report.md (the table), summary.json and sweep.png (test MAE per
    epoch of every member). `train`: conv_impl, progress."""
    check_n_epochs(epochs)
    settings = settings or Settings()
    check_writable_folder(out_dir)
    ds = data.load(dataset, data_dir=data_dir)
    group = Group(
        "", network, net_config, tuple(Member(lr, seed, f"lr_{lr:g}_seed_{seed}") for lr, seed in members)
    )
    data_id = data.fingerprint(ds.train, ds.test)
    distributed.check_same_data(data_id)
    identity = group_identity(group, settings, activation, data_id)
    with Run(out_dir, identity, mode=mode, epochs=epochs) as folder:
        records = train_group(
            group, ds, folder, epochs=epochs, settings=settings, activation=activation, say=say, **train
        )
        rows = [summary_row(r) for r in records]
        runs = {f"lr {r['lr']:g}, seed {r['seed']}": r["logs"] for r in records}
        title = f"{network} on {ds.name}: test MAE per epoch"
        paths = {"png": folder.figure("sweep.png", lambda path: plots.runs_figure(runs, path, title=title))}
        summary = {
            "network": network,
            "net_config": net_config._asdict(),
            "dataset": ds.name,
            "epochs": epochs,
            "batch_size": settings.batch_size,
            "runs": rows,
        }
        paths["summary"] = folder.write_json("summary.json", summary)
        table = "\n".join([TABLE_HEADER, *(table_line(row, out_dir) for row in rows)])
        paths["report"] = folder.write_text(
            "report.md",
            f"# Sweep: {network} on {ds.name}, {epochs} epochs\n\n{table}\n\n"
            f"![test MAE per epoch]({os.path.basename(paths['png'])})\n",
        )
    return {"rows": rows, "table": table, "paths": paths}
