"""The classification task, the hand-written gradients and optimizers, against independent
computations: numpy, jax.grad, optax."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import ONE_DEVICE
from flax import nnx

from jaxtrainer import train
from jaxtrainer.data.classes import load_classes, split_train_val
from jaxtrainer.gradient import autodiff
from jaxtrainer.labs import handopt
from jaxtrainer.labs.handgrad import SoftmaxMLP, backprop, init_theta
from jaxtrainer.settings import Settings
from jaxtrainer.sweeps import Loop, fit, fit_sweep, stack
from jaxtrainer.tasks import Classification, log_keys, log_softmax, one_hot, softmax


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def test_softmax_is_stable_on_huge_logits():
    logits = jnp.array([[1000.0, 10000.0, 100000.0], [-1e5, 0.0, 1e5]], jnp.float32)
    p = np.asarray(softmax(logits))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[0, 0, 1], [0, 0, 1]], atol=0)
    logp = np.asarray(log_softmax(logits))
    np.testing.assert_allclose(logp, [[-99000.0, -90000.0, 0.0], [-2e5, -1e5, 0.0]], rtol=1e-6)
    with np.errstate(over="ignore"):  # what the stable form avoids
        assert not np.all(np.isfinite(np.exp(np.float32([1000.0, 10000.0, 100000.0]))))


def test_cross_entropy_and_accuracy_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (50, 7))
    y = rng.integers(0, 7, 50)
    m = Classification(7).per_example(jnp.asarray(logits), jnp.asarray(y))
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = -(shifted[np.arange(50), y] - np.log(np.exp(shifted).sum(axis=1)))
    np.testing.assert_allclose(np.asarray(m["loss"]), nll, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(m["accuracy"]), (logits.argmax(1) == y).astype(float))
    np.testing.assert_array_equal(np.asarray(one_hot(jnp.array([2, 0]), 3)), [[0, 0, 1], [1, 0, 0]])


def test_batch_loss_reduction_and_log_keys():
    losses = jnp.array([1.0, 2.0, 4.0])
    assert float(Classification(3, "sum").batch_loss(losses)) == 7.0
    assert float(Classification(3).batch_loss(losses)) == pytest.approx(7 / 3)
    assert log_keys(Classification(3), ("train", "val")) == (
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_classes=1), "n_classes must be an integer >= 2, got 1"),
        (dict(n_classes=3.0), "n_classes must be an integer >= 2, got 3.0"),
        (dict(n_classes=3, reduction="max"), "reduction must be one of ('mean', 'sum'), got 'max'"),
    ],
)
def test_bad_task(kwargs, message):
    with pytest.raises(ValueError) as e:
        Classification(**kwargs)
    assert str(e.value) == message


def test_bad_labels_and_logits():
    task = Classification(3)
    with pytest.raises(
        ValueError,
        match=r"labels must be one class index per example, shape \(4,\), "
        r"got \(4, 1\)",
    ):
        task.per_example(jnp.zeros((4, 3)), jnp.zeros((4, 1), jnp.int32))
    with pytest.raises(ValueError, match=r"a 3-class task needs \(B, 3\) logits, got \(4, 5\)"):
        task.per_example(jnp.zeros((4, 5)), jnp.zeros((4,), jnp.int32))


@pytest.mark.slow
@pytest.mark.parametrize("depth", [0, 1, 3, 5])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_hand_gradient_equals_jax_grad_float64(x64, depth, activation, reduction):
    model = SoftmaxMLP(
        12, [9] * depth, 5, activation=activation, init="kaiming", seed=depth, dtype=jnp.float64
    )
    graphdef, params = nnx.split(model, nnx.Param)
    x = jax.random.normal(jax.random.key(1), (17, 12), jnp.float64)
    y = jnp.arange(17) % 5
    task = Classification(5, reduction)
    hand, hand_metrics = backprop(graphdef, params, x, y, task)
    auto, auto_metrics = autodiff(graphdef, params, x, y, task)
    assert len(jax.tree.leaves(hand)) == depth + 1
    chex.assert_type(jax.tree.leaves(hand), jnp.float64)
    chex.assert_trees_all_equal_shapes(hand, auto)
    chex.assert_trees_all_close(hand, auto, rtol=1e-10, atol=1e-12)
    assert float(hand_metrics["loss"]) == pytest.approx(float(auto_metrics["loss"]), rel=1e-12)


def test_backprop_refuses_regression():
    model = SoftmaxMLP(4, [], 2)
    graphdef, params = nnx.split(model, nnx.Param)
    from jaxtrainer.tasks import REGRESSION

    with pytest.raises(ValueError, match="backprop by hand is written for softmax cross-entropy"):
        backprop(graphdef, params, jnp.zeros((2, 4)), jnp.zeros((2,), jnp.int32), REGRESSION)


def test_initialisations_follow_their_limits():
    key = jax.random.key(0)
    glorot = np.asarray(init_theta(key, 300, 100, "glorot"))
    kaiming = np.asarray(init_theta(key, 300, 100, "kaiming"))
    normal = np.asarray(init_theta(key, 300, 100, "normal"))
    assert glorot.shape == (100, 301) and np.all(glorot[:, -1] == 0)
    assert np.abs(glorot).max() <= math.sqrt(6 / 400) and np.abs(glorot).max() > 0.95 * math.sqrt(6 / 400)
    assert np.abs(kaiming).max() <= math.sqrt(6 / 300) and np.abs(kaiming).max() > 0.95 * math.sqrt(6 / 300)
    assert normal.std() == pytest.approx(0.01, rel=0.02) and abs(normal.mean()) < 5e-4
    with pytest.raises(ValueError, match=r"init must be one of \('normal', 'glorot', 'kaiming'\), got 'he'"):
        SoftmaxMLP(4, [], 2, init="he")
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'tanh'\), got 'gelu'"):
        SoftmaxMLP(4, [3], 2, activation="gelu")
    with pytest.raises(ValueError, match=r"layer sizes must be positive integers, got \[4, 0, 2\]"):
        SoftmaxMLP(4, [0], 2)


@pytest.mark.slow
@pytest.mark.parametrize("name, reference", [("sgd", optax.sgd), ("adam", optax.adam)])
def test_hand_optimizers_equal_optax_over_20_steps(name, reference):
    """Same gradients fed to both (those of the hand run's own parameters, from a fixed function),
    parameters compared after every step."""
    params = {"w": jax.random.normal(jax.random.key(0), (6, 4)), "b": jnp.linspace(-1, 1, 4)}
    hand = optax.inject_hyperparams(handopt.by_name(name))(learning_rate=0.05)
    ref = optax.inject_hyperparams(reference)(learning_rate=0.05)
    p_hand, p_ref, s_hand, s_ref = params, params, hand.init(params), ref.init(params)
    for step in range(20):
        grads = jax.tree.map(lambda p: jnp.cos(3 * p + step) * (step + 1), p_hand)
        u_hand, s_hand = hand.update(grads, s_hand, p_hand)
        u_ref, s_ref = ref.update(grads, s_ref, p_ref)
        p_hand, p_ref = optax.apply_updates(p_hand, u_hand), optax.apply_updates(p_ref, u_ref)
        chex.assert_trees_all_close(p_hand, p_ref, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"optimizer must be one of \('sgd', 'adam'\), got 'rmsprop'"):
        handopt.by_name("rmsprop")


@pytest.mark.slow
def test_training_by_hand_follows_autodiff_with_optax():
    """The whole loop: hand gradient + hand Adam against jax.grad + optax.adam, 2 epochs of digits."""
    ds = load_classes("digits")
    train_set, val = split_train_val(ds.X_train, ds.y_train, seed=1)
    task = Classification(10, "sum")
    runs = {}
    for key, gradient, optimizer in (("hand", backprop, handopt.adam), ("auto", autodiff, optax.adam)):
        settings = Settings(
            batch_size=50,
            task=task,
            optimizer=optimizer,
            gradient=gradient,
            names=("train", "val"),
            train_eval_size=len(train_set[0]),
        )
        graphdef, state = train.init_state(SoftmaxMLP(64, [32], 10, seed=3), 1e-2, settings)
        runs[key] = fit(graphdef, state, train_set, val, 2, settings, loop=Loop(progress=False))
    (hand_state, hand_logs), (auto_state, auto_logs) = runs["hand"], runs["auto"]
    assert list(hand_logs) == list(log_keys(task, ("train", "val")))
    chex.assert_trees_all_close(hand_logs, auto_logs, rtol=1e-4, atol=1e-5)
    assert hand_logs["val_accuracy"][-1] > 0.8 > hand_logs["val_accuracy"][0]
    chex.assert_trees_all_close(hand_state.params, auto_state.params, rtol=1e-7, atol=1e-4)


@pytest.mark.slow
def test_sweep_member_equals_its_solo_run():
    ds = load_classes("digits")
    train_set, val = split_train_val(ds.X_train, ds.y_train)
    task = Classification(10)
    model = SoftmaxMLP(64, [], 10, init="normal")
    lrs = (0.1, 0.01)
    settings = Settings(
        batch_size=1, task=task, optimizer=handopt.sgd, gradient=backprop, names=("train", "val")
    )
    pairs = [train.init_state(model, lr, settings) for lr in lrs]
    states = stack([s for _, s in pairs])
    _, logs = fit_sweep(
        pairs[0][0], states, train_set, val, 2, settings, loop=Loop(devices=ONE_DEVICE, progress=False)
    )
    _, solo = fit(*pairs[1], train_set, val, 2, settings, loop=Loop(progress=False))
    chex.assert_trees_all_close(logs[1], solo, rtol=1e-5, atol=1e-6)


def test_split_sizes_and_seeding():
    X, y = np.arange(1000).reshape(-1, 1), np.arange(1000) % 10
    (Xt, yt), (Xv, yv) = split_train_val(X, y, seed=5)
    assert len(Xt) == 900 and len(Xv) == 100
    assert sorted(np.concatenate([Xt, Xv]).ravel().tolist()) == list(range(1000))  # a partition
    np.testing.assert_array_equal(yv, Xv.ravel() % 10)  # labels follow their examples
    (_, _), (Xv2, _) = split_train_val(X, y, seed=5)
    (_, _), (Xv3, _) = split_train_val(X, y, seed=6)
    np.testing.assert_array_equal(Xv, Xv2)
    assert not np.array_equal(Xv, Xv3)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got 1.5"):
        split_train_val(X, y, 1.5)
    with pytest.raises(ValueError, match="cannot hold out 0.1 of 3 examples"):
        split_train_val(X[:3], y[:3])


def test_classification_datasets(monkeypatch):
    ds = load_classes("digits")
    assert ds.X_train.shape == (1497, 64) and ds.X_test.shape == (300, 64)
    assert ds.X_train.dtype == np.float32 and 0 <= ds.X_train.min() and ds.X_train.max() == 1
    assert ds.n_classes == 10 and set(np.unique(ds.y_train)) == set(range(10))
    with pytest.raises(ValueError, match=r"y_train must hold integer class indices, got dtype float64"):
        load_classes(((np.zeros((4, 3)), np.zeros(4)), (np.zeros((2, 3)), np.zeros(2, int))))
    with pytest.raises(ValueError, match=r"y_test must hold one class index per example, shape \(2,\)"):
        load_classes(((np.zeros((4, 3)), np.arange(4)), (np.zeros((2, 3)), np.zeros((2, 1), int))))
    with pytest.raises(ValueError, match="unknown classification dataset 'cifar10'"):
        load_classes("cifar10")
    monkeypatch.delenv("JAXTRAINER_DATA_DIR", raising=False)
    with pytest.raises(
        FileNotFoundError,
        match=r"dataset 'mnist' is read from files you already "
        r"have: pass data_dir=",
    ):
        load_classes("mnist")
