"""The registry: every name a user can choose works end to end, and the CLI offers exactly those.
Parametrised over the registries, as optax's tests are over its optimizers."""

import importlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from jaxtrainer import layers, models, registry, train
from jaxtrainer.cli import build_parser
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.gradient import apply
from jaxtrainer.settings import Settings
from jaxtrainer.spec import Spec
from torch_compat import reference as ref

SMALL = NetworkConfiguration((4,), (3,), (1,), (8,))


def test_importing_the_registry_loads_no_numerical_library():
    code = (
        "import sys, jaxtrainer.registry\n"
        "print([m for m in ('jax', 'flax', 'optax', 'numpy', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", registry.OPTIMIZERS)
def test_every_optimizer_steps_as_optax_applied_by_hand(name, rng):
    """The spec's optimizer builds the state and steps it: two steps equal optax's own."""
    X = jnp.asarray(rng.uniform(-1, 1, (16, 1, 28, 28)), jnp.float32)
    y = jnp.asarray(rng.uniform(0, 1, (16, 1)), jnp.float32)
    settings = Spec("mlp", SMALL, optimizer=name, batch_size=16).settings()
    model = models.build_network("mlp", (1, 28, 28), SMALL, seed=0)
    graphdef, state = train.init_state(model, 0.01, settings)
    params = state.params
    tx = getattr(optax, name)(learning_rate=0.01)
    opt_state = tx.init(params)
    mse = lambda p: jnp.mean((apply(graphdef, p, X) - y) ** 2)
    for _ in range(2):
        state, _ = train.train_step(graphdef, state, X, y, settings)
        updates, opt_state = tx.update(jax.grad(mse)(params), opt_state, params)
        params = optax.apply_updates(params, updates)
    assert not np.allclose(jax.tree.leaves(state.params)[0], jax.tree.leaves(model)[0])  # it moved
    # Each step moves a weight by ~lr = 0.01: 1e-5 is rounding (jitted against eager), not another step.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state.params, params)


@pytest.mark.parametrize("name", registry.ACTIVATIONS)
def test_every_activation_is_pytorchs_of_the_registered_class_name(name):
    x = np.linspace(-6, 6, 49, dtype=np.float32)
    ours = np.asarray(layers.ACTIVATION_MODULES[name]()(jnp.asarray(x)))
    theirs = getattr(torch.nn, registry.ACTIVATIONS[name])()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert Spec(activation=name.upper()).activation == name  # any case


@pytest.mark.parametrize("network", registry.NETWORK_TYPES)
def test_every_network_type_equals_the_pytorch_reference(network, rng):
    model = models.build_network(network, (1, 28, 28), SMALL, seed=0)
    activation = torch.nn.ReLU()
    torch_net = (
        ref.Trainer.create_mlp(28 * 28, SMALL, activation)
        if network == "mlp"
        else ref.Trainer.create_cnn(1, SMALL, activation)
    )
    torch_net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in models.state_dict(model).items()})
    X = rng.uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)
    expected = torch_net(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(np.asarray(model(X)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", registry.CONV_IMPLS)
def test_every_conv_impl_gives_the_same_network(impl, rng):
    X = rng.uniform(-1, 1, (2, 1, 28, 28)).astype(np.float32)
    built = lambda impl: models.build_network("cnn", (1, 28, 28), SMALL, seed=0, conv_impl=impl)
    np.testing.assert_allclose(np.asarray(built(impl)(X)), np.asarray(built("lax")(X)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("strategy", registry.STRATEGIES)
def test_every_strategy_is_a_way_to_run_the_members(strategy):
    assert Settings(strategy=strategy).strategy == (strategy if strategy != "auto" else "map")  # CPU


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("optimizer", "adamm", r"optimizer must be one of \('adam', 'sgd', .*\), got 'adamm'"),
        ("network", "rnn", r"network_type must be one of \('mlp', 'cnn'\), got 'rnn'"),
        ("activation", "gelu", r"activation must be one of \('relu', 'tanh', 'sigmoid'\) \(any case\)"),
        ("conv_impl", "fft", r"conv implementation must be one of \('im2col', 'lax'\), got 'fft'"),
        ("strategy", "pmap", r"strategy must be one of \('auto', 'vmap', 'map'\), got 'pmap'"),
    ],
)
def test_a_name_outside_the_registry_is_refused_naming_the_choices(field, value, message):
    with pytest.raises(ValueError, match=message):
        Spec(**{field: value})


def test_the_command_line_offers_exactly_the_registered_names():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    for command in ("train", "sweep", "homework"):
        options = {a.dest: a for a in sub[command]._actions}
        assert tuple(options["optimizer"].choices) == registry.OPTIMIZERS
        assert options["optimizer"].default == "adam"
        assert tuple(options["strategy"].choices) == registry.STRATEGIES
        assert tuple(options["conv_impl"].choices) == registry.CONV_IMPLS
    assert tuple({a.dest: a for a in sub["train"]._actions}["network"].choices) == registry.NETWORK_TYPES
    labs = next(a for a in sub["lab"]._actions if a.dest == "lab").choices
    assert tuple(labs) == tuple(registry.LABS)


@pytest.mark.parametrize("name", registry.LABS)
def test_every_lab_names_a_module_that_runs_it(name):
    entry = registry.LABS[name]
    module = importlib.import_module(f"jaxtrainer.labs.{entry.module}")
    assert callable(module.run_from_args)
    if entry.dataset is not None:
        assert entry.dataset in registry.DATASETS and entry.epochs > 0
