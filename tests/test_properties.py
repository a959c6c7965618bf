"""Random configurations, shapes, dtypes and values for the facade and the command line: each
either works or is refused with one of our clear errors, never an internal one (IndexError,
KeyError, ZeroDivisionError, an XLA error, a traceback).

Kept fast: the constructor and the checks are what is exercised. The command line runs for real
up to the epoch loop, where a stand-in stops it: every refusal must come before that point
(nothing is compiled for a configuration that is then refused), and a configuration that reaches
it is one that trains (the fault tests train such configurations for real).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png_folder
from flax import nnx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxtrainer import files, models
from jaxtrainer.cli import main
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.errors import InputError
from jaxtrainer.experiments import groups
from torch_compat import Trainer

CHECKS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- values, good and bad ----------------------------------------------------------------------------
def mostly(valid, bad, odds: int = 16):
    """`valid` but once in `odds` draws, so that whole configurations are often valid and get past
    the first check (hypothesis would flatten a one_of of one_ofs into even odds)."""
    middle = odds // 2 + 1  # not an end of the range: hypothesis draws the ends more often
    return st.integers(1, odds).flatmap(lambda i: bad if i == middle else valid)


HUGE = [2**31, 2**40, 2**63, 10**30]
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.just(np.int64(3)),
    st.just(object()),
)
ints = mostly(st.integers(1, 4), st.one_of(st.integers(-3, 0), st.sampled_from([-(2**40), *HUGE]), anything))
sizes = mostly(st.lists(ints, max_size=3).map(tuple), anything)
net_configs = mostly(
    mostly(
        st.builds(
            NetworkConfiguration,
            st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
            st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
            st.lists(st.integers(1, 2), min_size=1, max_size=3).map(tuple),
            st.lists(st.integers(1, 4), max_size=2).map(tuple),
        ),
        st.builds(NetworkConfiguration, sizes, sizes, sizes, sizes),
        odds=3,
    ),
    st.one_of(st.tuples(sizes, sizes), anything),
)
seeds = mostly(
    st.integers(0, 2**32 - 1),
    st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-1, 2**32, 2**32 + 1, 2**63, 2**64]), anything),
)
bad_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), ints, anything)
learning_rates = mostly(st.floats(1e-6, 1.0), bad_numbers)
batch_sizes = mostly(st.integers(1, 64), bad_numbers)
activations = mostly(
    st.sampled_from(["relu", "ReLU", "tanh", "SIGMOID"]), st.one_of(st.just("gelu"), anything)
)
network_types = mostly(st.sampled_from(["mlp", "cnn"]), st.one_of(st.sampled_from(["MLP", "rnn"]), anything))
NUMERIC = [np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_]
DTYPES = [*NUMERIC, np.complex64, object]


def arrays(draw, dtype, shape, finite: bool):
    if dtype is object:
        return np.full(shape, None, dtype=object)
    elements = st.floats(-10, 10, width=16 if dtype == np.float16 else 32) if finite else None
    return draw(hnp.arrays(dtype, shape, elements=elements if np.dtype(dtype).kind in "fc" else None))


@st.composite
def datasets(draw):
    """((X_train, y_train), (X_test, y_test)): mostly tiny images of one shape and finite values,
    sometimes other dtypes, shapes, NaN, Inf, empty splits."""
    valid = draw(st.integers(0, 5)) > 0
    dtype = draw(st.sampled_from(NUMERIC if valid else DTYPES))
    c, h, w = draw(st.integers(1, 2)), draw(st.sampled_from([1, 4, 12])), draw(st.sampled_from([1, 4, 12]))

    def split():
        n = draw(st.integers(1, 4) if valid else st.integers(0, 4))
        bad_x, bad_y = [(n, h, w), (n, c, h, w, 1)], [(n,), (n, 2), (n + 1, 1)]
        x_shape = (n, c, h, w) if valid else draw(st.sampled_from([(n, c, h, w), *bad_x]))
        y_shape = (n, 1) if valid else draw(st.sampled_from([(n, 1), *bad_y]))
        return arrays(draw, dtype, x_shape, valid), arrays(draw, dtype, y_shape, valid)

    return split(), split()


# -- what a clear error is ------------------------------------------------------------------------------
NAMES = re.compile(
    r"network_type|net_config|n_channels|kernel_sizes|strides|dense_hiddens|conv layer|max-pool|\blr\b|"
    r"batch_size|seed|activation|\b[Xy](_batch|_train|_test)?\b|the (MLP|CNN)|dataset|targets|parameters"
)


def assert_clear(error: Exception) -> None:
    """An InputError (a ValueError), TypeError or FileError of one line that names what it refuses."""
    event(f"refused: {NAMES.search(str(error))[0] if NAMES.search(str(error)) else str(error)}")
    clear = type(error) in (InputError, ValueError, TypeError) or isinstance(error, files.FileError)
    assert clear, repr(error)
    message = str(error)
    assert message and "\n" not in message and NAMES.search(message), repr(error)


# -- the facade ---------------------------------------------------------------------------------------
@pytest.mark.slow
@CHECKS
@given(
    network_type=network_types,
    net_config=net_configs,
    lr=learning_rates,
    batch_size=batch_sizes,
    activation=activations,
    seed=seeds,
    dataset=datasets(),
)
def test_the_facades_constructor_works_or_says_what_is_wrong(
    network_type, net_config, lr, batch_size, activation, seed, dataset
):
    try:
        trainer = Trainer(network_type, net_config, lr, batch_size, activation, dataset=dataset, seed=seed)
    except (ValueError, TypeError) as e:
        assert_clear(e)
        return
    event("works")
    X, _ = trainer.train
    assert trainer.network(X[:1]).shape == (1, 1)


@pytest.fixture(scope="module")
def small_trainer():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(-1, 1, (8, 1, 4, 4)).astype(np.float32), rng.standard_normal((8, 1))
    return Trainer("mlp", NetworkConfiguration(dense_hiddens=(4,)), dataset=((X, y), (X, y)), progress=False)


@st.composite
def batches(draw):
    valid = draw(st.integers(0, 2)) > 0
    dtype = draw(st.sampled_from(NUMERIC if valid else DTYPES))
    n = draw(st.integers(1, 3) if valid else st.integers(0, 3))  # few batch sizes: few programs
    x_shape = (n, 1, 4, 4) if valid else draw(st.sampled_from([(n, 16), (n, 2, 4, 4), (n, 1, 3, 4), ()]))
    y_shape = (n, 1) if valid else draw(st.sampled_from([(n, 1), (n,), (n, 2), ()]))
    return arrays(draw, dtype, x_shape, False), arrays(draw, dtype, y_shape, False)


@pytest.mark.slow
@CHECKS
@given(batch=batches(), method=st.sampled_from(["evaluate", "training_step"]))
def test_the_facades_batch_methods_work_or_say_what_is_wrong(small_trainer, batch, method):
    try:
        loss, mae = getattr(small_trainer, method)(*batch)
    except (ValueError, TypeError) as e:
        assert_clear(e)
        return
    event("works")
    assert np.shape(loss) == np.shape(mae) == ()


@pytest.mark.slow
@CHECKS
@given(
    network=st.sampled_from(["mlp", "cnn"]),
    channels=st.lists(st.integers(1, 2**20), min_size=1, max_size=3),
    kernels=st.lists(st.integers(1, 3), min_size=3, max_size=3),
    hiddens=st.lists(st.integers(1, 2**20), max_size=3),
    shape=st.tuples(st.integers(1, 3), st.integers(8, 40), st.integers(8, 40)),
)
def test_the_size_check_counts_exactly_the_parameters_drawn(network, channels, kernels, hiddens, shape):
    cfg = NetworkConfiguration(
        tuple(channels), tuple(kernels[: len(channels)]), (1,) * len(channels), tuple(hiddens)
    )
    counted = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "check_parameter_memory", counted.append)
        try:
            model = nnx.eval_shape(lambda: models.build_network(network, shape, cfg))
        except ValueError as e:  # an image too small for the CNN
            assert_clear(e)
            return
    assert counted == [models.count_parameters(model)]


# -- the command line ----------------------------------------------------------------------------------
class Trains(Exception):
    """The stand-in for the epoch loop: the configuration passed every check."""


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    return write_png_folder(tmp_path_factory.mktemp("png"), n_train=6, n_test=3, size=12)


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
OPTION_VALUES = {
    "float": mostly(
        st.floats(1e-5, 1.0).map(repr),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), TEXT),
    ),
    "int": mostly(st.integers(1, 4).map(str), st.one_of(st.sampled_from(["0", "-1", *map(str, HUGE)]), TEXT)),
}


@st.composite
def command_lines(draw, png_folder, out):
    cmd = draw(st.sampled_from(["train", "train", "sweep"]))
    argv = [cmd, "--no-progress", "--out", str(out)]
    for option, kind, count in [
        ("--lr", "float", (1, 2) if cmd == "sweep" else (1, 1)),
        ("--epochs", "int", (1, 1)),
        ("--batch-size", "int", (1, 1)),
        ("--seed", "int", (1, 2) if cmd == "sweep" else (1, 1)),
        ("--channels", "int", (0, 3)),
        ("--kernels", "int", (0, 3)),
        ("--strides", "int", (0, 3)),
        ("--hidden", "int", (0, 2)),
    ]:
        if draw(st.booleans()):
            n = draw(st.integers(*count))
            argv += [option, *(draw(OPTION_VALUES[kind]) for _ in range(n))]
    if draw(st.booleans()):
        argv += ["--activation", draw(activations.map(str))]
    if draw(st.booleans()):
        argv += ["--network", draw(mostly(st.sampled_from(["mlp", "cnn"]), st.just("rnn")))]
    others = st.sampled_from(["digits", "mnist", "/nonexistent", "", "x", str(png_folder / "train")])
    argv += ["--dataset", draw(mostly(st.just(str(png_folder)), others, odds=4))]
    argv[3] = draw(
        mostly(st.just(argv[3]), st.sampled_from(["/sys/kernel", "/dev/null", "", str(png_folder)]))
    )
    return argv


@pytest.mark.slow
@CHECKS
@given(data=st.data())
def test_the_command_line_works_or_says_what_is_wrong_in_one_line(png, data, capfd, monkeypatch):
    def trains(*args, **kwargs):
        raise Trains

    monkeypatch.setattr(groups, "fit_sweep", trains)  # the one road of train, sweep and homework
    with tempfile.TemporaryDirectory() as tmp:
        argv = data.draw(command_lines(png, Path(tmp) / "run"), label="argv")
        capfd.readouterr()
        code = None
        with contextlib.suppress(Trains):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's usage error
                code = e.code
                event("usage error")
                assert code == 2 and "error: argument" in capfd.readouterr().err
                return
        err = capfd.readouterr().err
        if code is None:  # it trains
            event("trains")
            assert "error" not in err
            return
        event(f"refused: {err.strip()[19:90]}")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxtrainer: error: "), err
