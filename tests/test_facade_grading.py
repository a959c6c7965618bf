"""The grading flavour as graders' own PyTorch tests see it: real torch.nn modules, trained by the engine."""

import copy
import importlib.util
import sys
import textwrap
import unittest

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import random_dataset

from torch_compat import grading
from torch_compat import reference as ref
from torch_compat import trainer as facade
from torch_compat.grading import NetworkConfiguration, Trainer

torch.set_num_threads(2)

MLP_CFG = NetworkConfiguration(dense_hiddens=(256, 256))
CNN_CFG = NetworkConfiguration(n_channels=(16, 32), kernel_sizes=(3, 3), strides=(1, 1), dense_hiddens=(256,))
# Small networks for the training tests (the machine is small; the structure tests use the above).
SMALL = {
    "mlp": (NetworkConfiguration(dense_hiddens=(16,)), (1, 8, 8)),
    "cnn": (
        NetworkConfiguration(n_channels=(4, 8), kernel_sizes=(3, 3), strides=(1, 1), dense_hiddens=(8,)),
        (1, 12, 12),
    ),
}


def small_trainer(kind="mlp", rng=None, n_train=36, n_test=12, **kwargs):
    cfg, shape = SMALL[kind]
    dataset = random_dataset(rng or np.random.default_rng(0), n_train=n_train, n_test=n_test, shape=shape)
    kwargs.setdefault("batch_size", 8)
    return Trainer(kind, cfg, dataset=dataset, progress=False, **kwargs)


def assert_same_parameters(a: torch.nn.Module, b: torch.nn.Module, atol=1e-5):
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_allclose(
            pa[key].detach().numpy(), pb[key].detach().numpy(), atol=atol, rtol=0, err_msg=key
        )


# -- what `from solution import *` gives ---------------------------------------------------------


def test_star_import_gives_trainer_and_network_configuration():
    namespace = {}
    exec("from torch_compat.grading import *", namespace)
    assert set(namespace) - {"__builtins__"} == {"Trainer", "NetworkConfiguration"}
    assert namespace["Trainer"] is Trainer and issubclass(Trainer, facade.Trainer)
    assert namespace["NetworkConfiguration"]() == NetworkConfiguration(
        (16, 32, 48), (3, 3, 3), (1, 1, 1), (256, 256)
    )


# -- structure: real torch.nn classes, PyTorch's attributes ----------------------------------------


@pytest.mark.slow
def test_mlp_is_a_torch_sequential_of_torch_layers():
    model = Trainer.create_mlp(3 * 32 * 32, MLP_CFG, Trainer.create_activation_function("relu"))
    assert isinstance(model, torch.nn.Sequential)
    layers = list(model.children())
    kinds = [
        torch.nn.Flatten,
        torch.nn.Linear,
        torch.nn.ReLU,
        torch.nn.Linear,
        torch.nn.ReLU,
        torch.nn.Linear,
    ]
    assert [type(layer) for layer in layers] == kinds
    linears = [layer for layer in layers if isinstance(layer, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(3072, 256), (256, 256), (256, 1)]
    assert tuple(layers[1].weight.shape) == (256, 3072) and tuple(layers[5].weight.shape) == (1, 256)
    assert all(p.requires_grad for p in model.parameters())
    assert model(torch.randn(32, 3, 32, 32)).shape == (32, 1)


@pytest.mark.slow
def test_cnn_is_a_torch_sequential_of_torch_layers():
    model = Trainer.create_cnn(3, CNN_CFG, Trainer.create_activation_function("relu"))
    assert isinstance(model, torch.nn.Sequential)
    layers = list(model.children())
    kinds = [
        torch.nn.Conv2d,
        torch.nn.ReLU,
        torch.nn.MaxPool2d,
        torch.nn.Conv2d,
        torch.nn.ReLU,
        torch.nn.AdaptiveMaxPool2d,
        torch.nn.Flatten,
        torch.nn.Linear,
        torch.nn.ReLU,
        torch.nn.Linear,
    ]
    assert [type(layer) for layer in layers] == kinds
    assert (layers[0].in_channels, layers[0].out_channels) == (3, 16)
    assert (layers[3].in_channels, layers[3].out_channels) == (16, 32)
    assert layers[0].kernel_size == (3, 3) and layers[0].stride == (1, 1)
    assert layers[3].kernel_size == (3, 3) and layers[3].stride == (1, 1)
    assert layers[0].padding == (0, 0)
    assert layers[2].kernel_size == 2
    assert tuple(layers[5].output_size) == (4, 4)
    assert (layers[7].in_features, layers[7].out_features) == (512, 256)
    assert (layers[9].in_features, layers[9].out_features) == (256, 1)
    assert tuple(layers[0].weight.shape) == (16, 3, 3, 3)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_cnn_output_shape_for_any_input_size(size):
    model = Trainer.create_cnn(3, CNN_CFG, torch.nn.ReLU())
    out = model(torch.randn(32, 3, size, size))
    assert out.shape == (32, 1) and out.requires_grad


@pytest.mark.parametrize(
    "activation,kind",
    [
        (torch.nn.ReLU, torch.nn.ReLU),
        (torch.nn.ReLU(), torch.nn.ReLU),
        (torch.nn.Tanh, torch.nn.Tanh),
        (torch.nn.Tanh(), torch.nn.Tanh),
        (torch.nn.Sigmoid(), torch.nn.Sigmoid),
    ],
    ids=["ReLU-class", "ReLU-instance", "Tanh-class", "Tanh-instance", "Sigmoid-instance"],
)
def test_activation_class_or_instance_each_position_its_own_instance(activation, kind):
    """The statement passes an instance; many students' tests pass the class: both work."""
    mlp = Trainer.create_mlp(3 * 32 * 32, MLP_CFG, activation)
    cnn = Trainer.create_cnn(3, CNN_CFG, activation)
    for model, n_activations in ((mlp, 2), (cnn, 3)):
        acts = [layer for layer in model.children() if isinstance(layer, kind)]
        assert len(acts) == n_activations and len({id(a) for a in acts}) == n_activations
        assert all(a is not activation for a in acts)
        assert len(list(model.children())) == len(model)  # no module listed once for two positions
    assert mlp(torch.randn(2, 3, 32, 32)).shape == (2, 1)


@pytest.mark.parametrize(
    "name,kind",
    [
        ("relu", torch.nn.ReLU),
        ("ReLU", torch.nn.ReLU),
        ("TANH", torch.nn.Tanh),
        ("Sigmoid", torch.nn.Sigmoid),
    ],
)
def test_create_activation_function_gives_torch_modules(name, kind):
    act = Trainer.create_activation_function(name)
    assert isinstance(act, kind) and isinstance(act, torch.nn.Module)
    x = torch.linspace(-3, 3, 13)
    reference = {torch.nn.ReLU: torch.relu, torch.nn.Tanh: torch.tanh, torch.nn.Sigmoid: torch.sigmoid}[kind]
    assert torch.equal(act(x), reference(x))


@pytest.mark.parametrize("bad", ["gelu", "", None])
def test_unknown_activation_raises(bad):
    with pytest.raises(ValueError, match=r"relu.*tanh.*sigmoid.*got"):
        Trainer.create_activation_function(bad)


def test_unknown_activation_module_raises():
    with pytest.raises(ValueError, match="ReLU, Tanh or Sigmoid"):
        Trainer.create_mlp(12, MLP_CFG, torch.nn.GELU())


def test_initial_weights_are_torch_default_init_from_torch_generator():
    """Under one torch seed, the builders draw exactly what a PyTorch solution draws, and leave
    torch's generator where it would."""
    builds = [
        (lambda T, cfg: T.create_cnn(3, cfg, torch.nn.ReLU()), CNN_CFG),
        (lambda T, cfg: T.create_mlp(3 * 32 * 32, cfg, torch.nn.Tanh()), MLP_CFG),
    ]
    for build, cfg in builds:
        torch.manual_seed(0)
        ours, ours_rng = build(Trainer, cfg), torch.random.get_rng_state()
        torch.manual_seed(0)
        theirs, theirs_rng = build(ref.Trainer, ref.NetworkConfiguration(*cfg)), torch.random.get_rng_state()
        assert torch.equal(ours_rng, theirs_rng)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        for key, value in ours.state_dict().items():
            assert torch.equal(value, theirs.state_dict()[key]), key


# -- training: the engine trains the torch module in hand ------------------------------------------


@pytest.mark.slow
def test_trainer_holds_torch_objects():
    t = small_trainer("cnn", activation_name="Tanh", lr=0.01)
    assert isinstance(t.network, torch.nn.Sequential)
    assert sum(isinstance(layer, torch.nn.Tanh) for layer in t.network.children()) == 3
    assert isinstance(t.activation, torch.nn.Tanh)
    assert all(isinstance(a, torch.Tensor) and a.dtype == torch.float32 for a in (*t.train, *t.test))
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    assert t.train_logs == {"train_loss": [], "test_loss": [], "train_mae": [], "test_mae": []}


@pytest.mark.slow
def test_compute_loss_and_mae_are_differentiable_torch_tensors():
    t = small_trainer()
    X, y = t.train[0][:8], t.train[1][:8]
    loss, mae = t.compute_loss_and_mae(X, y)
    assert isinstance(loss, torch.Tensor) and loss.requires_grad and mae.requires_grad
    with torch.no_grad():
        pred = t.network(X)
    assert loss.item() == pytest.approx(F.mse_loss(pred, y).item(), rel=1e-6)
    assert mae.item() == pytest.approx(F.l1_loss(pred, y).item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in t.network.parameters())
    loss_np, _ = t.compute_loss_and_mae(X.numpy(), y.numpy())  # numpy is accepted too
    assert loss_np.item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_training_step_is_a_torch_adam_step(kind):
    """Three consecutive steps against torch.optim.Adam on a copy: the optimizer state carries over."""
    t = small_trainer(kind, lr=0.01)
    network = t.network
    twin = copy.deepcopy(t.network)
    opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    X, y = t.train
    for i in range(3):
        xb, yb = X[8 * i : 8 * (i + 1)], y[8 * i : 8 * (i + 1)]
        opt.zero_grad()
        twin_loss = F.mse_loss(twin(xb), yb)
        twin_mae = F.l1_loss(twin(xb), yb)
        twin_loss.backward()
        opt.step()
        loss, mae = t.training_step(xb, yb)
        assert isinstance(loss, torch.Tensor) and isinstance(loss.item(), float)
        assert loss.item() == pytest.approx(twin_loss.item(), rel=1e-5)  # before the update
        assert mae.item() == pytest.approx(twin_mae.item(), rel=1e-5)
        assert t.network is network  # updated in place
        assert_same_parameters(t.network, twin)


def test_weights_loaded_between_steps_are_the_ones_trained():
    t = small_trainer()
    twin = copy.deepcopy(t.network)
    opt = torch.optim.Adam(twin.parameters(), lr=t.lr)
    X, y = t.train[0][:8], t.train[1][:8]

    def both_step():
        opt.zero_grad()
        F.mse_loss(twin(X), y).backward()
        opt.step()
        return t.training_step(X, y)

    both_step()
    torch.manual_seed(5)
    other = Trainer.create_mlp(64, SMALL["mlp"][0], torch.nn.ReLU())
    t.network.load_state_dict(other.state_dict())
    twin.load_state_dict(other.state_dict())
    loss, _ = both_step()
    with torch.no_grad():
        assert loss.item() == pytest.approx(F.mse_loss(other(X), y).item(), rel=1e-5)
    assert_same_parameters(t.network, twin)
    with torch.no_grad():  # in-place edits of the parameters count too
        t.network[1].bias.zero_()
        twin[1].bias.zero_()
    both_step()
    assert_same_parameters(t.network, twin)


@pytest.mark.slow
def test_train_loop_leaves_the_trained_model_in_the_torch_module():
    t = small_trainer()
    network = t.network
    logs = t.train_loop(2)
    assert t.network is network
    assert all(len(values) == 3 for values in logs.values())
    X_test, y_test = t.test
    X_train, y_train = t.train
    with torch.no_grad():
        test_pred, train_pred = network(X_test), network(X_train[:2000])
    assert abs(F.mse_loss(test_pred, y_test).item() - logs["test_loss"][-1]) <= 1e-5
    assert abs(F.l1_loss(test_pred, y_test).item() - logs["test_mae"][-1]) <= 1e-5
    assert abs(F.mse_loss(train_pred, y_train[:2000]).item() - logs["train_loss"][-1]) <= 1e-5
    assert logs["test_loss"][-1] != logs["test_loss"][0]


def test_same_seed_same_run_as_the_pytorch_reference():
    """Trainer(seed=s) starts from the PyTorch reference Trainer's weights for that seed, and the
    engine's logs follow the reference's."""
    cfg, shape = SMALL["mlp"]
    dataset = random_dataset(np.random.default_rng(1), n_train=36, n_test=12, shape=shape)
    ours = Trainer("mlp", cfg, batch_size=8, dataset=dataset, seed=7, progress=False)
    theirs = ref.Trainer(
        "mlp", ref.NetworkConfiguration(*cfg), batch_size=8, dataset=dataset, seed=7, progress=False
    )
    for key, value in ours.network.state_dict().items():
        assert torch.equal(value, theirs.network.state_dict()[key]), key
    ours_logs, theirs_logs = ours.train_loop(2), theirs.train_loop(2)
    for key in ours_logs:
        np.testing.assert_allclose(ours_logs[key], theirs_logs[key], atol=1e-5, err_msg=key)
    assert_same_parameters(ours.network, theirs.network)


def test_evaluate_and_log_metrics():
    t = small_trainer()
    loss, mae = t.evaluate(*t.test)
    assert isinstance(loss, torch.Tensor) and not loss.requires_grad
    with torch.no_grad():
        pred = t.network(t.test[0])
    assert loss.item() == pytest.approx(F.mse_loss(pred, t.test[1]).item(), rel=1e-5)
    assert mae.item() == pytest.approx(F.l1_loss(pred, t.test[1]).item(), rel=1e-5)
    t.log_metrics(*t.train, *t.test)
    assert t.train_logs["test_loss"] == [pytest.approx(loss.item())]
    assert all(isinstance(v, float) for values in t.train_logs.values() for v in values)


@pytest.mark.slow
def test_replacing_the_network():
    t = small_trainer()
    replacement = Trainer.create_mlp(64, SMALL["mlp"][0], torch.nn.ReLU())
    before = copy.deepcopy(replacement)
    t.network = replacement
    t.training_step(t.train[0][:8], t.train[1][:8])
    assert any(not torch.equal(a, b) for a, b in zip(replacement.parameters(), before.parameters()))
    t.network = Trainer.create_mlp(64, NetworkConfiguration(dense_hiddens=(5,)), torch.nn.ReLU())
    with pytest.raises(ValueError, match="another structure"):
        t.training_step(t.train[0][:8], t.train[1][:8])


# -- a TA's drop-in solution.py and an unchanged grader test file ------------------------------------

GRADER_TESTS = """
import unittest

import torch

from solution import NetworkConfiguration, Trainer


class TestHomework(unittest.TestCase):
    def test_activation(self):
        self.assertIsInstance(Trainer.create_activation_function("relu"), torch.nn.ReLU)

    def test_mlp(self):
        model = Trainer.create_mlp(3 * 32 * 32, NetworkConfiguration(dense_hiddens=(256, 256)),
                                   torch.nn.ReLU())
        self.assertIsInstance(model, torch.nn.Sequential)
        layers = list(model.children())
        self.assertEqual(sum(isinstance(l, torch.nn.Linear) for l in layers), 3)
        self.assertEqual(layers[1].in_features, 3072)
        self.assertEqual(model(torch.randn(32, 3, 32, 32)).shape, (32, 1))

    def test_cnn(self):
        cfg = NetworkConfiguration(n_channels=(16, 32), kernel_sizes=(3, 3), strides=(1, 1),
                                   dense_hiddens=(256,))
        model = Trainer.create_cnn(3, cfg, torch.nn.ReLU)   # the class, as many tests pass it
        self.assertIsInstance(model[0], torch.nn.Conv2d)
        self.assertIsInstance(model[5], torch.nn.AdaptiveMaxPool2d)
        for size in (32, 64, 128):
            self.assertEqual(model(torch.randn(32, 3, size, size)).shape, (32, 1))

    def test_training(self):
        trainer = Trainer("mlp", NetworkConfiguration(dense_hiddens=(16,)), batch_size=8)
        X, y = trainer.train[0][:8], trainer.train[1][:8]
        before = [p.detach().clone() for p in trainer.network.parameters()]
        loss, mae = trainer.training_step(X, y)
        self.assertIsInstance(loss.item(), float)
        self.assertTrue(any(not torch.equal(a, b) for a, b in zip(before, trainer.network.parameters())))
        logs = trainer.train_loop(1)
        self.assertEqual(len(logs["test_mae"]), 2)
        with torch.no_grad():
            test_loss = torch.nn.functional.mse_loss(trainer.network(trainer.test[0]), trainer.test[1])
        self.assertAlmostEqual(test_loss.item(), logs["test_loss"][-1], places=5)
"""


def write_rotated_folder(root, n_train=16, n_test=8):
    """A tiny ./rotated_fashion_mnist in the homework's format: PNGs named <index>_<angle>.png."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i}_{int(rng.integers(0, 360))}.png")


@pytest.mark.slow
def test_one_line_solution_runs_a_graders_pytorch_test_file_unchanged(tmp_path, monkeypatch):
    (tmp_path / "solution.py").write_text("from torch_compat.grading import *\n")
    (tmp_path / "test_homework.py").write_text(textwrap.dedent(GRADER_TESTS))
    write_rotated_folder(tmp_path / "rotated_fashion_mnist")
    monkeypatch.chdir(tmp_path)  # the homework's Trainer reads ./rotated_fashion_mnist

    spec = importlib.util.spec_from_file_location("solution", tmp_path / "solution.py")
    solution = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "solution", solution)
    spec.loader.exec_module(solution)
    assert solution.Trainer is grading.Trainer
    assert isinstance(
        solution.Trainer.create_mlp(12, solution.NetworkConfiguration(), torch.nn.ReLU), torch.nn.Sequential
    )

    spec = importlib.util.spec_from_file_location("test_homework", tmp_path / "test_homework.py")
    grader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grader)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=0).run(
        unittest.defaultTestLoader.loadTestsFromModule(grader)
    )
    assert result.testsRun == 4 and result.wasSuccessful(), result.failures + result.errors
