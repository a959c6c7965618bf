"""Bad input gets a clear error naming the bad value and what is allowed, before anything compiles."""

import numpy as np
import pytest
from conftest import compiled_programs, random_dataset

from jaxtrainer import presets
from torch_compat import NetworkConfiguration as NC
from torch_compat import Trainer

CNN = presets.CNN


def dataset(n_train=40, n_test=10, shape=(1, 28, 28)):
    return random_dataset(np.random.default_rng(0), n_train, n_test, shape)


def good(**kw):
    return {"network_type": "cnn", "net_config": CNN, "dataset": dataset(), "progress": False, **kw}


def nan_in(split):
    (X, y), (Xt, yt) = dataset()
    (X if split == "train" else Xt)[0, 0, 0, 0] = np.nan
    return (X, y), (Xt, yt)


CONSTRUCTOR_CASES = [
    ("unknown network", good(network_type="rnn"), r"network_type must be one of \('mlp', 'cnn'\), got 'rnn'"),
    (
        "unknown activation",
        good(activation_name="gelu"),
        r"activation must be one of \('relu', 'tanh', 'sigmoid'\) \(any case\), got 'gelu'",
    ),
    ("unequal lengths", good(net_config=NC((16, 32), (3,), (1, 1), (8,))), r"same length, got 2, 1 and 2"),
    (
        "zero channels",
        good(net_config=NC((16, 0), (3, 3), (1, 1), (8,))),
        r"n_channels\[1\] must be a positive int, got 0",
    ),
    (
        "negative kernel",
        good(net_config=NC((16,), (-3,), (1,), (8,))),
        r"kernel_sizes\[0\] must be a positive int, got -3",
    ),
    (
        "zero stride",
        good(net_config=NC((16,), (3,), (0,), (8,))),
        r"strides\[0\] must be a positive int, got 0",
    ),
    (
        "float stride",
        good(net_config=NC((16,), (3,), (1.5,), (8,))),
        r"strides\[0\] must be a positive int, got 1\.5",
    ),
    (
        "zero dense",
        good(net_config=NC((16,), (3,), (1,), (8, 0))),
        r"dense_hiddens\[1\] must be a positive int, got 0",
    ),
    (
        "mlp zero dense",
        good(network_type="mlp", net_config=NC(dense_hiddens=(-4,))),
        r"dense_hiddens\[0\] must be a positive int, got -4",
    ),
    ("no conv layer", good(net_config=NC((), (), (), (8,))), r"n_channels must name at least one conv layer"),
    (
        "too small for pools",
        good(net_config=NC((8, 8, 8, 8), (3, 3, 3, 3), (1, 1, 1, 1), (8,))),
        r"conv layer 3 \(kernel 3\) gets a 1x1 input",
    ),
    (
        "kernel larger than image",
        good(net_config=NC((8,), (29,), (1,), (8,))),
        r"conv layer 0 \(kernel 29\) gets a 28x28 input",
    ),
    (
        "stride shrinks to nothing",
        good(net_config=NC((8, 8), (3, 3), (8, 1), (8,))),
        r"max-pool after conv layer 0 gets a 4x4|conv layer 1 \(kernel 3\) gets a 2x2 input",
    ),
    ("lr zero", good(lr=0), r"lr must be a finite number > 0, got 0"),
    ("lr negative", good(lr=-1e-3), r"lr must be a finite number > 0, got -0\.001"),
    ("lr nan", good(lr=float("nan")), r"lr must be a finite number > 0, got nan"),
    ("lr inf", good(lr=float("inf")), r"lr must be a finite number > 0, got inf"),
    ("lr string", good(lr="1e-3"), r"lr must be a finite number > 0, got '1e-3'"),
    ("batch zero", good(batch_size=0), r"batch_size must be an int > 0, got 0"),
    ("batch float", good(batch_size=12.5), r"batch_size must be an int > 0, got 12\.5"),
    ("batch bool", good(batch_size=True), r"batch_size must be an int > 0, got True"),
    ("nan in train", good(dataset=nan_in("train")), r"X_train contains NaN or Inf values"),
    ("nan in test", good(dataset=nan_in("test")), r"X_test contains NaN or Inf values"),
    (
        "inf in labels",
        good(dataset=((dataset()[0][0], np.full((40, 1), np.inf, np.float32)), dataset()[1])),
        r"y_train contains NaN or Inf values",
    ),
    (
        "labels of wrong shape",
        good(dataset=((dataset()[0][0], np.zeros((40, 2), np.float32)), dataset()[1])),
        r"y_train must have shape \(40, 1\) to match X_train, got \(40, 2\)",
    ),
    (
        "labels of wrong count",
        good(dataset=((dataset()[0][0], np.zeros((39, 1), np.float32)), dataset()[1])),
        r"y_train must have shape \(40, 1\) to match X_train, got \(39, 1\)",
    ),
    (
        "empty dataset",
        good(dataset=((np.zeros((0, 1, 28, 28), np.float32), np.zeros((0, 1), np.float32)), dataset()[1])),
        r"X_train is empty",
    ),
    (
        "images of wrong rank",
        good(dataset=((np.zeros((40, 28, 28), np.float32), np.zeros((40, 1), np.float32)), dataset()[1])),
        r"X_train must be images \(N, C, H, W\), got shape \(40, 28, 28\)",
    ),
    (
        "train/test sizes differ",
        good(dataset=(dataset()[0], dataset(shape=(1, 32, 32))[1])),
        r"train images \(1, 28, 28\) and test images \(1, 32, 32\) differ",
    ),
    (
        "unknown dataset name",
        good(dataset="mnist-please"),
        r"unknown dataset 'mnist-please': expected one of "
        r"\('digits', 'fashion_mnist', 'mnist', 'svhn', 'cifar10'\)",
    ),
]


@pytest.mark.parametrize(
    "kwargs,message", [c[1:] for c in CONSTRUCTOR_CASES], ids=[c[0] for c in CONSTRUCTOR_CASES]
)
def test_constructor_rejects(kwargs, message):
    before = compiled_programs()
    with pytest.raises(ValueError, match=message):
        Trainer(**kwargs)
    assert compiled_programs() == before


@pytest.fixture(scope="module")
def cnn_trainer():
    return Trainer(**good())


CALL_CASES = [
    (
        "wrong channel count",
        lambda t: t.training_step(np.zeros((4, 3, 28, 28)), np.zeros((4, 1))),
        r"the CNN was built for 1-channel images, got 3 channels",
    ),
    (
        "wrong image rank",
        lambda t: t.evaluate(np.zeros((4, 28, 28)), np.zeros((4, 1))),
        r"the CNN takes images of shape \(N, C, H, W\), got an array of shape \(4, 28, 28\)",
    ),
    (
        "image too small for the built CNN",
        lambda t: t.network(np.zeros((2, 1, 12, 12))),
        r"conv layer 2 \(kernel 3\) gets a 1x1 input",
    ),
    (
        "flat labels",
        lambda t: t.training_step(np.zeros((4, 1, 28, 28)), np.zeros(4)),
        r"targets must have the predictions' shape \(4, 1\) .*got \(4,\)",
    ),
    (
        "label count mismatch",
        lambda t: t.evaluate(np.zeros((4, 1, 28, 28)), np.zeros((5, 1))),
        r"targets must have the predictions' shape \(4, 1\) .*got \(5, 1\)",
    ),
    ("negative epochs", lambda t: t.train_loop(-1), r"n_epochs must be an int >= 0, got -1"),
    ("fractional epochs", lambda t: t.train_loop(2.5), r"n_epochs must be an int >= 0, got 2\.5"),
]


@pytest.mark.parametrize("call,message", [c[1:] for c in CALL_CASES], ids=[c[0] for c in CALL_CASES])
def test_calls_reject(cnn_trainer, call, message):
    before = compiled_programs()
    with pytest.raises(ValueError, match=message):
        call(cnn_trainer)
    assert compiled_programs() == before


def test_mlp_given_images_of_another_size():
    t = Trainer("mlp", dataset=dataset(), progress=False)
    with pytest.raises(
        ValueError,
        match=r"the MLP was built for inputs of 784 features \(C\*H\*W\), "
        r"got an array of shape \(2, 3, 32, 32\)",
    ):
        t.network(np.zeros((2, 3, 32, 32), np.float32))


@pytest.mark.slow
def test_a_dataset_smaller_than_one_batch_is_one_short_batch():
    t = Trainer(**good(dataset=dataset(n_train=3, n_test=2), batch_size=128))
    logs = t.train_loop(1)
    assert all(len(v) == 2 and np.isfinite(v).all() for v in logs.values())
