"""The benchmarks that have no test file of their own, run end to end on tiny inputs: what they
write agrees with what they measured (backprop_speed, device_check and synthetic_idx have their own)."""

import json
import sys

import pytest

from benchmarks import homework_synthetic, similarity_speed, sweep_bench


@pytest.mark.slow
def test_sweep_bench_reports_each_strategys_median_and_its_ratio_to_one_run(tmp_path):
    argv = ["--network", "mlp", "--k", "2", "--epochs", "2", "--n-train", "256", "--n-test", "64"]
    assert sweep_bench.main([*argv, "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "sweep.json").read_text())
    (row,) = report["rows"]
    assert (row["model"], row["k"], report["meta"]["epochs"]) == ("mlp", 2, 2)
    for key in ("solo", "vmap", "map"):
        assert len(row[key]) == 2 and all(seconds > 0 for seconds in row[key])
        assert row["median"][key] == row[key][1]  # the median of the epochs after the first
    median = row["median"]
    cells = [f"{median['solo']:.2f}"] + [
        f"{median[s]:.2f} | {median[s] / median['solo']:.2f}x" for s in ("vmap", "map")
    ]
    assert f"| mlp | {' | '.join(cells)} |" in (tmp_path / "sweep.md").read_text()


def test_similarity_speed_finds_no_pair_with_the_template_and_every_pair_without(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["similarity_speed", "--submissions", "4"])
    similarity_speed.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("4 submissions of ")
    assert "with the template: find_similar" in lines[1] and "(0 pairs >= 0.5)" in lines[1]
    assert "without the template: find_similar" in lines[2] and "(6 pairs >= 0.5)" in lines[2]  # 4 * 3 / 2


@pytest.mark.slow
def test_homework_synthetic_runs_the_four_experiments(tmp_path, capsys):
    out = tmp_path / "homework"
    argv = ["--epochs", "1", "--n-train", "256", "--n-test", "64", "--no-progress", "--out", str(out)]
    assert homework_synthetic.main(argv) == 0
    assert "homework on SYNTHETIC random data, 256 images, 1 epochs: " in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n_train"], summary["n_test"], summary["epochs"]) == (256, 64, 1)
    assert len(summary["runs"]) == 9  # experiments 1-3: 3 MLP lrs, 4 CNN lrs, the deep and shallow CNNs
    assert "equivariance" in summary  # experiment 4
