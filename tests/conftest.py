import os
import shutil
import tempfile

import numpy as np
import pytest

# The tests must not depend on what earlier runs left in the compilation cache: this session (and
# the subprocesses it starts) gets an empty one of its own, removed at the end.
SESSION_CACHE = tempfile.mkdtemp(prefix="jaxtrainer-test-xla-")
os.environ["JAXTRAINER_CACHE_DIR"] = SESSION_CACHE
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


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
