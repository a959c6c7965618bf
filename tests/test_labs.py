"""`jaxtrainer lab logreg|mlp|mnist` end to end on tiny data: the files they write, and their
numbers checked against independent computations (numpy on the saved parameters, the logs)."""

import json
import os
import subprocess
import sys

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


@pytest.mark.slow
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
                "--batch-size",
                "1",
                "50",
                "--lr",
                "0.01",
                "0.001",
                "--out",
                str(out),
                "--no-progress",
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


@pytest.mark.slow
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
                "--depth",
                "1",
                "3",
                "--width",
                "8",
                "16",
                "--sgd-lr",
                "0.1",
                "--adam-lr",
                "0.01",
                "0.001",
                "--batch-size",
                "64",
                "--out",
                str(out),
                "--no-progress",
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


@pytest.mark.slow
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
                "--no-progress",
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
        (["lab", "logreg", "--batch-size", "20", "0"], "argument --batch-size: must be an int > 0, got 0"),
        (["lab", "logreg", "--lr", "0.1", "nan"], "argument --lr: must be a finite number > 0, got nan"),
        (["lab", "mlp", "--depth", "1", "-2"], "argument --depth: must be an int >= 0, got -2"),
        (["lab", "mlp", "--width", "0"], "argument --width: must be an int >= 1, got 0"),
        (["lab", "mnist", "--lr", "-0.5"], "argument --lr: must be a finite number > 0, got -0.5"),
        (["lab", "mnist", "--epochs", "-1"], "argument --epochs: must be an int >= 0, got -1"),
    ],
)
def test_lab_bad_value_is_refused_by_its_flag(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--dataset", "digits", "--out", str(tmp_path / "bad"), "--no-progress"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"jaxtrainer {argv[0]} {argv[1]}: error: {message}"
    assert not os.path.exists(tmp_path / "bad")


def test_lab_bad_dataset(tmp_path, capsys):
    assert main(["lab", "mlp", "--dataset", "svhn", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxtrainer: error: ") and "unknown classification dataset 'svhn'" in err
    assert not os.path.exists(tmp_path / "bad")


def without_seconds(record):
    """A member's record but its wall time, the one field two equal runs may differ in."""
    return {k: v for k, v in record.items() if k != "seconds"}


@pytest.mark.slow
def test_interrupted_lab_continues_mid_sweep_and_refuses_another_configuration(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the middle of the second sweep's epochs: the same command trains only the epochs
    not saved yet and gives the results of an uninterrupted run; more epochs continue the sweeps;
    fewer epochs or another grid are refused with the fields named, unless --overwrite."""
    from jaxtrainer import runs
    from jaxtrainer.sweeps import programs

    argv = ["lab", "logreg", "--dataset", "digits", "--batch-size", "100", "--lr", "0.01", "0.001"]
    argv += ["--no-progress"]
    real_epoch, trained, interrupt_before = programs.sweep_epoch, [], None

    def counted_epoch(graphdef, states, data, settings, mesh=None):
        """Every compiled epoch of a sweep, by optimizer; Ctrl-C before the chosen one."""
        if len(trained) == interrupt_before:
            raise KeyboardInterrupt
        trained.append(settings.optimizer.__name__)
        return real_epoch(graphdef, states, data, settings, mesh)

    monkeypatch.setattr(programs, "sweep_epoch", counted_epoch)
    whole, out = tmp_path / "whole", tmp_path / "cut"
    assert main([*argv, "--epochs", "3", "--out", str(whole)]) == 0
    assert trained == ["sgd"] * 3 + ["adam"] * 3
    expected = json.loads((whole / "results.json").read_text())

    trained[:], interrupt_before = [], 4  # after adam's first epoch
    assert main([*argv, "--epochs", "3", "--out", str(out)]) == 130  # in-process: returned, not os._exit
    sgd, adam = out / "sweeps" / "sgd-batch100", out / "sweeps" / "adam-batch100"
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"the last finished epoch is saved in {sgd} (3 epochs), {adam} (1 epoch): "
            "run the same command again to continue"
        )
    )
    assert [runs.read_header(str(f / runs.CHECKPOINT))[0] for f in (sgd, adam)] == [3, 1]
    assert not (out / "results.json").exists()

    trained[:], interrupt_before = [], None
    assert main([*argv, "--epochs", "3", "--out", str(out)]) == 0
    assert trained == ["adam", "adam"]  # SGD read back, Adam's first epoch not trained again
    resumed = json.loads((out / "results.json").read_text())
    assert [without_seconds(m) for m in resumed["members"]] == [
        without_seconds(m) for m in expected["members"]
    ]
    assert without_seconds(resumed["best"]) == without_seconds(expected["best"])
    assert resumed["test"] == expected["test"]
    with np.load(out / "best_model.npz") as a, np.load(whole / "best_model.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)

    trained[:] = []
    assert main([*argv, "--epochs", "4", "--out", str(out)]) == 0  # one more epoch continues each sweep
    assert trained == ["sgd", "adam"]
    longer = json.loads((out / "results.json").read_text())
    for m, before in zip(longer["members"], expected["members"]):
        assert {k: v[:4] for k, v in m["logs"].items()} == before["logs"] and len(
            m["logs"]["val_accuracy"]
        ) == 5

    capsys.readouterr()
    for changed, message in (
        (["--epochs", "2"], f"{sgd} already holds 4 epochs of this run and 2 were asked"),
        (
            ["--epochs", "4", "--lr", "0.01", "0.1"],
            "refusing to continue it with a different configuration "
            "(lrs: saved [0.01, 0.001], now [0.01, 0.1])",
        ),
    ):
        assert main([*argv, *changed, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert trained == ["sgd", "adam"]  # nothing trained by the refused commands
    assert main([*argv, "--epochs", "1", "--lr", "0.01", "0.1", "--out", str(out), "--overwrite"]) == 0
    assert trained == ["sgd", "adam"] * 2
    started_over = json.loads((out / "results.json").read_text())
    assert sorted({m["lr"] for m in started_over["members"]}) == [0.01, 0.1]
    assert all(len(m["logs"]["val_accuracy"]) == 2 for m in started_over["members"])


@pytest.mark.parametrize(
    "argv, shown",
    [
        (["--help"], "the course's other labs, A-D"),
        (["lab", "--help"], "Lab D: MNIST by hand, linear and deep classifiers"),
        (["lab", "mlp", "--help"], "Lab C: an MLP whose backward pass is written by hand"),
        (["lab", "logreg", "--help"], "--no-progress"),
    ],
)
def test_help_loads_no_jax(argv, shown):
    """The parser reads each lab's options and description without importing the lab."""
    code = (
        "import sys\nfrom jaxtrainer.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'jax' not in sys.modules, 'jax loaded'"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout
