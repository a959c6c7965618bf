"""benchmarks/device_check.sh --dry-run: the GPU machine's script, run on the CPU at tiny sizes,
prints one table with every row measured."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from jaxtrainer import bench

REPO = pathlib.Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"^\d+\.\d\d$")


@pytest.mark.slow
def test_the_dry_run_prints_one_table_with_every_row_measured(tmp_path):
    done = subprocess.run(
        ["bash", "benchmarks/device_check.sh", "--dry-run", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert sum(line.startswith("| measurement |") for line in lines) == 1, done.stdout
    table = [line for line in lines if line.startswith("| ") and not line.startswith("| measurement |")]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert (tmp_path / "device_check.md").read_text() in done.stdout

    expected = [f"{row}: {bench.describe(row)}, s/epoch" for row in ("mlp", "cnn", "deep_cnn", "shallow_cnn")]
    sweep = "K=8 lr sweep, CNN (16, 32, 45) k3 + (128,): one program (map), s/epoch"
    expected += [sweep, sweep, "whole homework (experiments 1-4), 256 synthetic images, 1 epochs, s"]
    assert [r["measurement"] for r in report["rows"]] == expected
    assert len(table) == len(expected)
    for line, row in zip(table, report["rows"]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row["measurement"]
        assert NUMBER.match(cells[1]) and row["jaxtrainer_s"] > 0, line
        if row["baseline"]:
            assert NUMBER.match(cells[2]) and row["baseline_s"] > 0, line
            assert cells[3] == row["baseline"]
            assert cells[4] == f"{row['jaxtrainer_s'] / row['baseline_s']:.2f}x"
        else:
            assert cells[2:] == ["", "", ""]

    by = {(r["framework"], r["model"]): r for r in report["bench"]}
    assert set(by) == {
        (f, m) for f in ("jax", "torch") for m in ("mlp", "cnn", "deep_cnn", "shallow_cnn", "cnn_sweep8")
    }
    sequential_jax, sequential_torch = report["rows"][4], report["rows"][5]
    assert sequential_jax["baseline"] == "8 sequential jaxtrainer runs (8 x cnn)"
    assert sequential_jax["baseline_s"] == pytest.approx(8 * by[("jax", "cnn")]["median_epoch_s"], rel=1e-12)
    assert sequential_torch["baseline"] == "8 sequential PyTorch reference runs"
    assert sequential_torch["baseline_s"] == by[("torch", "cnn_sweep8")]["median_epoch_s"]
    assert report["devices"] == {"jax": "cpu", "torch": "cpu"}
