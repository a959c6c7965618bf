"""The up-front checks of jaxtrainer/config.py: what is accepted, and the message of every rejection."""

import math
import re

import numpy as np
import pytest

from jaxtrainer import presets
from jaxtrainer.config import (
    NetworkConfiguration,
    check_activation,
    check_batch_size,
    check_cnn,
    check_dense,
    check_lr,
    check_n_epochs,
    check_network_type,
)

HOMEWORK_CNN = presets.CNN


def re_escape_repr(value):
    """A pattern matching the message's end: the rejected value, as repr shows it (a numpy scalar
    as the Python number it holds: "nan", not "np.float32(nan)")."""
    return re.escape(repr(value.item() if isinstance(value, np.generic) else value)) + "$"


def test_network_configuration_is_the_homeworks():
    assert NetworkConfiguration._fields == ("n_channels", "kernel_sizes", "strides", "dense_hiddens")
    assert NetworkConfiguration() == ((16, 32, 48), (3, 3, 3), (1, 1, 1), (256, 256))


# --- network type and activation -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_network_type_accepted(name):
    assert check_network_type(name) == name


@pytest.mark.parametrize("name", ["rnn", "MLP ", "", None])
def test_network_type_rejected(name):
    with pytest.raises(
        ValueError, match=r"^network_type must be one of \('mlp', 'cnn'\), got " + re_escape_repr(name)
    ):
        check_network_type(name)


@pytest.mark.parametrize(
    "name, expected",
    [("relu", "relu"), ("ReLU", "relu"), ("SIGMOID", "sigmoid"), ("Tanh", "tanh"), ("sigmoid", "sigmoid")],
)
def test_activation_any_case(name, expected):
    assert check_activation(name) == expected


@pytest.mark.parametrize("name", ["gelu", "leaky_relu", "", "relu6"])
def test_activation_rejected(name):
    with pytest.raises(
        ValueError,
        match=r"activation must be one of \('relu', 'tanh', 'sigmoid'\) "
        rf"\(any case\), got '{name}'$",
    ):
        check_activation(name)


@pytest.mark.parametrize("name", [None, 3, ("relu",)])
def test_activation_non_string_rejected(name):
    with pytest.raises(ValueError, match="activation must be one of"):
        check_activation(name)


# --- cnn fields ------------------------------------------------------------------------------------


def test_check_cnn_accepts_homework_configurations():
    check_cnn(HOMEWORK_CNN, (28, 28))
    check_cnn(NetworkConfiguration((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256)), (28, 28))
    check_cnn(NetworkConfiguration((60,), (28,), (1,), (256, 256)), (28, 28))
    check_cnn(NetworkConfiguration(), (32, 32))
    check_cnn(HOMEWORK_CNN)  # no image size: only the fields


def test_check_cnn_accepts_numpy_integers():
    cfg = NetworkConfiguration(
        tuple(np.array([16, 32], dtype=np.int64)),
        (np.int32(3), np.int16(3)),
        (np.uint8(1), np.int64(2)),
        (np.int64(128),),
    )
    check_cnn(cfg, (28, 28))
    check_cnn(
        NetworkConfiguration(np.array([4, 8]), np.array([3, 3]), np.array([1, 1]), np.array([16])), (16, 16)
    )


def test_check_cnn_unequal_lengths():
    cfg = NetworkConfiguration((16, 32, 45), (3, 3), (1, 1, 1), (128,))
    with pytest.raises(
        ValueError,
        match=r"n_channels, kernel_sizes and strides must have the same "
        r"length, got 3, 2 and 3",
    ):
        check_cnn(cfg)
    cfg = NetworkConfiguration((16,), (3,), (1, 1), (128,))
    with pytest.raises(ValueError, match=r"same length, got 1, 1 and 2"):
        check_cnn(cfg, (28, 28))


@pytest.mark.parametrize(
    "field, index, bad",
    [
        ("n_channels", 1, 0),
        ("n_channels", 0, -4),
        ("kernel_sizes", 2, 0),
        ("kernel_sizes", 0, -3),
        ("strides", 1, 0),
        ("strides", 2, -1),
        ("n_channels", 0, 2.5),
        ("kernel_sizes", 1, 3.0),
        ("strides", 0, True),
        ("n_channels", 2, "45"),
        ("kernel_sizes", 0, None),
    ],
)
def test_check_cnn_bad_values(field, index, bad):
    values = dict(HOMEWORK_CNN._asdict())
    changed = list(values[field])
    changed[index] = bad
    values[field] = tuple(changed)
    cfg = NetworkConfiguration(**values)
    with pytest.raises(
        ValueError,
        match=rf"^{field}\[{index}\] must be a positive int, got "
        rf"{repr(bad)}$",
    ):
        check_cnn(cfg, (28, 28))


def test_check_cnn_bad_dense_hiddens():
    cfg = HOMEWORK_CNN._replace(dense_hiddens=(128, 0))
    with pytest.raises(ValueError, match=r"^dense_hiddens\[1\] must be a positive int, got 0$"):
        check_cnn(cfg)
    with pytest.raises(ValueError, match=r"^dense_hiddens\[0\] must be a positive int, got 1\.5$"):
        check_dense(NetworkConfiguration(dense_hiddens=(1.5,)))
    check_dense(NetworkConfiguration(dense_hiddens=()))  # an MLP with no hidden layer is valid


def test_check_cnn_field_not_a_sequence():
    with pytest.raises(ValueError, match=r"^n_channels must be a tuple of positive ints, got 16$"):
        check_cnn(HOMEWORK_CNN._replace(n_channels=16))


def test_check_cnn_empty_n_channels():
    cfg = NetworkConfiguration((), (), (), (128,))
    with pytest.raises(ValueError, match=r"n_channels must name at least one conv layer for a cnn"):
        check_cnn(cfg, (28, 28))


def test_image_too_small_for_pool():
    # 8 -conv3-> 6 -pool-> 3 -conv3-> 1: the max-pool after conv layer 1 would output 0x0.
    with pytest.raises(
        ValueError,
        match=r"^max-pool after conv layer 1 gets a 1x1 input and would "
        r"output 0x0: the image is too small",
    ):
        check_cnn(HOMEWORK_CNN, (8, 8))


def test_image_too_small_for_conv():
    # 10 -> 8 -> 4 -> 2 -> 1, then conv layer 2 (kernel 3) gets 1x1.
    with pytest.raises(
        ValueError,
        match=r"^conv layer 2 \(kernel 3\) gets a 1x1 input: the image is "
        r"too small",
    ):
        check_cnn(HOMEWORK_CNN, (10, 10))
    with pytest.raises(ValueError, match=r"^conv layer 0 \(kernel 5\) gets a 4x4 input"):
        check_cnn(NetworkConfiguration((4,), (5,), (1,), ()), (4, 4))
    # non-square: the narrow side is the one that fails; 12x30 -> 10x28 -> 5x14 -> conv k7 on 5x14
    with pytest.raises(ValueError, match=r"^conv layer 1 \(kernel 7\) gets a 5x14 input"):
        check_cnn(NetworkConfiguration((4, 4), (3, 7), (1, 1), ()), (12, 30))


def test_smallest_image_that_fits():
    # 14 -> 12 -> 6 -> 4 -> 2 -> conv3 on 2x2 fails; 16 -> 14 -> 7 -> 5 -> 2 still fails; 18 works.
    for side in (14, 16):
        with pytest.raises(ValueError, match=r"conv layer 2 \(kernel 3\) gets a 2x2 input"):
            check_cnn(HOMEWORK_CNN, (side, side))
    check_cnn(HOMEWORK_CNN, (18, 18))
    assert check_cnn(HOMEWORK_CNN, (18, 18)) == (1, 1)


# --- check_cnn's output size -------------------------------------------------------------------------


def reference_output_size(cfg, hw):
    """Independent: PyTorch's valid-conv formula and floor-mode pooling, layer by layer."""
    h, w = hw
    n = len(cfg.n_channels)
    for i in range(n):
        k, s = cfg.kernel_sizes[i], cfg.strides[i]
        h, w = math.floor((h - k) / s) + 1, math.floor((w - k) / s) + 1
        if i != n - 1:
            h, w = math.floor(h / 2), math.floor(w / 2)
    return h, w


@pytest.mark.parametrize(
    "cfg, hw, expected",
    [
        (HOMEWORK_CNN, (28, 28), (3, 3)),
        (NetworkConfiguration((60,), (28,), (1,), (256, 256)), (28, 28), (1, 1)),
        (NetworkConfiguration((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256)), (28, 28), (3, 3)),
        (NetworkConfiguration(), (32, 32), (4, 4)),
        (HOMEWORK_CNN, (64, 64), (12, 12)),  # 62 -> 31 -> 29 -> 14 -> 12
        (HOMEWORK_CNN, (128, 128), (28, 28)),  # 126 -> 63 -> 61 -> 30 -> 28
        (NetworkConfiguration((4, 4), (3, 3), (2, 2), ()), (29, 21), (3, 2)),
    ],
)
def test_cnn_output_size(cfg, hw, expected):
    assert check_cnn(cfg, hw) == expected
    assert reference_output_size(cfg, hw) == expected


# --- training hyper-parameters -----------------------------------------------------------------------


@pytest.mark.parametrize("lr", [1e-3, 1, 1e-8, np.float32(0.01), np.float64(0.5), np.int64(2)])
def test_lr_accepted(lr):
    out = check_lr(lr)
    assert type(out) is float and out == pytest.approx(float(lr))


@pytest.mark.parametrize(
    "lr",
    [
        0,
        0.0,
        -1,
        -1e-3,
        float("nan"),
        float("inf"),
        -float("inf"),
        np.float32("nan"),
        "1e-3",
        True,
        False,
        None,
        [1e-3],
    ],
)
def test_lr_rejected(lr):
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got " + re_escape_repr(lr)):
        check_lr(lr)


@pytest.mark.parametrize("bs", [1, 128, np.int32(64), np.int64(7)])
def test_batch_size_accepted(bs):
    out = check_batch_size(bs)
    assert type(out) is int and out == int(bs)


@pytest.mark.parametrize("bs", [0, -5, 2.0, 128.5, True, "128", None])
def test_batch_size_rejected(bs):
    with pytest.raises(ValueError, match=r"^batch_size must be an int > 0, got " + re_escape_repr(bs)):
        check_batch_size(bs)


@pytest.mark.parametrize("n", [0, 1, 50, np.int64(3)])
def test_n_epochs_accepted(n):
    out = check_n_epochs(n)
    assert type(out) is int and out == int(n)


@pytest.mark.parametrize("n", [-1, 1.5, 2.0, True, "5", None])
def test_n_epochs_rejected(n):
    with pytest.raises(ValueError, match=r"^n_epochs must be an int >= 0, got " + re_escape_repr(n)):
        check_n_epochs(n)


def test_the_spec_derives_identity_metadata_and_settings_from_one_place():
    import json

    import optax

    from jaxtrainer.settings import Settings
    from jaxtrainer.spec import Spec

    spec = Spec(
        "cnn", HOMEWORK_CNN, "Tanh", "adamw", {"weight_decay": 0.5}, [(0.1, 3)], epochs=7, dataset="x"
    )
    assert spec.activation == "tanh" and spec.optimizer_options == (("weight_decay", 0.5),)
    saved = json.loads(json.dumps(spec.as_dict()))  # spec.json: plain JSON, whole
    assert saved["optimizer_options"] == {"weight_decay": 0.5} and saved["members"] == [
        {"lr": 0.1, "seed": 3}
    ]
    assert NetworkConfiguration(**saved["net_config"]) == NetworkConfiguration(*map(list, HOMEWORK_CNN))
    assert saved["epochs"] == 7
    # how much, how and where from are not what: the same run whatever they are
    same = spec.replace(epochs=9, conv_impl="lax", strategy="vmap", dataset="y", data_dir="/d")
    assert same.identity({"sha256": "a"}) == spec.identity({"sha256": "a"})
    identity = spec.identity({"sha256": "a"})
    assert identity["optimizer"] == "adamw" and identity["members"] == {"lrs": [0.1], "seeds": [3]}
    assert spec.replace(optimizer="adam").identity({"sha256": "a"}) != identity
    settings = spec.settings()
    assert settings.batch_size == presets.BATCH_SIZE and settings.optimizer.func is optax.adamw
    assert settings.optimizer.keywords == {"weight_decay": 0.5}
    assert spec.settings() == settings != Settings()  # equal specs share their compiled programs
    with pytest.raises(ValueError, match="a sweep needs at least one learning rate and one seed"):
        Spec(members=[])
    with pytest.raises(ValueError, match=r"epochs|n_epochs must be an int >= 0, got -1"):
        Spec(epochs=-1)
