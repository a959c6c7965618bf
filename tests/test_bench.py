"""`jaxtrainer bench` (jaxtrainer/bench.py) end to end on tiny data, and its argument errors."""

import json
import subprocess
import sys

import pytest

from jaxtrainer import bench
from jaxtrainer.cli import main
from jaxtrainer.settings import Settings

# The command in a fresh interpreter, which must not have imported torch by its end: PyTorch runs
# only in the workers the command starts.
BENCH_WITHOUT_TORCH = (
    "import sys; from jaxtrainer.cli import main; rc = main(sys.argv[1:]); "
    "assert 'torch' not in sys.modules, 'jaxtrainer bench imported torch'; raise SystemExit(rc)"
)


def test_bench_writes_both_frameworks_and_the_ratio(tmp_path):
    models = ["mlp", "cnn_sweep3"]
    args = [
        "--models",
        *models,
        "--n-train",
        "512",
        "--n-test",
        "128",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(
        [sys.executable, "-c", BENCH_WITHOUT_TORCH, "bench", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "compare.json").read_text())
    table = (tmp_path / "compare.md").read_text()
    assert report["meta"]["models"] == models
    by = {(r["framework"], r["model"]): r for r in report["rows"]}
    assert set(by) == {(f, m) for f in ("torch", "jax") for m in models}
    for row in by.values():
        assert len(row["epoch_s"]) == 2 and all(t > 0 for t in row["epoch_s"])
        assert row["median_epoch_s"] > 0 and row["first_epoch_s"] > 0 and row["peak_rss_mb"] > 0
    assert by[("jax", "cnn_sweep3")]["strategy"] == Settings().strategy  # map on CPU
    assert by[("torch", "cnn_sweep3")]["lrs"] == [1e-2, 1e-3, 1e-4]
    for model in models:
        ratio = by[("jax", model)]["median_epoch_s"] / by[("torch", model)]["median_epoch_s"]
        assert report["ratios"][model] == pytest.approx(ratio, rel=1e-12)
        line = next(l for l in table.splitlines() if l.startswith(f"| {model} |"))
        assert f"| {ratio:.2f}x |" in line
    assert "cnn_sweep3: CNN (16, 32, 45)" in table and "one run after another" in table


def test_bench_unknown_model_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--models", "mlp", "resnet50", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "jaxtrainer bench" in err and "resnet50" in err
    for choice in ("mlp", "cnn", "deep_cnn", "shallow_cnn", "cnn_sweep3"):
        assert choice in err
    assert not (tmp_path / "compare.json").exists()


def test_bench_an_out_it_cannot_write_is_refused_before_measuring(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    assert main(["bench", "--models", "mlp", "--out", str(tmp_path / "taken")]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing measured
    assert err == (
        f"jaxtrainer: error: the output folder '{tmp_path / 'taken'}' exists and is not a folder; "
        "choose another path\n"
    )


def test_bench_interrupted_says_nothing_was_written(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "measure", interrupted)
    assert main(["bench", "--out", str(tmp_path / "results")]) == 130
    assert capsys.readouterr().err == (
        f"jaxtrainer: interrupted; nothing written: the table goes to {tmp_path / 'results'} at the end\n"
    )
    assert list((tmp_path / "results").iterdir()) == []


def test_bench_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--models", "--epochs", "--n-train", "--n-test", "--out"):
        assert option in out
