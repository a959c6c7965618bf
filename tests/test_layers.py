"""The NNX layers against PyTorch (CPU) and against plain numpy loops of PyTorch's formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

from jaxtrainer import presets
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.layers import (
    AdaptiveMaxPool2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
    adaptive_max_pool,
    adaptive_windows,
    conv_im2col,
    conv_lax,
    default_conv_impl,
    max_pool_2x2,
    torch_uniform,
)
from jaxtrainer.models import build_network, count_parameters, load_state_dict, state_dict


def nhwc_to_nchw(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 3, 1, 2))


def nchw_to_nhwc(a):
    return np.ascontiguousarray(np.asarray(a).transpose(0, 2, 3, 1))


def distinct_values(shape, seed):
    """Random values with no ties (a permutation), so that every max has a unique argmax."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float32) / n - 0.5).reshape(shape)


def assert_close(actual, expected, tol=1e-5):
    """|actual - expected| <= tol * max(1, max|expected|): absolute for O(1) values, relative for
    large accumulated ones (a weight gradient sums over every output position)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= tol * scale, f"max abs error {err:.3g} > {tol} * {scale:.3g}"


# --- adaptive max pooling ----------------------------------------------------------------------------


def formula_windows(size, out):
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def numpy_adaptive_max_pool(x, out_hw):
    """A plain loop of PyTorch's formula on NHWC input."""
    b, h, w, c = x.shape
    oh, ow = out_hw
    y = np.empty((b, oh, ow, c), x.dtype)
    for i in range(oh):
        r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
        for j in range(ow):
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            y[:, i, j, :] = x[:, r0:r1, c0:c1, :].max(axis=(1, 2))
    return y


def test_adaptive_windows_formula():
    for size in range(1, 40):
        for out in (1, 2, 3, 4, 5, 7):
            windows = adaptive_windows(size, out)
            assert windows == formula_windows(size, out), (size, out)
            assert all(lo < hi for lo, hi in windows)  # never empty
            assert windows[0][0] == 0 and windows[-1][1] == size  # covers the whole input
    # spot checks written out by hand
    assert adaptive_windows(3, 4) == [(0, 1), (0, 2), (1, 3), (2, 3)]
    assert adaptive_windows(1, 4) == [(0, 1)] * 4
    assert adaptive_windows(5, 4) == [(0, 2), (1, 3), (2, 4), (3, 5)]
    assert adaptive_windows(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]


_pool44 = jax.jit(lambda x: adaptive_max_pool(x, (4, 4)))

SIZES = [(s, s) for s in range(1, 13)] + [(5, 9), (3, 7), (9, 5), (1, 6), (13, 2)]


@pytest.mark.parametrize("hw", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_adaptive_max_pool_against_formula_and_torch(hw):
    h, w = hw
    x = distinct_values((2, h, w, 3), seed=h * 100 + w)
    y = np.asarray(_pool44(jnp.asarray(x)))
    assert y.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(y, numpy_adaptive_max_pool(x, (4, 4)))
    t = nn.AdaptiveMaxPool2d((4, 4))(torch.from_numpy(nhwc_to_nchw(x)))
    np.testing.assert_array_equal(y, nchw_to_nhwc(t.numpy()))


@pytest.mark.parametrize("hw", [(3, 3), (1, 1), (7, 5)])
def test_adaptive_max_pool_gradient_against_torch(hw):
    """Overlapping windows (3x3, 1x1, 7 rows, 5 columns) send gradient to one input from several
    cells; torch accumulates them."""
    x = distinct_values((2, *hw, 2), seed=7)
    g = np.random.default_rng(1).standard_normal((2, 4, 4, 2)).astype(np.float32)
    grad = jax.jit(jax.grad(lambda a: jnp.sum(adaptive_max_pool(a, (4, 4)) * g)))(jnp.asarray(x))
    xt = torch.from_numpy(nhwc_to_nchw(x)).requires_grad_()
    (nn.AdaptiveMaxPool2d((4, 4))(xt) * torch.from_numpy(nhwc_to_nchw(g))).sum().backward()
    assert_close(grad, nchw_to_nhwc(xt.grad.numpy()), 1e-6)


@pytest.mark.slow
def test_adaptive_max_pool_module_attributes():
    pool = AdaptiveMaxPool2d([4, 4])
    assert pool.output_size == (4, 4)
    x = distinct_values((1, 3, 3, 2), seed=4)
    np.testing.assert_array_equal(np.asarray(pool(jnp.asarray(x))), numpy_adaptive_max_pool(x, (4, 4)))
    x = distinct_values((1, 6, 10, 1), seed=3)
    assert np.asarray(AdaptiveMaxPool2d((2, 5))(jnp.asarray(x))).shape == (1, 2, 5, 1)
    np.testing.assert_array_equal(
        np.asarray(adaptive_max_pool(jnp.asarray(x), (2, 5))), numpy_adaptive_max_pool(x, (2, 5))
    )


# --- 2x2 max pooling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(2, 6, 6, 3), (2, 7, 7, 2), (1, 5, 8, 4), (3, 2, 3, 1), (1, 3, 2, 2), (2, 13, 11, 3)]
)
def test_max_pool_2x2_against_torch(shape):
    x = distinct_values(shape, seed=sum(shape))
    b, h, w, c = shape
    g = np.random.default_rng(2).standard_normal((b, h // 2, w // 2, c)).astype(np.float32)
    y, (grad,) = jax.jit(lambda x, g: (lambda y, vjp: (y, vjp(g)))(*jax.vjp(max_pool_2x2, x)))(x, g)
    xt = torch.from_numpy(nhwc_to_nchw(x)).requires_grad_()
    yt = nn.MaxPool2d(2)(xt)
    (yt * torch.from_numpy(nhwc_to_nchw(g))).sum().backward()
    assert y.shape == (b, h // 2, w // 2, c)
    np.testing.assert_array_equal(np.asarray(y), nchw_to_nhwc(yt.detach().numpy()))
    np.testing.assert_array_equal(np.asarray(grad), nchw_to_nhwc(xt.grad.numpy()))
    # the cropped last row/column of an odd size gets no gradient
    if h % 2:
        assert not np.asarray(grad)[:, -1].any()
    if w % 2:
        assert not np.asarray(grad)[:, :, -1].any()


def test_max_pool_2x2_ties_send_the_gradient_to_the_first_maximum_as_torch_does():
    """Constant backgrounds make ties of positive values common in real images."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (2, 8, 6, 3)).astype(np.float32)  # many ties per window
    g = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    _, vjp = jax.vjp(max_pool_2x2, jnp.asarray(x))
    (grad,) = vjp(jnp.asarray(g))
    xt = torch.from_numpy(nhwc_to_nchw(x)).requires_grad_()
    (nn.MaxPool2d(2)(xt) * torch.from_numpy(nhwc_to_nchw(g))).sum().backward()
    np.testing.assert_array_equal(np.asarray(grad), nchw_to_nhwc(xt.grad.numpy()))


def test_max_pool_module():
    pool = MaxPool2d(2)
    assert (pool.kernel_size, pool.stride) == (2, 2)
    x = distinct_values((1, 4, 4, 1), seed=0)
    np.testing.assert_array_equal(np.asarray(pool(jnp.asarray(x))), np.asarray(max_pool_2x2(x)))
    with pytest.raises(ValueError, match=r"only MaxPool2d\(kernel_size=2\) is supported, got 3"):
        MaxPool2d(3)


# --- convolutions --------------------------------------------------------------------------------

# (C_in, C_out, kernel, stride, H, W)
CONV_CASES = [
    (1, 16, 3, 1, 28, 28),
    (3, 5, 1, 1, 6, 7),  # kernel 1
    (2, 4, 28, 1, 28, 28),  # kernel = image size
    (3, 4, 3, 2, 9, 9),  # stride 2, odd size
    (2, 3, 3, 2, 10, 7),  # stride 2, non-square, one side not reached exactly
    (4, 6, 5, 3, 11, 16),
    (16, 32, 3, 1, 13, 13),
    (1, 1, 2, 1, 2, 2),
]


def conv_case_data(case, batch=2, seed=0):
    cin, cout, k, s, h, w = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, h, w, cin)).astype(np.float32)
    bound = 1 / math.sqrt(cin * k * k)
    weight = rng.uniform(-bound, bound, (cout, cin, k, k)).astype(np.float32)
    bias = rng.uniform(-bound, bound, (cout,)).astype(np.float32)
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    g = rng.standard_normal((batch, ho, wo, cout)).astype(np.float32)
    return x, weight, bias, g


def conv_value_and_grads(conv, stride):
    def loss(x, weight, bias, g):
        return jnp.sum(conv(x, weight, bias, stride) * g)

    @jax.jit
    def f(x, weight, bias, g):
        y = conv(x, weight, bias, stride)
        return y, jax.grad(loss, argnums=(0, 1, 2))(x, weight, bias, g)

    return f


def torch_conv_value_and_grads(x, weight, bias, g, stride):
    xt = torch.from_numpy(nhwc_to_nchw(x)).double().requires_grad_()
    wt = torch.from_numpy(weight).double().requires_grad_()
    bt = torch.from_numpy(bias).double().requires_grad_()
    yt = F.conv2d(xt, wt, bt, stride=stride)
    (yt * torch.from_numpy(nhwc_to_nchw(g)).double()).sum().backward()
    return (
        nchw_to_nhwc(yt.detach().numpy()),
        (nchw_to_nhwc(xt.grad.numpy()), wt.grad.numpy(), bt.grad.numpy()),
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "ci{}-co{}-k{}-s{}-{}x{}".format(*c))
def test_conv_impls_agree_with_each_other_and_torch(case):
    cin, cout, k, s, h, w = case
    x, weight, bias, g = conv_case_data(case)
    y1, grads1 = conv_value_and_grads(conv_im2col, (s, s))(x, weight, bias, g)
    y2, grads2 = conv_value_and_grads(conv_lax, (s, s))(x, weight, bias, g)
    assert y1.shape == y2.shape == ((2, (h - k) // s + 1, (w - k) // s + 1, cout))
    assert_close(y1, y2)
    for a, b in zip(grads1, grads2):
        assert_close(a, b)
    # torch in float64 as the reference for both
    yt, grads_t = torch_conv_value_and_grads(x, weight, bias, g, s)
    for y in (y1, y2):
        assert_close(y, yt)
    for grads in (grads1, grads2):
        for a, b, name in zip(grads, grads_t, ("input", "weight", "bias")):
            assert a.shape == b.shape, name
            assert_close(a, b)


@pytest.mark.slow
def test_conv_rectangular_stride():
    x, weight, bias, _ = conv_case_data((2, 3, 3, 1, 11, 9))
    yt = F.conv2d(
        torch.from_numpy(nhwc_to_nchw(x)), torch.from_numpy(weight), torch.from_numpy(bias), stride=(2, 3)
    )
    for conv in (conv_im2col, conv_lax):
        assert_close(conv(jnp.asarray(x), weight, bias, (2, 3)), nchw_to_nhwc(yt.numpy()))


@pytest.mark.slow
def test_conv_impls_agree_inside_scan():
    """The engine runs convolutions in a lax.scan over batches; scanned values and gradients must
    equal the unscanned ones and each other."""
    cin, cout, k, s, h, w = 3, 4, 3, 2, 9, 8
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((4, 2, h, w, cin)).astype(np.float32)  # 4 steps of batch 2
    weight = rng.uniform(-0.2, 0.2, (cout, cin, k, k)).astype(np.float32)
    bias = rng.uniform(-0.2, 0.2, (cout,)).astype(np.float32)
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    gs = rng.standard_normal((4, 2, ho, wo, cout)).astype(np.float32)

    def scanned(conv):
        def loss(weight, bias, x, g):
            return jnp.sum(jnp.tanh(conv(x, weight, bias, (s, s))) * g)

        @jax.jit
        def run(weight, bias, xs, gs):
            def step(carry, xg):
                x, g = xg
                value, (gw, gb) = jax.value_and_grad(loss, argnums=(0, 1))(weight, bias, x, g)
                return (carry[0] + gw, carry[1] + gb), value

            init = (jnp.zeros_like(weight), jnp.zeros_like(bias))
            return jax.lax.scan(step, init, (xs, gs))

        return run(weight, bias, xs, gs)

    (gw1, gb1), v1 = scanned(conv_im2col)
    (gw2, gb2), v2 = scanned(conv_lax)
    assert_close(v1, v2)
    assert_close(gw1, gw2)
    assert_close(gb1, gb2)
    # independent: torch, step by step, gradients accumulated
    wt = torch.from_numpy(weight).double().requires_grad_()
    bt = torch.from_numpy(bias).double().requires_grad_()
    values = []
    for x, g in zip(xs, gs):
        yt = torch.tanh(F.conv2d(torch.from_numpy(nhwc_to_nchw(x)).double(), wt, bt, stride=s))
        value = (yt * torch.from_numpy(nhwc_to_nchw(g)).double()).sum()
        value.backward()
        values.append(value.item())
    for v, gw, gb in ((v1, gw1, gb1), (v2, gw2, gb2)):
        assert_close(v, np.array(values))
        assert_close(gw, wt.grad.numpy())
        assert_close(gb, bt.grad.numpy())


# --- Conv2d module and its implementation choice --------------------------------------------------


@pytest.mark.slow
def test_conv2d_module_impls_share_weights_and_outputs():
    a = Conv2d(3, 8, 3, stride=2, rngs=nnx.Rngs(params=42), impl="im2col")
    b = Conv2d(3, 8, 3, stride=2, rngs=nnx.Rngs(params=42), impl="lax")
    assert (a.impl, b.impl) == ("im2col", "lax")
    assert a.weight[...].shape == (8, 3, 3, 3) and a.bias[...].shape == (8,)
    np.testing.assert_array_equal(np.asarray(a.weight[...]), np.asarray(b.weight[...]))
    np.testing.assert_array_equal(np.asarray(a.bias[...]), np.asarray(b.bias[...]))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 9, 10, 3)), jnp.float32)
    ya, yb = np.asarray(a(x)), np.asarray(b(x))
    assert ya.shape == (2, 4, 4, 8)
    assert_close(ya, yb)
    ref = F.conv2d(
        torch.from_numpy(nhwc_to_nchw(x)),
        torch.from_numpy(np.array(a.weight[...])),
        torch.from_numpy(np.array(a.bias[...])),
        stride=2,
    )
    assert_close(ya, nchw_to_nhwc(ref.numpy()))
    c = Conv2d(3, 8, 3, stride=2, rngs=nnx.Rngs(params=43), impl="lax")
    assert not np.array_equal(np.asarray(a.weight[...]), np.asarray(c.weight[...]))


@pytest.mark.slow
def test_conv2d_torch_attributes():
    conv = Conv2d(16, 32, 3, 2, rngs=nnx.Rngs(params=0))
    assert (conv.in_channels, conv.out_channels) == (16, 32)
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2)
    assert conv.weight[...].shape == (32, 16, 3, 3) and conv.bias[...].shape == (32,)
    lin = Linear(784, 128, rngs=nnx.Rngs(params=0))
    assert (lin.in_features, lin.out_features) == (784, 128)
    assert lin.weight[...].shape == (128, 784) and lin.bias[...].shape == (128,)


@pytest.mark.parametrize("impl", ["cudnn", "IM2COL", "conv"])
def test_conv2d_invalid_impl(impl):
    with pytest.raises(
        ValueError,
        match=rf"conv implementation must be one of \('im2col', 'lax'\), "
        rf"got '{impl}'",
    ):
        Conv2d(1, 2, 3, rngs=nnx.Rngs(params=0), impl=impl)


@pytest.mark.slow
def test_default_conv_impl_env_override(monkeypatch):
    monkeypatch.delenv("JAXTRAINER_CONV", raising=False)
    assert default_conv_impl() == ("im2col" if jax.default_backend() == "cpu" else "lax")
    for impl in ("lax", "im2col"):
        monkeypatch.setenv("JAXTRAINER_CONV", impl)
        assert default_conv_impl() == impl
        assert Conv2d(1, 2, 3, rngs=nnx.Rngs(params=0)).impl == impl
        # an explicit impl wins over the environment
        other = "im2col" if impl == "lax" else "lax"
        assert Conv2d(1, 2, 3, rngs=nnx.Rngs(params=0), impl=other).impl == other
    monkeypatch.setenv("JAXTRAINER_CONV", "winograd")
    with pytest.raises(ValueError, match=r"must be one of \('im2col', 'lax'\), got 'winograd'"):
        default_conv_impl()
    with pytest.raises(ValueError, match="got 'winograd'"):
        Conv2d(1, 2, 3, rngs=nnx.Rngs(params=0))


# --- PyTorch's default initialisation -------------------------------------------------------------


def ks_statistic_uniform(values, lo, hi):
    """Kolmogorov-Smirnov distance between the empirical CDF and U(lo, hi)."""
    u = np.sort((np.asarray(values, np.float64).ravel() - lo) / (hi - lo))
    n = len(u)
    i = np.arange(1, n + 1)
    return max(np.max(i / n - u), np.max(u - (i - 1) / n))


def check_uniform(values, bound, near_edge):
    values = np.asarray(values, np.float64).ravel()
    n = len(values)
    assert np.all(np.abs(values) <= bound)
    # the spread reaches the bound: with n draws the largest |v| is within ~bound/n of it
    assert np.abs(values).max() >= near_edge * bound
    assert values.min() < 0 < values.max()
    # KS at the 0.1 % level (critical value 1.95/sqrt(n)); the seed is fixed, so this is deterministic
    assert ks_statistic_uniform(values, -bound, bound) < 1.95 / math.sqrt(n)
    # quantiles of U(-b, b) are linear in the level
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    tol = 4 * bound / math.sqrt(n)
    np.testing.assert_allclose(np.quantile(values, levels), (2 * levels - 1) * bound, atol=tol)
    assert abs(values.std() - bound / math.sqrt(3)) < 3 * bound / math.sqrt(n)


def test_linear_init_is_torch_uniform():
    lin = Linear(784, 128, rngs=nnx.Rngs(params=0))
    bound = 1 / math.sqrt(784)
    check_uniform(lin.weight[...], bound, near_edge=0.999)
    check_uniform(lin.bias[...], bound, near_edge=0.9)
    # torch's own Linear has the same bound (kaiming_uniform(a=sqrt(5)) reduces to 1/sqrt(fan_in))
    torch.manual_seed(0)
    tl = nn.Linear(784, 128)
    assert tl.weight.abs().max().item() <= bound and tl.weight.abs().max().item() > 0.999 * bound
    assert tl.bias.abs().max().item() <= bound


def test_conv_init_is_torch_uniform():
    conv = Conv2d(16, 32, 3, rngs=nnx.Rngs(params=0))
    bound = 1 / math.sqrt(16 * 9)
    check_uniform(conv.weight[...], bound, near_edge=0.995)
    check_uniform(conv.bias[...], bound, near_edge=0.75)
    torch.manual_seed(0)
    tc = nn.Conv2d(16, 32, 3)
    assert tc.weight.abs().max().item() <= bound and tc.weight.abs().max().item() > 0.995 * bound
    assert tc.bias.abs().max().item() <= bound


@pytest.mark.slow
def test_torch_uniform_function():
    values = torch_uniform(jax.random.key(3), (50_000,), fan_in=10)
    assert values.dtype == jnp.float32 and values.shape == (50_000,)
    check_uniform(values, 1 / math.sqrt(10), near_edge=0.999)
    # weight and bias are separate draws
    lin = Linear(4, 4, rngs=nnx.Rngs(params=0))
    assert not np.allclose(np.asarray(lin.weight[...])[0], np.asarray(lin.bias[...]))


# --- Flatten and activations ----------------------------------------------------------------------


def test_flatten_gives_torch_chw_order():
    x_nchw = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    expected = torch.flatten(torch.from_numpy(x_nchw), 1).numpy()
    out = np.asarray(Flatten()(jnp.asarray(nchw_to_nhwc(x_nchw))))
    assert out.shape == (2, 60)
    np.testing.assert_array_equal(out, expected)
    # element by element: feature c*H*W + h*W + w is pixel (h, w) of channel c
    assert out[1, 2 * 20 + 3 * 5 + 4] == x_nchw[1, 2, 3, 4]
    flat = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(np.asarray(Flatten()(jnp.asarray(flat))), flat)


def test_activations():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    xt = torch.from_numpy(x)
    for ours, theirs in ((ReLU(), torch.relu), (Tanh(), torch.tanh), (Sigmoid(), torch.sigmoid)):
        assert_close(ours(jnp.asarray(x)), theirs(xt).numpy(), 1e-6)


# --- models ---------------------------------------------------------------------------------------

HOMEWORK_CNN = presets.CNN


def torch_cnn():
    """The homework's CNN written directly in torch, to compare structure, state_dict and outputs."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 45, 3),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d((4, 4)),
        nn.Flatten(),
        nn.Linear(16 * 45, 128),
        nn.ReLU(),
        nn.Linear(128, 1),
    )


@pytest.fixture(scope="module")
def cnn():
    return build_network("cnn", (1, 28, 28), HOMEWORK_CNN, seed=0)


def test_cnn_layer_order(cnn):
    assert [type(layer) for layer in cnn.layers] == [
        Conv2d,
        ReLU,
        MaxPool2d,
        Conv2d,
        ReLU,
        MaxPool2d,
        Conv2d,
        ReLU,
        AdaptiveMaxPool2d,
        Flatten,
        Linear,
        ReLU,
        Linear,
    ]
    assert len(cnn) == 13
    convs = [cnn[i] for i in (0, 3, 6)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 16, (3, 3), (1, 1)),
        (16, 32, (3, 3), (1, 1)),
        (32, 45, (3, 3), (1, 1)),
    ]
    assert cnn[8].output_size == (4, 4)
    assert [(cnn[i].in_features, cnn[i].out_features) for i in (10, 12)] == [(720, 128), (128, 1)]
    activations = [cnn[i] for i in (1, 4, 7, 11)]
    assert len({id(a) for a in activations}) == 4  # each position its own instance


def test_mlp_layer_order():
    mlp = build_network("mlp", (1, 28, 28), NetworkConfiguration(dense_hiddens=(128, 128, 128)), "SIGMOID")
    assert [type(layer) for layer in mlp.layers] == [
        Flatten,
        Linear,
        Sigmoid,
        Linear,
        Sigmoid,
        Linear,
        Sigmoid,
        Linear,
    ]
    assert [(mlp[i].in_features, mlp[i].out_features) for i in (1, 3, 5, 7)] == [
        (784, 128),
        (128, 128),
        (128, 128),
        (128, 1),
    ]
    assert len({id(mlp[i]) for i in (2, 4, 6)}) == 3


def test_count_parameters(cnn):
    def conv(cin, cout, k):
        return cout * cin * k * k + cout

    def linear(i, o):
        return o * i + o

    by_hand = conv(1, 16, 3) + conv(16, 32, 3) + conv(32, 45, 3) + linear(720, 128) + linear(128, 1)
    assert by_hand == 110222
    assert count_parameters(cnn) == by_hand
    assert count_parameters(cnn) == sum(p.numel() for p in torch_cnn().parameters())
    mlp = build_network("mlp", (1, 28, 28), NetworkConfiguration(dense_hiddens=(128, 128)))
    assert count_parameters(mlp) == linear(784, 128) + linear(128, 128) + linear(128, 1)


def test_state_dict_matches_torch(cnn):
    ours = state_dict(cnn)
    theirs = torch_cnn().state_dict()
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    assert all(v.dtype == np.float32 for v in ours.values())


@pytest.mark.slow
def test_load_torch_weights_gives_torch_outputs():
    model = build_network("cnn", (1, 28, 28), HOMEWORK_CNN, seed=1)
    torch.manual_seed(0)
    reference = torch_cnn()
    load_state_dict(model, reference.state_dict())  # torch tensors accepted as they are
    for key, value in reference.state_dict().items():
        np.testing.assert_array_equal(state_dict(model)[key], value.numpy())
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    out = np.asarray(nnx.jit(lambda m, x: m(x))(model, jnp.asarray(x)))
    assert out.shape == (3, 1)
    assert_close(out, expected, 1e-5)


def test_load_state_dict_wrong_shape_changes_nothing():
    model = build_network("cnn", (1, 28, 28), HOMEWORK_CNN, seed=0)
    before = state_dict(model)
    bad = {k: v + 1 for k, v in before.items()}
    bad["10.weight"] = np.zeros((720, 128), np.float32)  # transposed
    with pytest.raises(
        ValueError,
        match=r"state_dict\['10\.weight'\] has shape \(720, 128\), the "
        r"network expects \(128, 720\)",
    ):
        load_state_dict(model, bad)
    after = state_dict(model)
    for key in before:  # validated before anything is written
        np.testing.assert_array_equal(after[key], before[key])


def test_load_state_dict_missing_or_unexpected_key():
    model = build_network("cnn", (1, 28, 28), HOMEWORK_CNN, seed=0)
    tensors = state_dict(model)
    missing = dict(tensors)
    del missing["6.bias"]
    with pytest.raises(KeyError, match=r"missing \['6\.bias'\], unexpected \[\]"):
        load_state_dict(model, missing)
    extra = dict(tensors, **{"13.weight": np.zeros(1, np.float32)})
    with pytest.raises(KeyError, match=r"missing \[\], unexpected \['13\.weight'\]"):
        load_state_dict(model, extra)
