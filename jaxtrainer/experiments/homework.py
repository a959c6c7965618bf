"""The homework's experiments 1-4 (docs/homework.md) in one call, and sweeps written to disk.

`run_group` trains the members of one architecture (learning rates, seeds) as one sweep
(jaxtrainer.sweep) and writes each member's logs.json/logs.csv every epoch, and the sweep's
checkpoint: re-running it in the same folder skips the members whose logs already hold the requested
epochs and resumes an interrupted sweep from its last finished epoch.

`run_homework` runs the four experiments as such groups (one sweep per architecture), then draws
the figures and writes report.md and summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .. import checkpoint, data, equivariance, models, plots, results
from ..config import NetworkConfiguration, check_batch_size, check_n_epochs
from ..sweep import fit_sweep, init_sweep, resolve_strategy
from ..train import divergence_epoch

SEED = 197331
HOMEWORK_LRS = (1e-2, 1e-4, 1e-8)
DEFAULT_LR = 1e-3
MLP = NetworkConfiguration(dense_hiddens=(128, 128))
CNN = NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,))
DEEP_CNN = NetworkConfiguration((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256))


def shallow_cnn(channels: int, image_size: int) -> NetworkConfiguration:
    return NetworkConfiguration((channels,), (image_size,), (1,), (256, 256))


@dataclasses.dataclass(frozen=True)
class Member:
    lr: float
    seed: int = SEED
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


def _plain(value):
    return json.loads(json.dumps(value))


def member_identity(group: Group, member: Member, batch_size: int, activation: str, data_id: dict) -> dict:
    """What makes two runs the same run (the epoch count aside: more epochs may be asked)."""
    return _plain(
        {
            "network": group.network,
            "net_config": group.net_config._asdict(),
            "activation": activation,
            "batch_size": batch_size,
            "lr": member.lr,
            "seed": member.seed,
            "data": data_id,
        }
    )


def _finished(run_dir: str, identity: dict, epochs: int) -> dict | None:
    """The saved {config, logs} of a run that already holds `epochs` epochs of this configuration."""
    path = os.path.join(run_dir, "logs.json")
    if not os.path.isfile(path):
        return None
    try:
        saved = results.read_logs(path)
        done = len(saved["logs"]["train_loss"]) - 1
        same = saved["config"].get("identity") == identity
    except (ValueError, KeyError, TypeError):
        return None
    return saved if same and done == epochs else None


def run_group(
    group: Group,
    ds,
    out_dir: str,
    *,
    epochs: int,
    batch_size: int = 128,
    activation: str = "relu",
    strategy: str = "auto",
    conv_impl: str | None = None,
    progress: bool = True,
    data_id: dict | None = None,
    say=print,
) -> List[dict]:
    """Train the group's unfinished members as one sweep under `out_dir/<group.name>/`; returns one
    record per member (in the group's order): name, lr, seed, dir, logs, meta, skipped."""
    group_dir = os.path.join(out_dir, group.name) if group.name else out_dir
    data_id = data_id or data.fingerprint(ds.train, ds.test)
    ids = {m.folder: member_identity(group, m, batch_size, activation, data_id) for m in group.members}
    if len(ids) != len(group.members):
        raise ValueError(f"{group.name}: two members would share one folder: {list(ids)}")
    records, todo = {}, []
    for m in group.members:
        run_dir = os.path.join(group_dir, m.folder)
        saved = _finished(run_dir, ids[m.folder], epochs)
        if saved is None:
            todo.append(m)
        else:
            records[m.folder] = {
                "name": _run_name(group, m),
                "lr": m.lr,
                "seed": m.seed,
                "dir": run_dir,
                "logs": saved["logs"],
                "meta": saved["config"],
                "skipped": True,
            }
    if records:
        say(f"{group.name or group.network}: {len(records)} run(s) already finished in {group_dir}, skipped")
    if todo:
        records.update(
            _train_members(
                group,
                todo,
                ds,
                group_dir,
                ids,
                epochs=epochs,
                batch_size=batch_size,
                activation=activation,
                strategy=strategy,
                conv_impl=conv_impl,
                progress=progress,
                say=say,
            )
        )
    return [records[m.folder] for m in group.members]


def _train_members(
    group: Group,
    todo: Sequence[Member],
    ds,
    group_dir: str,
    ids: dict,
    *,
    epochs,
    batch_size,
    activation,
    strategy,
    conv_impl,
    progress,
    say,
) -> Dict[str, dict]:
    graphdef, states, model = init_sweep(
        group.network,
        ds.image_shape,
        group.net_config,
        [(m.lr, m.seed) for m in todo],
        activation,
        conv_impl=conv_impl,
    )
    strategy = resolve_strategy(strategy)
    ck_config = {"members": [ids[m.folder] for m in todo]}
    dirs = [os.path.join(group_dir, m.folder) for m in todo]
    logs, prior = None, 0.0
    if checkpoint.exists(group_dir):
        try:
            loaded, epoch, loaded_logs = checkpoint.load(group_dir, states, ck_config)
        except ValueError:
            loaded = None  # another sweep's checkpoint (other members or data): start afresh
        if loaded is not None and epoch <= epochs:
            states, logs = loaded, loaded_logs
            prior = _previous_seconds(dirs[0])
            say(f"{group.name or group.network}: resuming the sweep after epoch {epoch}")
    lrs = ", ".join(f"{m.lr:g}" for m in todo)
    say(
        f"{group.name or group.network}: {len(todo)} run(s) (lr {lrs}) as one sweep ({strategy}), "
        f"{epochs} epochs"
    )
    meta = {
        "network": group.network,
        "net_config": group.net_config._asdict(),
        "activation": activation,
        "batch_size": batch_size,
        "epochs": epochs,
        "dataset_name": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "parameters": models.count_parameters(model),
        "sweep": {"size": len(todo), "strategy": strategy, "members": [m.folder for m in todo]},
    }
    start = time.perf_counter()
    saved_epoch = [None]

    def write(logs, seconds):
        for m, run_dir, member_logs in zip(todo, dirs, logs):
            results.write_logs(
                member_logs,
                run_dir,
                {
                    **meta,
                    "lr": m.lr,
                    "seed": m.seed,
                    "identity": ids[m.folder],
                    "seconds": seconds,
                    "diverged_at_epoch": divergence_epoch(member_logs),
                },
            )

    def on_epoch(epoch, states, logs):
        write(logs, prior + time.perf_counter() - start)
        checkpoint.save(group_dir, states, epoch, logs, ck_config)
        saved_epoch[0] = epoch

    states, logs = fit_sweep(
        graphdef,
        states,
        ds.train,
        ds.test,
        epochs,
        batch_size=batch_size,
        strategy=strategy,
        progress=progress,
        on_epoch=on_epoch,
        logs=logs,
        labels=[_run_name(group, m) for m in todo],
        desc=f"{group.name or group.network} x{len(todo)}",
    )
    seconds = prior + time.perf_counter() - start
    write(logs, seconds)
    if saved_epoch[0] != epochs:
        checkpoint.save(group_dir, states, epochs, logs, ck_config)
    out = {}
    for m, run_dir, member_logs in zip(todo, dirs, logs):
        out[m.folder] = {
            "name": _run_name(group, m),
            "lr": m.lr,
            "seed": m.seed,
            "dir": run_dir,
            "logs": member_logs,
            "meta": results.read_logs(os.path.join(run_dir, "logs.json"))["config"],
            "skipped": False,
        }
    return out


def _run_name(group: Group, member: Member) -> str:
    return f"{group.name}/{member.folder}" if group.name else member.folder


def _previous_seconds(run_dir: str) -> float:
    try:
        return float(results.read_logs(os.path.join(run_dir, "logs.json"))["config"]["seconds"])
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
        cfg = shallow_cnn(channels, size)
        count = parameter_count("cnn", cfg, image_shape)
        if best is None or abs(count - target) < abs(best[1] - target):
            best = (cfg, count)
        if count >= target:
            return best
    return best


def homework_groups(image_shape) -> Tuple[List[Group], dict]:
    cnn_count = parameter_count("cnn", CNN, image_shape)
    shallow, shallow_count = matching_shallow_cnn(image_shape, cnn_count)
    counts = {
        "cnn": cnn_count,
        "deep_cnn": parameter_count("cnn", DEEP_CNN, image_shape),
        "shallow_cnn": shallow_count,
    }
    groups = [
        Group("mlp", "mlp", MLP, tuple(Member(lr) for lr in HOMEWORK_LRS), "MLP (128, 128)"),
        # The report swept the three learning rates on the CNN too; lr 1e-3 (the default) is the
        # CNN of experiment 3. One architecture, so one sweep.
        Group(
            "cnn",
            "cnn",
            CNN,
            tuple(Member(lr) for lr in (HOMEWORK_LRS[0], DEFAULT_LR, *HOMEWORK_LRS[1:])),
            "CNN (16, 32, 45) k3 + (128,)",
        ),
        Group("deep_cnn", "cnn", DEEP_CNN, (Member(DEFAULT_LR),), "deep CNN (8, 16, 32, 64) k1 + (256, 256)"),
        Group(
            "shallow_cnn",
            "cnn",
            shallow,
            (Member(DEFAULT_LR),),
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
    epochs: int = 50,
    batch_size: int = 128,
    strategy: str = "auto",
    conv_impl: str | None = None,
    progress: bool = True,
    say=print,
    data_dir: str | None = None,
) -> dict:
    """Experiments 1-4 on `dataset` (a name, a folder, arrays) into `out_dir`: every run's logs,
    four figures, report.md and summary.json. Finished runs in `out_dir` are not run again."""
    import jax

    check_n_epochs(epochs)
    check_batch_size(batch_size)
    start = time.perf_counter()
    ds = data.load(dataset, data_dir=data_dir)
    data_id = data.fingerprint(ds.train, ds.test)
    groups, counts = homework_groups(ds.image_shape)
    shallow = groups[3].net_config
    say(
        f"parameters: CNN (16, 32, 45) {counts['cnn']:,}; deep CNN {counts['deep_cnn']:,}; "
        f"shallow CNN ({shallow.n_channels[0]} channels, kernel {shallow.kernel_sizes[0]}) "
        f"{counts['shallow_cnn']:,}"
    )
    os.makedirs(out_dir, exist_ok=True)
    by_group = {}
    for group in groups:
        by_group[group.name] = run_group(
            group,
            ds,
            out_dir,
            epochs=epochs,
            batch_size=batch_size,
            strategy=strategy,
            conv_impl=conv_impl,
            progress=progress,
            data_id=data_id,
            say=say,
        )
    # 4. Equivariance, on the first training image in [0, 1] (channels averaged).
    image01 = (np.asarray(ds.X_train[0]).mean(axis=0) + 1.0) / 2.0
    maps = equivariance.equivariance_maps(image01, seed=SEED)
    paths = {
        name: os.path.join(out_dir, f"{name}.png")
        for name in ("mlp_lr", "cnn_lr", "cnns_train_test", "equivariance")
    }
    for key, group in (("mlp_lr", groups[0]), ("cnn_lr", groups[1])):
        plots.runs_figure(
            {f"lr {r['lr']:g}": r["logs"] for r in by_group[group.name]},
            paths[key],
            title=f"{group.label} on {ds.name}: test MAE per epoch",
        )
    cnn_default = next(r for r in by_group["cnn"] if r["lr"] == DEFAULT_LR)
    three = {
        groups[1].label: cnn_default["logs"],
        groups[2].label: by_group["deep_cnn"][0]["logs"],
        groups[3].label: by_group["shallow_cnn"][0]["logs"],
    }
    plots.runs_figure(
        three,
        paths["cnns_train_test"],
        splits=("train", "test"),
        title=f"three CNNs on {ds.name}, lr {DEFAULT_LR:g}: train vs test MAE",
    )
    plots.equivariance_figure(maps, paths["equivariance"])

    rows = [summary_row(r) for group in groups for r in by_group[group.name]]
    seconds = time.perf_counter() - start
    summary = {
        "dataset": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "image_shape": list(ds.image_shape),
        "epochs": epochs,
        "batch_size": batch_size,
        "activation": "relu",
        "seed": SEED,
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
    summary_path = os.path.join(out_dir, "summary.json")
    with open(summary_path + ".tmp", "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(summary_path + ".tmp", summary_path)
    report_path = os.path.join(out_dir, "report.md")
    with open(report_path + ".tmp", "w") as f:
        f.write(report_markdown(summary, groups, out_dir))
    os.replace(report_path + ".tmp", report_path)
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
        "## 1. MLP (128, 128), learning rates " + ", ".join(f"{lr:g}" for lr in HOMEWORK_LRS),
        "",
        f"![test MAE per epoch, MLP]({figures['mlp_lr']})",
        "",
        "## 2. CNN (16, 32, 45), kernel 3, dense (128,)",
        "",
        f"The default lr {DEFAULT_LR:g} and the three learning rates of experiment 1, in one sweep.",
        "",
        f"![test MAE per epoch, CNN]({figures['cnn_lr']})",
        "",
        "## 3. Deep and shallow CNNs",
        "",
        f"Parameters: {groups[1].label}: {counts['cnn']:,}; {groups[2].label}: "
        f"{counts['deep_cnn']:,}; {groups[3].label}: {counts['shallow_cnn']:,} (its channel count "
        "is the one whose parameter count is closest to the (16, 32, 45) CNN's). All at lr "
        f"{DEFAULT_LR:g}.",
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
    batch_size: int = 128,
    activation: str = "relu",
    strategy: str = "auto",
    conv_impl: str | None = None,
    progress: bool = True,
    say=print,
    data_dir: str | None = None,
) -> dict:
    """`jaxtrainer sweep`: the members as one sweep under `out_dir/lr_<lr>_seed_<seed>/`, then
    report.md (the table), summary.json and sweep.png (test MAE per epoch of every member)."""
    check_n_epochs(epochs)
    check_batch_size(batch_size)
    ds = data.load(dataset, data_dir=data_dir)
    group = Group(
        "", network, net_config, tuple(Member(lr, seed, f"lr_{lr:g}_seed_{seed}") for lr, seed in members)
    )
    records = run_group(
        group,
        ds,
        out_dir,
        epochs=epochs,
        batch_size=batch_size,
        activation=activation,
        strategy=strategy,
        conv_impl=conv_impl,
        progress=progress,
        say=say,
    )
    rows = [summary_row(r) for r in records]
    paths = {
        "png": os.path.join(out_dir, "sweep.png"),
        "report": os.path.join(out_dir, "report.md"),
        "summary": os.path.join(out_dir, "summary.json"),
    }
    plots.runs_figure(
        {f"lr {r['lr']:g}, seed {r['seed']}": r["logs"] for r in records},
        paths["png"],
        title=f"{network} on {ds.name}: test MAE per epoch",
    )
    with open(paths["summary"], "w") as f:
        json.dump(
            {
                "network": network,
                "net_config": net_config._asdict(),
                "dataset": ds.name,
                "epochs": epochs,
                "batch_size": batch_size,
                "runs": rows,
            },
            f,
            indent=2,
        )
    table = "\n".join([TABLE_HEADER, *(table_line(row, out_dir) for row in rows)])
    with open(paths["report"], "w") as f:
        f.write(
            f"# Sweep: {network} on {ds.name}, {epochs} epochs\n\n{table}\n\n"
            f"![test MAE per epoch]({os.path.basename(paths['png'])})\n"
        )
    return {"rows": rows, "table": table, "paths": paths}
