"""Training semantics of the engine: epochs, short batches, chunked evaluation, determinism."""

import json
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_dataset, traced_at_most

from jaxtrainer import equivariance, models, train
from jaxtrainer.cli import main as cli_main
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.gradient import apply
from jaxtrainer.settings import Settings
from jaxtrainer.sweeps import stack, sweep_epoch, unstack
from torch_compat import Trainer

SMALL_CNN = NetworkConfiguration((4, 8), (3, 3), (1, 1), (16,))


def make_state(network="cnn", cfg=SMALL_CNN, lr=1e-3, seed=0):
    model = models.build_network(network, (1, 28, 28), cfg, seed=seed)
    return train.init_state(model, lr)


def epoch(graphdef, state, X, y, settings, program=sweep_epoch):
    """One solo epoch through the one epoch program (a sweep of one member): (state, step metrics)."""
    X, y = jnp.asarray(X), jnp.asarray(y)
    states, steps, _ = program(graphdef, stack([state]), (X, y, None, ((X, y),)), settings)
    return unstack(states, 0), unstack(steps, 0)


@pytest.mark.slow
@pytest.mark.parametrize("n", [100, 96, 20])
def test_scanned_epoch_equals_consecutive_steps_with_a_short_last_batch(n, rng):
    (X, y), _ = random_dataset(rng, n_train=n, n_test=1)
    graphdef, state = make_state()
    scanned, metrics = epoch(graphdef, state, X, y, Settings(batch_size=32))[:2]
    stepped, losses = state, []
    for start in range(0, n, 32):
        stepped, m = train.train_step(graphdef, stepped, X[start : start + 32], y[start : start + 32])
        losses.append(float(m["loss"]))
    assert len(metrics["loss"]) == -(-n // 32) == len(losses)
    np.testing.assert_allclose(np.asarray(metrics["loss"]), losses, rtol=1e-5)
    chex.assert_trees_all_close(scanned.params, stepped.params, atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_evaluation_equals_one_big_batch(chunk, rng):
    (X, y), _ = random_dataset(rng, n_train=50, n_test=1)
    graphdef, state = make_state()
    pred = np.asarray(apply(graphdef, state.params, jnp.asarray(X)), np.float64)
    metrics = train.evaluate(graphdef, state.params, X, y, Settings(eval_chunk=chunk, strategy="map"))
    assert float(metrics["loss"]) == pytest.approx(np.mean((pred - y) ** 2), rel=1e-5)
    assert float(metrics["mae"]) == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-5)


@pytest.mark.slow
def test_learning_rate_is_data_not_a_compile_time_constant(rng):
    (X, y), _ = random_dataset(rng, n_train=64, n_test=1)
    X, y = jnp.asarray(X), jnp.asarray(y)
    graphdef, s1 = make_state(lr=1e-3)
    _, s2 = make_state(lr=1e-2)
    (program,) = traced_at_most(1, sweep_epoch)  # two learning rates, one trace
    a = epoch(graphdef, s1, X, y, Settings(batch_size=32), program)[0]
    b = epoch(graphdef, s2, X, y, Settings(batch_size=32), program)[0]
    moved = [
        float(jnp.abs(p1 - p0).max() / jnp.abs(p2 - p0).max())
        for p0, p1, p2 in zip(
            jax.tree.leaves(s1.params), jax.tree.leaves(a.params), jax.tree.leaves(b.params)
        )
    ]
    assert all(m < 0.5 for m in moved)  # lr 1e-3 moves the weights much less than lr 1e-2


@pytest.mark.slow
def test_train_loop_on_the_embedded_digits():
    t = Trainer(
        "cnn",
        NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,)),
        dataset="digits",
        progress=False,
    )
    logs = t.train_loop(2)
    assert set(logs) == {"train_loss", "test_loss", "train_mae", "test_mae"}
    assert all(len(v) == 3 and np.all(np.isfinite(v)) for v in logs.values())
    assert logs["test_loss"][2] < logs["test_loss"][0] * 0.7
    again = Trainer(
        "cnn",
        NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,)),
        dataset="digits",
        progress=False,
    ).train_loop(2)
    assert again == logs  # same seed, same logs, bit for bit
    other = Trainer(
        "cnn",
        NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,)),
        dataset="digits",
        seed=1,
        progress=False,
    ).train_loop(2)
    assert other["test_loss"] != logs["test_loss"]


@pytest.mark.slow
def test_train_loop_logs_the_first_2000_training_examples(rng):
    train_set, test_set = random_dataset(rng, n_train=2100, n_test=30)
    t = Trainer(
        "mlp", NetworkConfiguration(dense_hiddens=(8,)), dataset=(train_set, test_set), progress=False
    )
    loss0, _ = t.evaluate(train_set[0][:2000], train_set[1][:2000])
    logs = t.train_loop(0)
    assert logs["train_loss"] == [pytest.approx(loss0.item())]
    t.train_loop(1)
    assert len(logs["train_loss"]) == 3  # a second call appends, as the reference does
    assert logs["train_loss"][2] == pytest.approx(t.evaluate(*(a[:2000] for a in train_set))[0].item())


@pytest.mark.slow
def test_a_dataset_smaller_than_one_batch_trains(rng):
    train_set, test_set = random_dataset(rng, n_train=5, n_test=3)
    t = Trainer("cnn", SMALL_CNN, batch_size=128, dataset=(train_set, test_set), progress=False)
    logs = t.train_loop(1)
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in logs.values())


@pytest.mark.slow
def test_equivariance_of_a_conv_net_to_shifts_but_not_rotations(rng):
    image = rng.uniform(0, 1, (28, 28))
    maps = equivariance.equivariance_maps(image, seed=0)
    assert maps["output"].shape == (24, 24)
    assert np.count_nonzero(maps["output"]) > 100  # a live network, or the checks below are void
    # away from the zero-filled border, shifting commutes with the conv net exactly
    np.testing.assert_allclose(maps["shift_error_map"][7:, 7:], 0, atol=1e-6)
    assert maps["rotation_error"] > 1e-3
    np.testing.assert_array_equal(equivariance.rotate90(np.arange(4.0).reshape(2, 2)), [[1, 3], [0, 2]])
    shifted = equivariance.shift(np.arange(64.0).reshape(8, 8))
    assert shifted[5, 5] == 0 and shifted[7, 7] == 18 and shifted[:5].sum() == 0


@pytest.mark.slow
def test_cli_train_writes_logs_csv_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli_main(
        [
            "train",
            "--network",
            "cnn",
            "--channels",
            "4",
            "8",
            "--kernels",
            "3",
            "3",
            "--strides",
            "1",
            "1",
            "--hidden",
            "16",
            "--epochs",
            "1",
            "--dataset",
            "digits",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    saved = json.loads((out / "logs.json").read_text())
    assert saved["config"]["net_config"]["n_channels"] == [4, 8]
    assert all(len(v) == 2 for v in saved["logs"].values())
    rows = (out / "logs.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,test_loss,train_mae,test_mae" and len(rows) == 3
    assert float(rows[2].split(",")[4]) == pytest.approx(saved["logs"]["test_mae"][1])
    assert (out / "curves.png").stat().st_size > 10_000
    assert "final: train_mae" in capsys.readouterr().out


def test_cli_reports_bad_arguments_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's: the usage, then the line naming the flag
        cli_main(["train", "--lr", "0", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "jaxtrainer train: error: argument --lr: must be a finite number > 0, got 0.0"
    assert (
        cli_main(
            ["train", "--network", "cnn", "--channels", "16", "32", "--kernels", "3", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "same length" in capsys.readouterr().err


def test_cli_lab_bayesnet(capsys):
    assert cli_main(["lab", "bayesnet"]) == 0
    out = capsys.readouterr().out
    assert "P(R | do(g2))" in out and "0.34000" in out and "0.75485" in out


def test_a_continued_train_run_counts_the_time_of_its_earlier_epochs(tmp_path, monkeypatch):
    """Issue 21: `train --epochs 1` then `--epochs 2` in one folder records the total time, not only
    the second command's (the first epoch is made to last at least a second)."""
    from jaxtrainer.sweeps import programs

    program = programs.sweep_epoch

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return program(*args, **kwargs)

    argv = ["train", "--dataset", "digits", "--network", "mlp", "--hidden", "16", "--out", str(tmp_path)]
    seconds = lambda: json.loads((tmp_path / "logs.json").read_text())["config"]["seconds"]
    with monkeypatch.context() as patch:
        patch.setattr(programs, "sweep_epoch", slow)
        assert cli_main([*argv, "--epochs", "1", "--no-progress"]) == 0
    first = seconds()
    assert first >= 1.0
    assert cli_main([*argv, "--epochs", "2", "--no-progress"]) == 0
    assert seconds() > first
