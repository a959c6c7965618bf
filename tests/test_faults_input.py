"""Faults: values that cannot be trained on, refused by name in one line before anything runs:
empty, non-numeric or meta batches, seeds outside the one range, a multi-process run asked wrong."""

from __future__ import annotations

import numpy as np
import pytest
from fault_helpers import HIDDEN, SWEEP, refused

from jaxtrainer import models
from jaxtrainer.cli import main
from torch_compat import Trainer


# -- batches the facade cannot train on ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("method", ["evaluate", "training_step"])
def test_the_facades_batch_methods_refuse_empty_and_non_numeric_batches(method):
    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    call = getattr(t, method)
    y = np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match=r"must hold at least one example, got shape \(0, 1, 28, 28\)"):
        call(np.zeros((0, 1, 28, 28), np.float32), np.zeros((0, 1), np.float32))
    with pytest.raises(TypeError, match=r"must hold real numbers \(bool, int or float\), got dtype object"):
        call(np.empty((2, 1, 28, 28), object), y)
    with pytest.raises(TypeError, match=r"got dtype complex64"):
        call(np.zeros((2, 1, 28, 28), np.complex64), y)


@pytest.mark.slow
def test_bfloat16_tensors_are_read_exactly_and_a_meta_tensor_is_one_line():
    import torch

    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    X = torch.randn(4, 1, 28, 28).bfloat16()
    y = torch.randn(4, 1).bfloat16()
    assert t.evaluate(X, y) == t.evaluate(X.float(), y.float())
    np.testing.assert_array_equal(t.network(X), t.network(X.float()))
    weights = {k: torch.from_numpy(np.array(v)).bfloat16() for k, v in t.network.state_dict().items()}
    t.network.load_state_dict(weights)
    assert all(np.array_equal(t.network.state_dict()[k], weights[k].float().numpy()) for k in weights)
    meta = torch.empty((4, 1, 28, 28), device="meta")
    for call, label in (
        (lambda: t.training_step(meta, y), "X_batch"),
        (lambda: t.evaluate(X, meta[:, 0, 0, :1]), "y"),
        (lambda: t.network(meta), "the input"),
        (lambda: t.network.load_state_dict({**weights, "1.bias": meta[0, 0, 0, :8]}), "state_dict['1.bias']"),
    ):
        with pytest.raises(TypeError) as error:
            call()
        assert str(error.value) == (
            f"{label} is a meta tensor (a shape without values): create it on the cpu, with values"
        )


# -- one seed range everywhere -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**32, 2**63, 2**64 + 5])
def test_seeds_outside_the_one_range_are_refused_everywhere(seed, capfd):
    message = f"argument --seed: must be an int in [0, 4294967295] (0 to 2**32 - 1), got {seed}"
    for argv in (["train", "--seed", str(seed)], ["sweep", "--seed", "1", str(seed)]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capfd.readouterr().err
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\]"):
        Trainer("mlp", HIDDEN, dataset="digits", seed=seed)
    from jaxtrainer.spec import Spec, members_of

    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\]"):
        Spec(members=members_of([0.1], [0, seed]))


def test_distinct_seeds_in_the_range_draw_distinct_weights():
    draws = {
        seed: models.state_dict(models.build_network("mlp", (1, 4, 4), HIDDEN, seed=seed))["1.weight"]
        for seed in (0, 1, 2**31, 2**32 - 1)
    }
    assert len({w.tobytes() for w in draws.values()}) == 4


# -- a multi-process run asked wrong: refused before joining anything ----------------------------------------
JOIN = ["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "0"]


@pytest.mark.parametrize(
    "args,environment,message",
    [
        (JOIN[:2], {}, "a multi-process run needs --coordinator HOST:PORT, --num-processes N and --process"),
        ([*JOIN[:3], "0", *JOIN[4:]], {}, "--num-processes must be >= 1, got 0"),
        ([*JOIN[:5], "2"], {}, "--process-id must be in [0, 1] for --num-processes 2, got 2"),
        (["--coordinator", "localhost", *JOIN[2:]], {}, "--coordinator must be HOST:PORT (a port in 1..6"),
        (["--coordinator", "h:99999", *JOIN[2:]], {}, "got 'h:99999'"),
        ([], {"JAXTRAINER_NUM_PROCESSES": "two"}, "$JAXTRAINER_NUM_PROCESSES must be an integer, got 'two'"),
        (JOIN, {"JAXTRAINER_HEARTBEAT_TIMEOUT": "30s"}, "$JAXTRAINER_HEARTBEAT_TIMEOUT must be an integer"),
        (JOIN, {"JAXTRAINER_HEARTBEAT_TIMEOUT": "0"}, "must be a whole number of seconds >= 1, got 0"),
    ],
)
def test_a_multi_process_run_asked_wrong_is_one_line(
    args, environment, message, tmp_path, monkeypatch, capfd
):
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    refused([*SWEEP, "--epochs", "1", "--out", tmp_path / "run", *args], capfd, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "given,named",
    [
        (["--process-id", "0"], "--process-id"),
        (["--process-id=1"], "--process-id"),
        (["--process", "0"], "--process-id"),  # argparse's abbreviation
        (["--num-processes", "2"], "--num-processes"),
        (["--coordinator", "127.0.0.1:1234", "--process-id", "1"], "--coordinator, --process-id"),
    ],
)
def test_launch_refuses_the_options_it_gives_each_process_before_starting_any(
    given, named, tmp_path, monkeypatch, capfd
):
    def started(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr("jaxtrainer.launch.launch", started)
    line = refused(
        ["launch", "-n", "2", "--", *SWEEP, "--epochs", "1", "--out", tmp_path / "run", *given],
        capfd,
        f"launch gives each process its {named} itself: remove",
    )
    assert "from the command" in line and not (tmp_path / "run").exists()
