"""The homework's experiments 1-4 (docs/homework.md) in one call: the command's spec with the
homework's networks and learning rates (`presets`) as four groups (`groups.py`: one sweep and run
folder per architecture), then the figures, report.md and summary.json."""

from __future__ import annotations

import logging
import os
import time
from typing import Dict, Tuple

import numpy as np
from flax import nnx

from .. import equivariance, models, plots, presets
from ..config import NetworkConfiguration
from ..runs import Run
from ..spec import Spec
from .groups import Group, load, train_group
from .table import summary_row, table

logger = logging.getLogger(__name__)
_ERRORS = ("shift_error", "rotation_error")  # the equivariance maps' errors, in summary.json


def parameter_count(network: str, cfg: NetworkConfiguration, image_shape) -> int:
    """Counted on the abstract network (shapes only): initialising each candidate for real would
    compile a random draw per new shape, ~10 s for the shallow-CNN search on the 2-core machine."""
    abstract = nnx.eval_shape(lambda: models.build_network(network, image_shape, cfg, seed=0))
    return models.count_parameters(abstract)


def matching_shallow_cnn(image_shape, target: int) -> Tuple[NetworkConfiguration, int]:
    """The one-conv CNN (kernel = image size) whose parameter count is closest to `target`
    (ties: fewer channels); counts grow with the channels, so the search stops past the target."""
    candidates = []
    for channels in range(1, 100_000):
        cfg = presets.shallow_cnn(channels, min(image_shape[1:]))
        candidates.append((cfg, parameter_count("cnn", cfg, image_shape)))
        if candidates[-1][1] >= target:
            break
    return min(candidates, key=lambda candidate: abs(candidate[1] - target))  # the first of ties


def homework_groups(spec: Spec, image_shape) -> Tuple[Dict[str, Group], dict]:
    """The four groups by name (mlp, cnn, deep_cnn, shallow_cnn) and their parameter counts."""
    cnns = {"cnn": presets.CNN, "deep_cnn": presets.DEEP_CNN}
    counts = {name: parameter_count("cnn", cfg, image_shape) for name, cfg in cnns.items()}
    shallow, counts["shallow_cnn"] = matching_shallow_cnn(image_shape, counts["cnn"])
    default = presets.DEFAULT_LR
    # The report swept the three learning rates on the CNN too; lr 1e-3 (the default) is the CNN of
    # experiment 3. One architecture, so one sweep.
    lrs = {"mlp": presets.LRS, "cnn": (presets.LRS[0], default, *presets.LRS[1:])}
    groups = {}
    for name, (network, net_config, label) in presets.NETWORKS.items():
        if name == "shallow_cnn":
            net_config = shallow
            label = f"shallow CNN ({shallow.n_channels[0]},) k{shallow.kernel_sizes[0]} + (256, 256)"
        members = tuple((lr, presets.SEED) for lr in lrs.get(name, (default,)))
        group_spec = spec.replace(network=network, net_config=net_config, members=members)
        groups[name] = Group(group_spec, name, label)
    return groups, counts


def run_homework(spec: Spec, out_dir: str, mode: str = "continue", progress: bool = True) -> dict:
    """Experiments 1-4 into the run folder `out_dir`: one run folder per architecture, four figures,
    report.md and summary.json; the same command continues an interrupted homework. Returns
    {"summary", "rows", "paths"}.

    Args:
        spec: all but the network and the members, which each experiment sets.
        out_dir: the homework's folder, holding one run folder per architecture.
        mode: "continue" (the default), "resume" or "overwrite" a run there (`runs.resume`).
        progress: show progress bars.
    """
    start = time.perf_counter()
    ds, data_id = load(spec, out_dir)
    groups, counts = homework_groups(spec, ds.image_shape)
    shallow = groups["shallow_cnn"].spec.net_config
    logger.info(
        f"parameters: CNN (16, 32, 45) {counts['cnn']:,}; deep CNN {counts['deep_cnn']:,}; "
        f"shallow CNN ({shallow.n_channels[0]} channels, kernel {shallow.kernel_sizes[0]}) "
        f"{counts['shallow_cnn']:,}"
    )
    with Run(out_dir, {"kind": "homework", **spec.identity(data_id)}, mode=mode) as folder:
        folder.write_json("spec.json", spec.as_dict())
        records = {}
        for name, group in groups.items():
            with group.open(out_dir, data_id, mode) as run:
                records[name] = train_group(group, ds, run, progress)[0]
        return _write_homework(folder, ds, groups, counts, records, spec, start)


def _figures(folder: Run, ds, groups: Dict[str, Group], records) -> Tuple[dict, dict]:
    """The homework's four figures: experiments 1 and 2 per learning rate, the three CNNs, and the
    equivariance maps (on the first training image in [0, 1], channels averaged)."""
    paths = {}
    for key, name in (("mlp_lr", "mlp"), ("cnn_lr", "cnn")):
        runs = {f"lr {r['lr']:g}": r["logs"] for r in records[name]}
        title = f"{groups[name].label} on {ds.name}: test MAE per epoch"
        paths[key] = folder.figure(f"{key}.png", lambda path: plots.runs_figure(runs, path, title=title))
    cnn_default = next(r for r in records["cnn"] if r["lr"] == presets.DEFAULT_LR)
    three = {groups["cnn"].label: cnn_default["logs"]}
    three.update({groups[name].label: records[name][0]["logs"] for name in ("deep_cnn", "shallow_cnn")})
    title = f"three CNNs on {ds.name}, lr {presets.DEFAULT_LR:g}: train vs test MAE"
    draw = lambda path: plots.runs_figure(three, path, splits=("train", "test"), title=title)
    paths["cnns_train_test"] = folder.figure("cnns_train_test.png", draw)
    image01 = (np.asarray(ds.X_train[0]).mean(axis=0) + 1.0) / 2.0
    maps = equivariance.equivariance_maps(image01, seed=presets.SEED)
    draw = lambda path: plots.equivariance_figure(maps, path)
    paths["equivariance"] = folder.figure("equivariance.png", draw)
    return paths, maps


def _write_homework(folder: Run, ds, groups, counts, records, spec: Spec, start) -> dict:
    """The figures, summary.json and report.md of a finished homework."""
    import jax

    paths, maps = _figures(folder, ds, groups, records)
    rows = [summary_row(r) for name in groups for r in records[name]]
    summary = {
        "dataset": ds.name,
        "n_train": len(ds.X_train),
        "n_test": len(ds.X_test),
        "image_shape": list(ds.image_shape),
        **{key: getattr(spec, key) for key in ("epochs", "batch_size", "optimizer", "activation")},
        "seed": presets.SEED,
        "backend": jax.default_backend(),
        "parameters": counts,
        "shallow_cnn": groups["shallow_cnn"].spec.net_config._asdict(),
        "equivariance": {"shift": list(equivariance.SHIFT), **{k: maps[k] for k in _ERRORS}},
        "runs": rows,
        "seconds": time.perf_counter() - start,
        "figures": {k: os.path.basename(p) for k, p in paths.items()},
    }
    paths["summary"] = folder.write_json("summary.json", summary)
    paths["report"] = folder.write_text("report.md", report_markdown(summary, groups, folder.folder))
    return {"summary": summary, "rows": rows, "paths": paths}


def report_markdown(summary: dict, groups: Dict[str, Group], out_dir: str) -> str:
    """report.md's text from `summary`; `groups` give the CNNs' labels, `out_dir` the links' base."""
    s, counts, eq, figures = summary, summary["parameters"], summary["equivariance"], summary["figures"]
    paragraphs = [
        "# The homework: experiments 1-4",
        f"Dataset `{s['dataset']}`: {s['n_train']} training / {s['n_test']} test images of shape "
        f"{tuple(s['image_shape'])}; {s['epochs']} epochs, batch {s['batch_size']}, {s['activation']}, "
        f"{s['optimizer']}, MSE, seed {s['seed']}; JAX backend `{s['backend']}`. Train metrics are "
        "measured on the first 2,000 training images, as the homework's loop does; epoch 0 is before "
        f"training. Wall time of this command: {s['seconds']:.1f} s (runs read back from an earlier "
        "invocation keep that invocation's seconds).",
        "Runs of one architecture are trained together as one compiled sweep; a run's seconds are "
        "its sweep's wall time (compilation included), shared by the sweep's runs.",
        table(s["runs"], out_dir),
        "## 1. MLP (128, 128), learning rates " + ", ".join(f"{lr:g}" for lr in presets.LRS),
        f"![test MAE per epoch, MLP]({figures['mlp_lr']})",
        "## 2. CNN (16, 32, 45), kernel 3, dense (128,)",
        f"The default lr {presets.DEFAULT_LR:g} and the three learning rates of experiment 1, in one sweep.",
        f"![test MAE per epoch, CNN]({figures['cnn_lr']})",
        "## 3. Deep and shallow CNNs",
        f"Parameters: {groups['cnn'].label}: {counts['cnn']:,}; {groups['deep_cnn'].label}: "
        f"{counts['deep_cnn']:,}; {groups['shallow_cnn'].label}: {counts['shallow_cnn']:,} (its "
        "channel count is the one whose parameter count is closest to the (16, 32, 45) CNN's). All at lr "
        f"{presets.DEFAULT_LR:g}.",
        f"![train and test MAE of the three CNNs]({figures['cnns_train_test']})",
        "## 4. Equivariance",
        "`relu(conv(relu(conv(x))))` with one random 3x3 conv (no padding) on the first training "
        f"image; mean absolute error |T(model(x)) - model(T(x))| over the map: shift by "
        f"{tuple(eq['shift'])} pixels **{eq['shift_error']:.4f}**, 90-degree rotation "
        f"**{eq['rotation_error']:.4f}**.",
        f"![equivariance]({figures['equivariance']})",
    ]
    return "\n\n".join(paragraphs) + "\n"
