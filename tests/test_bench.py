"""`jaxtrainer bench` (jaxtrainer/bench.py) end to end on tiny data, and its argument errors."""

import json
import statistics
import subprocess
import sys
from types import SimpleNamespace

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


@pytest.mark.slow
def test_bench_writes_both_frameworks_and_the_ratio(tmp_path):
    models = ["mlp", "cnn_sweep3"]
    args = [
        "--network",
        *models,
        "--n-train",
        "512",
        "--n-test",
        "128",
        "--epochs",
        "2",
        "--repeats",
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
    assert report["meta"]["models"] == models and report["meta"]["repeats"] == 2
    by = {(r["framework"], r["model"]): r for r in report["rows"]}
    assert set(by) == {(f, m) for f in ("torch", "jax") for m in models}
    for row in by.values():
        assert len(row["runs"]) == 2
        for run in row["runs"]:
            assert len(run["epoch_s"]) == 2 and all(t > 0 for t in run["epoch_s"])
            assert run["median_epoch_s"] == run["epoch_s"][1] and run["first_epoch_s"] == run["epoch_s"][0]
        medians = [run["median_epoch_s"] for run in row["runs"]]
        assert row["median_epoch_s"] == pytest.approx(statistics.median(medians), rel=1e-12)
        assert (row["min_epoch_s"], row["max_epoch_s"]) == (min(medians), max(medians))
        assert row["first_epoch_s"] > 0 and row["peak_rss_mb"] > 0
    assert by[("jax", "cnn_sweep3")]["strategy"] == Settings().strategy  # map on CPU
    assert by[("torch", "cnn_sweep3")]["lrs"] == [1e-2, 1e-3, 1e-4]
    for model in models:
        ratio = by[("jax", model)]["median_epoch_s"] / by[("torch", model)]["median_epoch_s"]
        assert report["ratios"][model] == pytest.approx(ratio, rel=1e-12)
        line = next(l for l in table.splitlines() if l.startswith(f"| {model} |"))
        assert f"| {ratio:.2f}x" in line
        jax = by[("jax", model)]
        if f"{jax['min_epoch_s']:.2f}" != f"{jax['max_epoch_s']:.2f}":
            assert f" ({jax['min_epoch_s']:.2f}–{jax['max_epoch_s']:.2f}) |" in line
    assert "cnn_sweep3: CNN (16, 32, 45)" in table and "one run after another" in table


def test_bench_unknown_model_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--network", "mlp", "resnet50", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "jaxtrainer bench" in err and "resnet50" in err
    for choice in ("mlp", "cnn", "deep_cnn", "shallow_cnn", "cnn_sweep3"):
        assert choice in err
    assert not (tmp_path / "compare.json").exists()


def test_bench_an_out_it_cannot_write_is_refused_before_measuring(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    assert main(["bench", "--network", "mlp", "--out", str(tmp_path / "taken")]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing measured
    assert err == (
        f"jaxtrainer: error: --out '{tmp_path / 'taken'}' exists and is not a folder; choose another path\n"
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
    for option in ("--network", "--epochs", "--repeats", "--n-train", "--n-test", "--out"):
        assert option in out


def test_bench_repeats_give_the_median_and_range_of_the_runs(monkeypatch):
    """Canned workers: each repeat's epochs are known, so the medians, ranges, paired ratios and the
    table's cells are computed here by hand."""
    # (framework, row): one run per repeat, its epochs' seconds (the first is warm-up)
    epochs = {
        ("torch", "mlp"): [[5.0, 2.0, 2.0], [5.0, 4.0, 4.0], [5.0, 2.5, 2.5]],
        ("jax", "mlp"): [[9.0, 1.0, 1.0], [7.0, 2.0, 2.0], [8.0, 1.5, 1.5]],
        ("torch", "cnn"): [[6.0, 3.0, 3.0]] * 3,
        ("jax", "cnn"): [[9.0, 1.0, 2.0], [9.0, 1.0, 2.0], [9.0, 1.0, 2.0]],
    }
    calls = []

    def worker(command, **kwargs):
        framework = "jax" if "--worker" in command else "torch"
        row = command[command.index("--worker" if framework == "jax" else "--network-type") + 1]
        run = epochs[(framework, row)][sum(c == (framework, row) for c in calls)]
        calls.append((framework, row))
        report = {"runs": [run], "device": "cpu", "peak_rss_mb": 100.0 * len(calls)}
        return SimpleNamespace(returncode=0, stdout=json.dumps(report) + "\n", stderr="")

    monkeypatch.setattr(bench.subprocess, "run", worker)
    rows = bench.measure(["mlp", "cnn"], 3, 64, 16, repeats=3)
    # interleaved repeats, the frameworks' order alternating by row and by repeat
    assert calls == [
        *[("torch", "mlp"), ("jax", "mlp"), ("jax", "cnn"), ("torch", "cnn")],
        *[("jax", "mlp"), ("torch", "mlp"), ("torch", "cnn"), ("jax", "cnn")],
        *[("torch", "mlp"), ("jax", "mlp"), ("jax", "cnn"), ("torch", "cnn")],
    ]
    by = {(r["framework"], r["model"]): r for r in rows}
    assert [r["median_epoch_s"] for r in by[("jax", "mlp")]["runs"]] == [1.0, 2.0, 1.5]
    assert (by[("jax", "mlp")]["median_epoch_s"], by[("jax", "mlp")]["min_epoch_s"]) == (1.5, 1.0)
    assert by[("jax", "mlp")]["max_epoch_s"] == 2.0 and by[("jax", "mlp")]["first_epoch_s"] == 8.0
    assert by[("jax", "mlp")]["peak_rss_mb"] == 1000.0  # the largest of its runs': call 10 of 12
    assert by[("torch", "mlp")]["median_epoch_s"] == 2.5
    assert bench.ratios(rows) == {"mlp": 1.5 / 2.5, "cnn": 1.5 / 3.0}
    assert bench.ratio_ranges(rows) == {"mlp": (0.5, 0.6), "cnn": (0.5, 0.5)}

    meta = {"models": ["mlp", "cnn"], "epochs": 3, "repeats": 3, "n_train": 64, "machine": "test"}
    table = bench.markdown(rows, meta).splitlines()
    assert "3 runs per framework and model, each in a fresh process: median (min–max)" in table[0]
    assert table[4].startswith(
        "| mlp | 2.50 (2.00–4.00) | 1.50 (1.00–2.00) | 0.60x (0.50–0.60x) | 5.00 | 8.00 |"
    )
    assert table[5].startswith("| cnn | 3.00 | 1.50 | 0.50x | 6.00 | 9.00 |")  # runs that agree: no range


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--repeats", "0"], "argument --repeats: must be an int >= 1, got 0"),
        (["--epochs", "1"], "argument --epochs: must be an int >= 2, got 1"),
        (["--n-train", "0"], "argument --n-train: must be an int > 0, got 0"),
    ],
)
def test_bench_values_out_of_range_are_refused_by_flag(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv, "--out", str(tmp_path / "results")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"jaxtrainer bench: error: {message}"
    assert not (tmp_path / "results").exists()


def test_a_workers_peak_memory_is_its_own_not_its_parents():
    """Each bench worker reports its peak memory; getrusage's ru_maxrss is kept across fork and exec,
    so a worker started by a large parent reported the parent's peak (1,526 MiB here, before). A
    worker that holds 300 MiB, started by a parent holding 1.5 GiB, reports about 300 MiB."""
    child = (
        "import numpy as np\n"
        "from jaxtrainer.bench import peak_rss_mb\n"
        "held = np.ones(300 * 2**20 // 8)\n"
        "print(peak_rss_mb())\n"
    )
    parent = (
        "import subprocess, sys\n"
        "import numpy as np\n"
        "held = np.ones(1500 * 2**20 // 8)\n"
        f"done = subprocess.run([sys.executable, '-c', {child!r}],\n"
        "                      capture_output=True, text=True, check=True)\n"
        "print(done.stdout)\n"
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True)
    peak = float(out.stdout.split()[-1])
    assert 300 < peak < 600, peak
