"""Tests of the eager PyTorch baseline: it must itself follow docs/homework.md before the JAX engine is
compared with it."""

import numpy as np
import pytest
import torch
from torch import nn

from torch_compat.reference import NetworkConfiguration, Trainer


def tiny_dataset(n_train=300, n_test=100, shape=(1, 28, 28), seed=0):
    rng = np.random.default_rng(seed)

    def split(n):
        X = rng.uniform(-1, 1, size=(n, *shape)).astype(np.float32)
        y = rng.standard_normal((n, 1)).astype(np.float32)
        return X, y

    return split(n_train), split(n_test)


def kinds(network):
    return [type(child) for child in network.children()]


def test_mlp_structure():
    act = nn.ReLU()
    mlp = Trainer.create_mlp(3 * 32 * 32, NetworkConfiguration(dense_hiddens=(256, 256)), act)
    assert isinstance(mlp, nn.Sequential)
    assert kinds(mlp) == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    linears = [m for m in mlp.children() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3072, 256), (256, 256), (256, 1)]
    assert linears[0].weight.shape == (256, 3072)
    assert mlp(torch.zeros(4, 3, 32, 32)).shape == (4, 1)


def test_cnn_structure_and_size_agnostic_output():
    act = nn.ReLU()
    config = NetworkConfiguration(
        n_channels=(16, 32), kernel_sizes=(3, 3), strides=(1, 1), dense_hiddens=(256,)
    )
    cnn = Trainer.create_cnn(3, config, act)
    assert kinds(cnn) == [
        nn.Conv2d,
        nn.ReLU,
        nn.MaxPool2d,
        nn.Conv2d,
        nn.ReLU,
        nn.AdaptiveMaxPool2d,
        nn.Flatten,
        nn.Linear,
        nn.ReLU,
        nn.Linear,
    ]
    children = list(cnn.children())
    convs = [m for m in children if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (3, 16, (3, 3), (1, 1)),
        (16, 32, (3, 3), (1, 1)),
    ]
    assert convs[0].weight.shape == (16, 3, 3, 3)
    assert children[2].kernel_size == 2
    assert children[5].output_size == (4, 4)
    linears = [m for m in children if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 1)]
    with torch.no_grad():
        for size in (32, 64, 128):
            assert cnn(torch.zeros(32, 3, size, size)).shape == (32, 1)


def test_each_activation_position_is_its_own_instance():
    act = nn.Tanh()
    config = NetworkConfiguration(
        n_channels=(4, 8), kernel_sizes=(3, 3), strides=(1, 1), dense_hiddens=(8, 8)
    )
    for network, expected in (
        (Trainer.create_mlp(10, config, act), 2),
        (Trainer.create_cnn(1, config, act), 4),
    ):
        # children() lists a shared module once, so graders count distinct instances.
        activations = [m for m in network.children() if isinstance(m, nn.Tanh)]
        assert len(activations) == expected
        assert all(m is not act for m in activations)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("relu", nn.ReLU),
        ("ReLU", nn.ReLU),
        ("tanh", nn.Tanh),
        ("TANH", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
        ("SIGMOID", nn.Sigmoid),
    ],
)
def test_activation_any_case(name, kind):
    assert isinstance(Trainer.create_activation_function(name), kind)


@pytest.mark.parametrize("name", ["gelu", "", None])
def test_unknown_activation_names_the_allowed_values(name):
    with pytest.raises(ValueError, match="'relu', 'tanh' or 'sigmoid'"):
        Trainer.create_activation_function(name)


def test_constructor_errors():
    with pytest.raises(ValueError, match="dataset must be passed"):
        Trainer()
    with pytest.raises(ValueError, match="network_type"):
        Trainer("rnn", dataset=tiny_dataset(10, 5))


@pytest.mark.slow
def test_train_loop_logs_and_is_reproducible():
    def run():
        trainer = Trainer(
            "mlp",
            NetworkConfiguration(dense_hiddens=(32, 32)),
            batch_size=128,
            dataset=tiny_dataset(),
            progress=False,
        )
        return trainer.train_loop(2)

    logs = run()
    assert set(logs) == {"train_loss", "test_loss", "train_mae", "test_mae"}
    for values in logs.values():
        assert len(values) == 3
        assert all(isinstance(v, float) and np.isfinite(v) for v in values)
    assert logs == run()


def test_train_loop_uses_consecutive_unshuffled_batches():
    trainer = Trainer(dataset=tiny_dataset(), batch_size=128, progress=False)
    X_train = trainer.train[0]
    seen = []
    trainer.training_step = lambda X, y: seen.append(X)
    trainer.train_loop(2)
    assert [len(X) for X in seen] == [128, 128, 44] * 2
    assert torch.equal(torch.cat(seen[:3]), X_train)


def test_cnn_trains_on_images_smaller_than_the_adaptive_pool():
    config = NetworkConfiguration(
        n_channels=(4, 8, 8), kernel_sizes=(3, 3, 3), strides=(1, 1, 1), dense_hiddens=(16,)
    )
    trainer = Trainer("cnn", config, dataset=tiny_dataset(64, 16), progress=False)
    logs = trainer.train_loop(1)
    assert all(len(v) == 2 and np.isfinite(v).all() for v in logs.values())


def test_training_step_returns_the_batch_metrics_before_the_update():
    trainer = Trainer(dataset=tiny_dataset(), progress=False)
    X, y = trainer.train[0][:128], trainer.train[1][:128]
    before = [p.detach().clone() for p in trainer.network.parameters()]
    with torch.no_grad():
        error = trainer.network(X).numpy().astype(np.float64) - y.numpy()
    loss, mae = trainer.training_step(X, y)
    np.testing.assert_allclose(loss.item(), np.mean(error**2), rtol=1e-5)
    np.testing.assert_allclose(mae.item(), np.mean(np.abs(error)), rtol=1e-5)
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.network.parameters()))


def test_evaluate_is_gradient_free_and_matches_the_loss():
    trainer = Trainer(dataset=tiny_dataset(), progress=False)
    X, y = trainer.test
    loss, mae = trainer.evaluate(X, y)
    assert not loss.requires_grad and not mae.requires_grad
    expected_loss, expected_mae = trainer.compute_loss_and_mae(X, y)
    assert expected_loss.requires_grad
    assert torch.allclose(loss, expected_loss) and torch.allclose(mae, expected_mae)


def test_equivariance_figure(tmp_path):
    trainer = Trainer(dataset=tiny_dataset(8, 4), progress=False)
    path = tmp_path / "equivariance.png"
    figure = trainer.test_equivariance(path=path)
    assert path.stat().st_size > 0
    images = [axis.images[0].get_array() for axis in figure.axes if axis.images]
    assert [image.shape for image in images] == [(28, 28), (24, 24), (24, 24), (24, 24)]
    assert images[0].min() == 0 and images[0].max() == 1
    # The conv net commutes with the shift wherever the shifted input has no zero fill.
    assert np.abs(images[2][5:, 5:]).max() < 1e-5
