"""`jaxtrainer lab logreg|mlp|mnist` end to end on tiny data: the files they write, and their
numbers checked against independent computations (numpy on the saved parameters, the logs)."""

import json
import os

import numpy as np
import pytest

from benchmarks.synthetic_idx import write_set
from jaxtrainer.cli import main
from jaxtrainer.data.classes import load_classes


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("idx")
    write_set(str(folder), n_train=400, n_test=120, seed=1)
    return str(folder)


def numpy_accuracy(npz_path, X, y) -> float:
    """The saved θ's applied with numpy alone: h ← ReLU(θ [h, 1]) per hidden layer, argmax."""
    with np.load(npz_path) as z:
        thetas = [z[f"theta{i}"] for i in range(len(z.files))]
    h = X.astype(np.float64)
    for i, theta in enumerate(thetas):
        h = np.concatenate([h, np.ones((len(h), 1))], axis=1) @ theta.T
        if i < len(thetas) - 1:
            h = np.maximum(h, 0)
    return float(np.mean(h.argmax(axis=1) == y))


def test_lab_logreg(tmp_path, idx_dir, capsys):
    out = tmp_path / "logreg"
    assert (
        main(
            [
                "lab",
                "logreg",
                "--dataset",
                "fashion_mnist",
                "--data-dir",
                idx_dir,
                "--epochs",
                "1",
                "--batch-sizes",
                "1",
                "50",
                "--lrs",
                "0.01",
                "0.001",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert f"wrote {out / 'report.md'}" in capsys.readouterr().out
    for name in ("report.md", "results.json", "best_curves.png", "best_model.npz"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "results.json").read_text())
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (360, 40, 120)
    members = summary["members"]
    assert sorted((m["optimizer"], m["batch_size"], m["lr"]) for m in members) == sorted(
        (o, b, lr) for o in ("sgd", "adam") for b in (1, 50) for lr in (0.01, 0.001)
    )
    for m in members:
        assert all(len(v) == 2 for v in m["logs"].values())  # epoch 0 and epoch 1
        accs = m["logs"]["val_accuracy"]
        assert m["best_epoch"] == int(np.argmax(accs))
    best = summary["best"]
    assert best["logs"]["val_accuracy"][best["best_epoch"]] == max(
        m["logs"]["val_accuracy"][m["best_epoch"]] for m in members
    )
    ds = load_classes("fashion_mnist", data_dir=idx_dir)
    assert summary["test"]["accuracy"] == pytest.approx(
        numpy_accuracy(out / "best_model.npz", ds.X_test, ds.y_test), abs=1e-6
    )
    report = (out / "report.md").read_text()
    cell = next(m for m in members if (m["optimizer"], m["batch_size"], m["lr"]) == ("adam", 50, 0.001))
    assert "| 0.001 | " in report and f"{100 * cell['logs']['val_accuracy'][-1]:.2f}" in report
    assert f"test accuracy {100 * summary['test']['accuracy']:.2f} %" in report


def test_lab_mlp(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert (
        main(
            [
                "lab",
                "mlp",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--depths",
                "1",
                "3",
                "--widths",
                "8",
                "16",
                "--sgd-lrs",
                "0.1",
                "--adam-lrs",
                "0.01",
                "0.001",
                "--batch-size",
                "64",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["gradient_check"]) == {"1", "3"}
    assert all(gap < 1e-5 for gap in summary["gradient_check"].values())
    assert len(summary["members"]) == 2 * 2 * 3
    ds = load_classes("digits")
    assert summary["test"]["accuracy"] == pytest.approx(
        numpy_accuracy(out / "best_model.npz", ds.X_test, ds.y_test), abs=1e-6
    )
    with np.load(out / "best_model.npz") as z:
        assert z["theta0"].shape == (summary["best"]["width"], 65)
    report = (out / "report.md").read_text()
    assert "## adam, lr 0.001: validation accuracy" in report and "| depth \\ width | 8 | 16 |" in report


def test_lab_mnist(tmp_path, idx_dir):
    out = tmp_path / "mnist"
    assert (
        main(
            [
                "lab",
                "mnist",
                "--dataset",
                "mnist",
                "--data-dir",
                idx_dir,
                "--epochs",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    for name in ("report.md", "results.json", "curves.png", "confusion.png"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "results.json").read_text())
    assert [r["network"] for r in summary["networks"]] == ["linear", "tanh-glorot", "relu-kaiming"]
    for r in summary["networks"]:
        counts = np.array(r["confusion"])
        assert counts.shape == (10, 10) and counts.sum() == 120
        assert np.trace(counts) / 120 == pytest.approx(r["test"]["accuracy"], abs=1e-6)
        assert r["batch_size"] == 1 and len(r["logs"]["train_loss"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["lab", "logreg", "--dataset", "digits", "--batch-sizes", "20", "0"],
            "batch_size must be an int > 0, got 0",
        ),
        (
            ["lab", "logreg", "--dataset", "digits", "--lrs", "0.1", "nan"],
            "lr must be a finite number > 0, got nan",
        ),
        (
            ["lab", "mlp", "--dataset", "digits", "--depths", "1", "-2"],
            "depths must be integers >= 0 and widths integers >= 1, got depths [1, -2], widths",
        ),
        (["lab", "mnist", "--dataset", "digits", "--lr", "-0.5"], "lr must be a finite number > 0, got -0.5"),
        (["lab", "mlp", "--dataset", "svhn"], "unknown classification dataset 'svhn'"),
        (["lab", "mnist", "--dataset", "digits", "--epochs", "-1"], "n_epochs must be an int >= 0, got -1"),
    ],
)
def test_lab_bad_input(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxtrainer: error: ") and message in err
    assert not os.path.exists(tmp_path / "bad")


def test_interrupted_lab_continues_from_its_finished_sweeps(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the second sweep: the first is kept; the same command trains only the rest and
    gives the results of an uninterrupted run; other settings train again."""
    from jaxtrainer.experiments import classify

    argv = [
        "lab",
        "logreg",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--batch-sizes",
        "100",
        "--lrs",
        "0.01",
        "0.001",
        "--quiet",
    ]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())

    real_fit_sweep, calls = classify.fit_sweep, []

    def fit_sweep(*args, **kwargs):
        calls.append(kwargs["optimizer"].__name__)
        if calls == ["sgd", "adam"] and interrupt:
            raise KeyboardInterrupt
        return real_fit_sweep(*args, **kwargs)

    monkeypatch.setattr(classify, "fit_sweep", fit_sweep)
    out = tmp_path / "cut"
    interrupt = True
    assert main([*argv, "--out", str(out)]) == 130
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"the finished sweeps are kept in {out / 'sweeps'}: the same command continues from them")
    )
    assert sorted(p.name for p in (out / "sweeps").iterdir()) == ["sgd-batch100.json", "sgd-batch100.npz"]
    interrupt, calls[:] = False, []
    assert main([*argv, "--out", str(out)]) == 0
    assert calls == ["adam"]  # the SGD sweep was loaded, not trained
    resumed = json.loads((out / "results.json").read_text())
    without_time = lambda members: [
        {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
        for m in members
    ]
    assert without_time(resumed["members"]) == without_time(whole["members"])
    assert resumed["test"] == whole["test"] and resumed["best"]["lr"] == whole["best"]["lr"]
    calls[:] = []
    assert main([*argv[:5], "2", *argv[6:], "--out", str(out)]) == 0  # --epochs 2
    assert calls == ["sgd", "adam"]
