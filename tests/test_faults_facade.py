"""Faults in the facade's use: its checkpoint folder (resumed, refused, interrupted mid-write), and
what students rely on it doing as torch does (param_groups' learning rate, deep copies, .to(device))."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from fault_helpers import HIDDEN, fault_in_write, leftovers, named

from jaxtrainer import models, runs, train
from torch_compat import Trainer


# -- the facade's checkpoint folder --------------------------------------------------------------------------
def trainer(folder, **kwargs) -> Trainer:
    return Trainer("mlp", HIDDEN, dataset="digits", progress=False, checkpoint_dir=str(folder), **kwargs)


@pytest.mark.slow
def test_the_facades_checkpoint_holds_every_calls_logs_and_resume_restores_them(tmp_path):
    first = trainer(tmp_path)
    first.train_loop(1)
    history = first.train_loop(2)
    assert len(history["test_mae"]) == 2 + 3
    epoch, logs, _ = runs.read_header(str(tmp_path / runs.CHECKPOINT))
    assert epoch == 3
    assert {k: logs["previous"][k] + logs["current"][k] for k in history} == history
    again = trainer(tmp_path)
    assert again.train_loop(2, resume=True) == history
    weights = lambda t: models.state_dict(t.network)  # noqa: E731
    assert all(np.array_equal(weights(first)[k], weights(again)[k]) for k in weights(first))
    with pytest.raises(ValueError, match=r"the checkpoint's call ran 2 epochs, 1 were asked"):
        trainer(tmp_path).train_loop(1, resume=True)


@pytest.mark.slow
def test_another_trainer_on_a_used_checkpoint_folder_is_refused_without_resume_or_overwrite(tmp_path):
    trainer(tmp_path).train_loop(1)
    with pytest.raises(
        ValueError, match=r"holds a run of 1 epochs: pass resume=True to continue it or overwrite=True"
    ):
        trainer(tmp_path).train_loop(1)
    with pytest.raises(
        ValueError, match=r"different configuration \(lr: saved 0\.001, now 0\.01\).*overwrite=True"
    ):
        trainer(tmp_path, lr=0.01).train_loop(1, resume=True)
    fresh = trainer(tmp_path, lr=0.01)
    assert len(fresh.train_loop(1, overwrite=True)["test_mae"]) == 2
    assert runs.read_header(str(tmp_path / runs.CHECKPOINT))[2]["lr"] == 0.01
    assert leftovers(tmp_path) == []


def test_a_keyboard_interrupt_inside_the_facades_checkpoint_write_keeps_the_previous_one(
    monkeypatch, tmp_path
):
    t = trainer(tmp_path)
    t.train_loop(1)

    def interrupt():
        raise KeyboardInterrupt

    fault_in_write(monkeypatch, named(runs.CHECKPOINT), interrupt)
    with pytest.raises(KeyboardInterrupt):
        t.train_loop(2)
    assert leftovers(tmp_path) == []
    assert runs.load_checkpoint(str(tmp_path / runs.CHECKPOINT), t._state())[1] == 1


# -- the facade acts as torch where students rely on it ------------------------------------------------------
@pytest.mark.slow
def test_a_learning_rate_set_in_param_groups_is_the_next_steps_as_in_torch_without_recompiling():
    import torch

    from torch_compat import to_torch

    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    module = to_torch(t.network)
    reference = torch.optim.Adam(module.parameters(), lr=t.lr)
    X, y = (np.asarray(a[:32]) for a in t.train)

    def both_step():
        t.training_step(X, y)
        reference.zero_grad()
        torch.nn.functional.mse_loss(module(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        reference.step()

    both_step()  # compiles the step
    programs = train.train_step._cache_size()
    for lr in (0.05, 0.0, 1e-2, 3e-4):  # a warm-up from 0 included
        before = models.state_dict(t.network)
        t.optimizer.param_groups[0]["lr"] = lr
        reference.param_groups[0]["lr"] = lr
        both_step()
        assert t.optimizer.param_groups[0]["lr"] == lr
        for key, value in module.state_dict().items():
            np.testing.assert_allclose(models.state_dict(t.network)[key], value.numpy(), rtol=1e-4, atol=1e-6)
        if lr == 0.0:
            assert all(np.array_equal(before[k], models.state_dict(t.network)[k]) for k in before)
    assert train.train_step._cache_size() == programs  # a new learning rate compiled nothing
    t.optimizer.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"\['lr'\] must be a finite number >= 0, got -1\.0$"):
        t.training_step(X, y)


@pytest.mark.parametrize("flavour", ["facade", "grading"])
def test_a_deep_copy_of_a_trainer_trains_apart_from_the_original(flavour):
    import copy

    from torch_compat import grading

    kind = {"facade": Trainer, "grading": grading.Trainer}[flavour]
    t = kind("mlp", HIDDEN, dataset="digits", progress=False)

    def weights(trainer):
        state = trainer.network.state_dict()
        return {k: np.asarray(v.detach() if hasattr(v, "detach") else v) for k, v in state.items()}

    X, y = t.train
    twin = copy.deepcopy(t)
    start = weights(t)
    twin.training_step(X[:32], y[:32])
    twin_logs = twin.train_loop(1)
    assert all(np.array_equal(start[k], weights(t)[k]) for k in start)  # the original did not move
    assert not all(np.array_equal(start[k], weights(twin)[k]) for k in start)
    t.training_step(X[:32], y[:32])
    assert t.train_loop(1) == twin_logs  # the same start, the same training, the same numbers
    assert all(np.array_equal(weights(t)[k], weights(twin)[k]) for k in start)


def test_the_facade_network_and_its_parameters_move_as_torch_modules_do():
    import torch

    t = Trainer("mlp", HIDDEN, dataset="digits", progress=False)
    net, X, y = t.network, *(np.asarray(a[:16]) for a in t.train)
    for device in ("cpu", torch.device("cpu")):
        assert net.to(device) is net
    assert net.cpu() is net and net.eval() is net and net.train() is net
    p = next(net.parameters())
    assert p.cpu() is p and p.to("cpu") is p
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if gpus:  # placed on the GPU, and trained there
        assert net.to("cuda:0") is net
        assert {leaf.devices().pop() for leaf in jax.tree.leaves(nnx_params(net))} == {gpus[0]}
    else:
        for move in (lambda: net.to("cuda"), net.cuda, lambda: net.to(torch.device("cuda:0")), p.cuda):
            with pytest.raises(RuntimeError, match=r"^cannot use cuda(:0)?: JAX sees no GPU, only cpu on"):
                move()
    for wrong in ("gpu", "CUDA", "cuda:x"):
        with pytest.raises(RuntimeError, match=rf"^device must be 'cpu', 'cuda' or 'cuda:N' .*'{wrong}'$"):
            net.to(wrong)
    before = models.state_dict(net)
    t.training_step(X, y)  # the moved network still trains
    assert not np.array_equal(before["1.weight"], models.state_dict(net)["1.weight"])


def nnx_params(net):
    from flax import nnx

    return nnx.state(net, nnx.Param)
