"""`jaxtrainer homework`: experiments 1-4 end to end on a tiny rotated-PNG folder (compilation
dominates: one epoch of 48 images)."""

import json
import logging
import math
import re

import numpy as np
import pytest
from conftest import write_png_folder

from jaxtrainer import presets
from jaxtrainer.cli import main as cli_main
from jaxtrainer.experiments import homework
from jaxtrainer.experiments.groups import Group, train_group
from jaxtrainer.spec import Spec

pytestmark = pytest.mark.slow  # its module fixture runs the whole homework

RUNS = [
    "mlp/lr_0.01",
    "mlp/lr_0.0001",
    "mlp/lr_1e-08",
    "cnn/lr_0.01",
    "cnn/lr_0.001",
    "cnn/lr_0.0001",
    "cnn/lr_1e-08",
    "deep_cnn/lr_0.001",
    "shallow_cnn/lr_0.001",
]


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    return write_png_folder(tmp_path_factory.mktemp("rotated"))


@pytest.fixture(scope="module")
def homework_run(png_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("homework")
    argv = ["homework", "--dataset", str(png_folder), "--epochs", "1", "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 0
    return out, argv


def table_rows(report: str):
    rows = {}
    for line in report.splitlines():
        m = re.match(r"\| \[([^\]]+)\]\(([^)]+)\) \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), [c.strip() for c in m.group(3).split("|")])
    return rows


def close(cell: str, value) -> bool:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return cell == str(value)
    return math.isclose(float(cell), value, rel_tol=1e-3, abs_tol=1e-4)


def test_homework_writes_every_run_figure_and_a_report_matching_the_logs(homework_run):
    out, _ = homework_run
    for name in (
        "report.md",
        "summary.json",
        "mlp_lr.png",
        "cnn_lr.png",
        "cnns_train_test.png",
        "equivariance.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for group in ("mlp", "cnn", "deep_cnn", "shallow_cnn"):
        assert (out / group / "checkpoint.npz").is_file()
    report = (out / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    rows = table_rows(report)
    assert list(rows) == RUNS == [r["run"] for r in summary["runs"]]
    for run in RUNS:
        link, cells = rows[run]
        assert link == f"{run}/logs.json"
        saved = json.loads((out / link).read_text())
        logs, config = saved["logs"], saved["config"]
        assert (out / run / "logs.csv").read_text().count("\n") == 3  # header, epochs 0 and 1
        assert all(len(v) == 2 for v in logs.values())
        lr, *finals, best, diverged, seconds = cells
        assert float(lr) == config["lr"]
        for cell, key in zip(finals, ("train_loss", "test_loss", "train_mae", "test_mae")):
            assert close(cell, logs[key][-1]), (run, key, cell, logs[key][-1])
        best_value, best_epoch = re.match(r"(\S+) \((\d+)\)", best).groups()
        assert int(best_epoch) == int(np.nanargmin(logs["test_mae"]))
        assert close(best_value, min(logs["test_mae"]))
        assert diverged == (
            "no" if config["diverged_at_epoch"] is None else f"epoch {config['diverged_at_epoch']}"
        )
        assert close(seconds.split()[0], round(config["seconds"], 1))
        assert f"({config['sweep']['size']} run" in seconds
    # the sweeps: one program per architecture
    sizes = {r["run"]: r["sweep_size"] for r in summary["runs"]}
    assert sizes["mlp/lr_0.01"] == 3 and sizes["cnn/lr_0.001"] == 4 and sizes["deep_cnn/lr_0.001"] == 1
    eq = summary["equivariance"]
    assert f"**{eq['shift_error']:.4f}**" in report and f"**{eq['rotation_error']:.4f}**" in report
    for figure in summary["figures"].values():
        assert f"]({figure})" in report


def test_parameter_counts_and_the_matching_shallow_cnn(homework_run):
    out, _ = homework_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"] == {"cnn": 110_222, "deep_cnn": 331_265, "shallow_cnn": 110_234}
    assert summary["shallow_cnn"]["n_channels"] == [9] and summary["shallow_cnn"]["kernel_sizes"] == [28]
    count = lambda c: homework.parameter_count("cnn", presets.shallow_cnn(c, 28), (1, 28, 28))  # noqa
    assert abs(count(9) - 110_222) < min(abs(count(8) - 110_222), abs(count(10) - 110_222))


def test_running_again_skips_the_finished_runs(homework_run, capsys):
    out, argv = homework_run
    before = {run: (out / run / "logs.json").read_text() for run in RUNS}
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    for group, n in (("mlp", 3), ("cnn", 4), ("deep_cnn", 1), ("shallow_cnn", 1)):
        assert f"{group}: {n} run(s) already finished" in printed
    assert {run: (out / run / "logs.json").read_text() for run in RUNS} == before
    summary = json.loads((out / "summary.json").read_text())
    assert all(r["skipped"] for r in summary["runs"])


def test_a_sweep_asked_for_more_epochs_resumes_from_its_checkpoint(png_folder, tmp_path, caplog):
    from jaxtrainer import data
    from jaxtrainer.config import NetworkConfiguration

    ds = data.load(str(png_folder))
    spec = Spec("mlp", NetworkConfiguration(dense_hiddens=(8,)), members=[(1e-2, presets.SEED), (1e-3, 5)])

    def run(out, epochs):
        group = Group(spec.replace(epochs=epochs), "g")
        with group.open(str(out), data.fingerprint(ds.train, ds.test)) as folder:
            return train_group(group, ds, folder, progress=False)[0]

    run(tmp_path / "a", 1)
    with caplog.at_level(logging.INFO, logger="jaxtrainer"):
        resumed = run(tmp_path / "a", 2)
    assert f"resuming after epoch 1 from {tmp_path / 'a' / 'g' / 'checkpoint.npz'}" in caplog.text
    straight = run(tmp_path / "b", 2)
    assert [r["logs"] for r in resumed] == [r["logs"] for r in straight]
    assert [r["name"] for r in resumed] == ["g/lr_0.01", "g/lr_0.001"]
