"""The grader (plan.py) and the collector inside the sandbox (collector.py, which cannot import the
project) draw the same inputs from the run's seed: the judge compares the student's outputs with
the engine's on inputs it draws again, so one drifting copy would fail every submission."""

import numpy as np
import pytest

from jaxtrainer.grade import collector, plan


@pytest.mark.parametrize("variant", ["tensor", "loader"])
@pytest.mark.parametrize("seed", [0, 12345, 2**31 - 1])
def test_the_collector_draws_the_batches_the_grader_draws(variant, seed):
    shape = (1, 28, 28) if variant == "tensor" else (3, 32, 32)
    draw = collector.Collector({"seed": seed, "variant": variant}, out=None)
    draw.image_shape = shape
    for name, n in (("step", 7), ("loop", 130)):
        X, y = draw.batch(name, n)
        X_plan, y_plan = plan.batch(seed, name, n, shape, variant)
        np.testing.assert_array_equal(X, X_plan)
        assert X.dtype == X_plan.dtype == np.float32
        # The loader year's labels are int64 class indices in the sandbox, float32 for the judge.
        np.testing.assert_array_equal(np.asarray(y, np.float32), y_plan)
        assert y.dtype == (np.float32 if variant == "tensor" else np.int64)


def test_the_draws_change_with_the_seed_and_the_call():
    a = plan.inputs(1, "step-x", (4, 3))
    assert not np.array_equal(a, plan.inputs(2, "step-x", (4, 3)))
    assert not np.array_equal(a, plan.inputs(1, "loop-x", (4, 3)))
    assert a.min() >= -1.0 and a.max() <= 1.0
