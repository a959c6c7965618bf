"""Sweeps: K configurations of one network in one compiled program, each equal to its solo run."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ONE_DEVICE, random_dataset, traced_at_most
from flax import nnx

from jaxtrainer import models, train
from jaxtrainer.cli import main as cli_main
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.experiments.sweep import run_sweep
from jaxtrainer.gradient import apply
from jaxtrainer.settings import Settings
from jaxtrainer.spec import Spec
from jaxtrainer.sweeps import Loop, devices_used, fit, members_of, programs, sweep

LOG_KEYS = Settings().log_keys
QUIET = Loop(progress=False, devices=ONE_DEVICE)

NETS = {
    "mlp": NetworkConfiguration(dense_hiddens=(16,)),
    "cnn": NetworkConfiguration((4, 8), (3, 3), (1, 1), (16,)),
}
BATCH = 32  # 100 training examples: three full batches and a short one of 4
EPOCHS = 2


@pytest.fixture(scope="module")
def tiny():
    return random_dataset(np.random.default_rng(0), n_train=100, n_test=40)


_SOLO = {}


def small(members, strategy):
    """The spec fields of these tests' sweeps."""
    return dict(members=members, batch_size=BATCH, epochs=EPOCHS, strategy=strategy)


def solo(network, lr, seed, data):
    """fit on one configuration alone (cached: several tests compare against the same runs)."""
    key = (network, lr, seed)
    if key not in _SOLO:
        model = models.build_network(network, (1, 28, 28), NETS[network], seed=seed)
        graphdef, state = train.init_state(model, lr)
        _SOLO[key] = fit(graphdef, state, *data, EPOCHS, Settings(batch_size=BATCH), loop=QUIET)[1]
    return _SOLO[key]


def assert_logs_close(a, b, atol=1e-5):
    """The same entries finite (a diverged member's NaN and inf alike) and the finite ones within
    atol (0: bit for bit)."""
    assert set(a) == set(b) == set(LOG_KEYS)
    a, b = ({key: np.array(values) for key, values in logs.items()} for logs in (a, b))
    chex.assert_shape([*a.values(), *b.values()], (EPOCHS + 1,))
    chex.assert_trees_all_equal(jax.tree.map(np.isfinite, a), jax.tree.map(np.isfinite, b))
    finite = lambda x: np.where(np.isfinite(x), x, 0.0)
    chex.assert_trees_all_close(jax.tree.map(finite, a), jax.tree.map(finite, b), atol=atol, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["vmap", "map"])
@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_each_member_equals_its_solo_run(network, strategy, tiny):
    members = members_of([1e-2, 1e-3], [0, 1])
    assert members == [(1e-2, 0), (1e-2, 1), (1e-3, 0), (1e-3, 1)]
    result = sweep(Spec(network, NETS[network], **small(members, strategy), dataset=tiny), QUIET)
    assert result.strategy == strategy and len(result.logs) == 4
    for (lr, seed), logs in zip(members, result.logs):
        assert_logs_close(logs, solo(network, lr, seed, tiny))
    assert result.diverged_at_epoch == [None] * 4


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["vmap", "map"])
def test_a_diverging_member_leaves_the_others_unharmed(strategy, tiny):
    # lr 1e3 is not enough: Adam's steps are ~lr, and the MSE stays finite. 1e25 overflows.
    members = [(1e-3, 0), (1e25, 0), (1e-2, 1)]
    result = sweep(Spec("mlp", NETS["mlp"], **small(members, strategy), dataset=tiny), QUIET)
    assert result.diverged_at_epoch == [None, 1, None]
    assert all(np.isnan(result.logs[1][k][1:]).all() for k in LOG_KEYS)
    assert_logs_close(result.logs[0], solo("mlp", 1e-3, 0, tiny))
    assert_logs_close(result.logs[2], solo("mlp", 1e-2, 1, tiny))
    # what fit logs for the same configuration alone
    assert_logs_close(result.logs[1], solo("mlp", 1e25, 0, tiny))


@pytest.mark.slow
def test_new_learning_rates_do_not_recompile(tiny, monkeypatch):
    """The second run, with other learning rates, traces neither program again."""
    epoch, evaluate = traced_at_most(1, programs.sweep_epoch, programs.sweep_evaluate)
    monkeypatch.setattr(programs, "sweep_epoch", epoch)
    monkeypatch.setattr(programs, "sweep_evaluate", evaluate)

    def run(lrs):
        members = members_of(lrs, [3])
        return sweep(
            Spec("mlp", NETS["mlp"], **small(members, "vmap"), dataset=tiny).replace(epochs=1), QUIET
        )

    first = run([1e-2, 1e-3])
    second = run([5e-4, 2e-1])
    assert second.logs[0]["test_loss"][1] != first.logs[0]["test_loss"][1]  # the new lr was used
    np.testing.assert_allclose(
        np.asarray(second.state.opt_state.hyperparams["learning_rate"]), [5e-4, 2e-1], rtol=1e-7
    )


def test_members_and_devices_arithmetic():
    assert members_of([1e-2], [0, 1, 2]) == [(1e-2, 0), (1e-2, 1), (1e-2, 2)]
    assert members_of([1e-2, 1e-4], [5, 6], pair=True) == [(1e-2, 5), (1e-4, 6)]
    with pytest.raises(ValueError, match="one length"):
        members_of([1e-2, 1e-4], [5], pair=True)
    with pytest.raises(ValueError, match="lr"):
        Spec(members=members_of([0.0], [1]))
    # (devices used, padded K): fewest members per device, then fewest devices (least padding)
    assert devices_used(3, 4) == (3, 3)
    assert devices_used(4, 4) == (4, 4)
    assert devices_used(5, 4) == (3, 6)
    assert devices_used(7, 4) == (4, 8)
    assert devices_used(3, 1) == (1, 3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "network,strategy,k", [("mlp", "vmap", 3), ("mlp", "vmap", 4), ("mlp", "vmap", 5), ("cnn", "map", 5)]
)
def test_sharded_over_four_host_devices_equals_one_device(network, strategy, k):
    cpus = jax.devices("cpu")  # four: conftest
    assert len(cpus) == 4, cpus
    data = random_dataset(np.random.default_rng(0), n_train=70, n_test=20)
    members = [((1e-2, 1e-3)[i % 2], i) for i in range(k)]
    members[-1] = (1e25, 9)  # diverges, on whichever device holds it

    def run(devices):
        spec = Spec(network, NETS[network], **small(members, strategy), dataset=data)
        return sweep(spec, Loop(progress=False, devices=devices))

    sharded, single = run(cpus), run(cpus[:1])
    n_devices = {3: 3, 4: 4, 5: 3}[k]  # K=5: 3 devices, padded to 6
    leaf = jax.tree.leaves(sharded.state.params)[0]
    assert sharded.n_devices == len(leaf.sharding.device_set) == n_devices
    assert single.n_devices == 1
    assert leaf.shape[0] == k  # the padding copy is dropped
    assert sharded.diverged_at_epoch == single.diverged_at_epoch == [None] * (k - 1) + [1]
    # lax.map runs each member's own program: bit for bit. vmap batches members differently on one
    # device (K) than on each of several (K/devices): rounding-level differences only.
    for a, b in zip(sharded.logs, single.logs):
        assert_logs_close(a, b, atol=0.0 if strategy == "map" else 1e-5)


@pytest.mark.slow
def test_sweep_command_writes_each_member_and_skips_finished_ones(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--lr",
        "1e-2",
        "1e-3",
        "--seed",
        "0",
        "1",
        "--pair",
        "--network",
        "mlp",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert cli_main(argv) == 0
    first = capsys.readouterr().out
    assert "lr_0.01_seed_0" in first and "lr_0.001_seed_1" in first
    for member in ("lr_0.01_seed_0", "lr_0.001_seed_1"):
        saved = json.loads((out / member / "logs.json").read_text())
        assert len(saved["logs"]["test_mae"]) == 2 and saved["config"]["sweep"]["size"] == 2
        assert (out / member / "logs.csv").is_file()
    for name in ("report.md", "summary.json", "sweep.png", "checkpoint.npz"):
        assert (out / name).is_file(), name
    before = (out / "lr_0.01_seed_0" / "logs.json").read_text()
    assert cli_main(argv) == 0
    assert "2 run(s) already finished" in capsys.readouterr().out
    assert (out / "lr_0.01_seed_0" / "logs.json").read_text() == before


def test_a_sweep_with_sgd_equals_sgd_applied_by_hand(tmp_path, tiny):
    """Issue 21: the optimizer is given once, in the spec: `sgd` builds the state and steps it
    (the step alone used to get it, so the state was Adam's and sgd() was called with Adam's b1)."""
    spec = Spec(
        "mlp", NETS["mlp"], optimizer="sgd", members=[(0.1, 0)], batch_size=200, epochs=1, dataset=tiny
    )
    result = run_sweep(spec.replace(strategy="map"), str(tmp_path), progress=False)
    model = models.build_network("mlp", (1, 28, 28), NETS["mlp"], seed=0)
    graphdef, params = nnx.split(model, nnx.Param)
    mse = lambda p, X, y: jnp.mean((apply(graphdef, p, jnp.asarray(X)) - jnp.asarray(y)) ** 2)
    grads = jax.grad(mse)(params, *tiny[0])
    stepped = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    assert result["rows"][0]["final_test_loss"] == pytest.approx(float(mse(stepped, *tiny[1])), rel=1e-5)
    saved = json.loads((tmp_path / "spec.json").read_text())
    assert saved["optimizer"] == "sgd" and saved["members"] == [{"lr": 0.1, "seed": 0}]
    with pytest.raises(ValueError, match=r"different configuration \(optimizer: saved 'sgd', now 'adam'\)"):
        run_sweep(spec.replace(optimizer="adam", epochs=2), str(tmp_path), progress=False)
