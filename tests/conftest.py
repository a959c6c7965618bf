import chex
import jax
import numpy as np
import pytest

# Four CPU devices for the whole session, so that sharded sweeps are tested in this process. Set
# through jax's config rather than XLA_FLAGS (what chex.set_n_cpu_devices writes): the processes
# the tests start (test_distributed's one-process reference, the killed CLI runs) inherit the
# environment and must keep their one device. A multi-member sweep shards over all visible
# devices by default; tests about the member axis on one device pass `devices=ONE_DEVICE`.
jax.config.update("jax_num_cpu_devices", 4)
ONE_DEVICE = jax.devices()[:1]

HOMEWORK_CONFIGS = {
    # name: (network_type, NetworkConfiguration fields)
    "mlp": ("mlp", ((16, 32, 48), (3, 3, 3), (1, 1, 1), (128, 128))),
    "cnn": ("cnn", ((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,))),
    "deep_cnn": ("cnn", ((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256))),
    "shallow_cnn": ("cnn", ((9,), (28,), (1,), (256, 256))),
}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_dataset(rng, n_train=300, n_test=100, shape=(1, 28, 28)):
    X = rng.uniform(-1, 1, (n_train + n_test, *shape)).astype(np.float32)
    y = rng.standard_normal((n_train + n_test, 1)).astype(np.float32)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def traced_at_most(n, *programs):
    """Each of the sweep's compiled `programs` (sweeps.sweep_epoch, sweeps.sweep_evaluate) under a
    fresh jit with their static arguments: its cache is empty, so the first call traces, and
    chex.assert_max_traces (which wraps a function before jit) fails when one is traced more than
    n times. The trace counts start from zero."""
    chex.clear_trace_counter()
    static = ("graphdef", "settings", "mesh")
    return [jax.jit(chex.assert_max_traces(p.__wrapped__, n=n), static_argnames=static) for p in programs]
