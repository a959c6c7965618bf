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


def write_png_folder(root, n_train=48, n_test=16, size=28):
    """A rotated-PNG dataset folder (train/ and test/ of <i>_<angle>.png, 8-bit grey)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / split / f"{i}_{rng.integers(0, 91)}.png")
    return root


def compiled_programs():
    """How many programs the engine's jitted functions hold: unchanged when bad input is refused
    before anything compiles."""
    from jaxtrainer import train
    from jaxtrainer.sweeps import sweep_epoch, sweep_evaluate

    return sum(f._cache_size() for f in (train.train_step, sweep_epoch, sweep_evaluate, train.evaluate))
