import gzip
import os
import shutil
import tempfile

import chex
import jax
import numpy as np
import pytest

from jaxtrainer.presets import NETWORKS

# The tests must not depend on what earlier runs left in the compilation cache: this session (and
# the subprocesses it starts) gets an empty one of its own, removed at the end.
SESSION_CACHE = tempfile.mkdtemp(prefix="jaxtrainer-test-xla-")
os.environ["JAXTRAINER_CACHE_DIR"] = SESSION_CACHE
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)


# Four CPU devices for the whole session, so that sharded sweeps are tested in this process. Set
# through jax's config rather than XLA_FLAGS (what chex.set_n_cpu_devices writes): the processes
# the tests start (test_distributed's one-process reference, the killed CLI runs) inherit the
# environment and must keep their one device. A multi-member sweep shards over all visible
# devices by default; tests about the member axis on one device pass `devices=ONE_DEVICE`.
jax.config.update("jax_num_cpu_devices", 4)
ONE_DEVICE = jax.devices()[:1]

# name: (network_type, NetworkConfiguration fields) of the homework's four networks
HOMEWORK_CONFIGS = {name: (net.network_type, tuple(net.net_config)) for name, net in NETWORKS.items()}


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


# The IDX files of Fashion-MNIST and MNIST, as their publishers name them.
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array)
    return (
        bytes([0, 0, type_code, array.ndim])
        + np.array(array.shape, ">u4").tobytes()
        + array.astype(np.uint8).tobytes()
    )


def write_idx(path, array, gz):
    payload = idx_bytes(array)
    path = str(path) + (".gz" if gz else "")
    with gzip.open(path, "wb") if gz else open(path, "wb") as f:
        f.write(payload)
    return path


def make_idx_set(folder, n_train=12, n_test=6, gz=(True, True, False, False), seed=0):
    """Four IDX files of random images; returns the raw arrays."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for (key, name), compressed in zip(IDX_NAMES.items(), gz):
        write_idx(os.path.join(folder, name), arrays[key], compressed)
    return arrays


def compiled_programs():
    """How many programs the engine's jitted functions hold: unchanged when bad input is refused
    before anything compiles."""
    from jaxtrainer import train
    from jaxtrainer.sweeps import sweep_epoch, sweep_evaluate

    return sum(f._cache_size() for f in (train.train_step, sweep_epoch, sweep_evaluate, train.evaluate))


def traced_at_most(n, *programs):
    """Each of the sweep's compiled `programs` (sweeps.sweep_epoch, sweeps.sweep_evaluate) under a
    fresh jit with their static arguments: its cache is empty, so the first call traces, and
    chex.assert_max_traces (which wraps a function before jit) fails when one is traced more than
    n times. The trace counts start from zero."""
    chex.clear_trace_counter()
    static = ("graphdef", "settings", "mesh")
    return [jax.jit(chex.assert_max_traces(p.__wrapped__, n=n), static_argnames=static) for p in programs]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The test_faults_* files' train command (fault_helpers.train_argv), finished and never
    interrupted: what a faulted run must end as once the same command finishes it."""
    from fault_helpers import train_argv

    from jaxtrainer.cli import main

    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_argv(out)) == 0
    return out
