"""Lab C's question "which is faster: the hand-written backward pass or autograd?", measured.

One MLP (784 -> L hidden ReLU layers of width W -> 10, softmax cross-entropy averaged over the
batch), trained from the same initial θ on the same synthetic data, in the same batch order, with
the same optimizer, by four loops:

  jax_hand        jaxtrainer, an epoch = `train.member_epoch` with `Settings(gradient=handgrad.backprop)`
  jax_autodiff    the same compiled epoch with `gradient=gradient.autodiff` (jax.grad)
  torch_autograd  a plain PyTorch loop: nn.Linear layers, F.cross_entropy, loss.backward()
  torch_hand      PyTorch without autograd: θ matrices with the bias trick and handgrad.py's
                  backward formulas under torch.no_grad (what the lab's students wrote)

The PyTorch loops step with torch.optim.SGD / Adam, the JAX ones with handopt's, so within each
framework only the gradient differs. Every loop also computes its batches' loss and accuracy, as
the engine's step metrics do. Before timing, the four gradients of the first batch are compared
(max |Δ| against jax.grad, in the JSON), so the times compare equal computations.

Epochs run in rounds, one epoch of each variant per round (the order rotating between rounds), in
one process. The table reports each variant's median epoch after the first (the first carries
JAX's compilation and PyTorch's warm-up; reported apart) and its ratio to PyTorch autograd's.

PyTorch runs on all cores by default (--torch-threads). Where other work shares the cores, its
OpenMP threads wait for each other at every operation and small networks slow down many times
(a 1x16 MLP on 2 cores, one busy elsewhere: 40 ms per step with 2 threads, 0.3 ms with 1): time
on a quiet machine.

    python -m benchmarks.backprop_speed --optimizer sgd --out benchmarks/results
    python -m benchmarks.backprop_speed --configs 1x25 3x500 --epochs 5 --optimizer adam
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np

from jaxtrainer.bench import epoch_times, host, write_results
from jaxtrainer.tables import markdown_table

VARIANTS = ("jax_hand", "jax_autodiff", "torch_autograd", "torch_hand")
BASELINE = "torch_autograd"
GRAD_REFERENCE = "jax_autodiff"
LABELS = {
    "jax_hand": "JAX hand",
    "jax_autodiff": "JAX jax.grad",
    "torch_autograd": "PyTorch autograd",
    "torch_hand": "PyTorch hand",
}
N_IN, N_CLASSES = 784, 10
LR = 0.01
DEFAULT_CONFIGS = ("1x100", "3x300", "5x1000")


def parse_config(text: str):
    """ "3x300" -> (3, 300): depth (hidden layers) and width."""
    depth, sep, width = text.partition("x")
    if not (sep and depth.isdigit() and width.isdigit() and int(depth) >= 1 and int(width) >= 1):
        raise argparse.ArgumentTypeError(f"a config is DEPTHxWIDTH with both >= 1 (e.g. 3x300), got {text!r}")
    return int(depth), int(width)


def synthetic(n: int, seed: int = 0):
    """Ten class prototypes in [0, 1]^784 plus Gaussian noise, clipped to [0, 1]: learnable, so the
    variants' training losses can be compared as well as their times."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 1, (N_CLASSES, N_IN)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n)
    X = prototypes[y] + 0.3 * rng.standard_normal((n, N_IN), dtype=np.float32)
    return np.clip(X, 0, 1, out=X), y


# -- JAX: the engine's compiled epoch, the gradient plugged in ------------------------------------


def jax_epoch(model, gradient, optimizer: str, X, y, batch_size: int):
    """A function that trains one more epoch and returns its per-step (losses, accuracies)."""
    import jax

    from jaxtrainer import train
    from jaxtrainer.labs import handopt
    from jaxtrainer.settings import Settings
    from jaxtrainer.tasks import Classification

    factory = handopt.by_name(optimizer)
    settings = Settings(
        batch_size=batch_size, task=Classification(N_CLASSES), optimizer=factory, gradient=gradient
    )
    graphdef, state = train.init_state(model, LR, settings)
    compiled_epoch = jax.jit(train.member_epoch, static_argnames=("graphdef", "settings"))

    def epoch():
        nonlocal state
        state, steps, _ = compiled_epoch(graphdef, state, (X, y, None, ()), settings)
        jax.block_until_ready(state)
        return np.asarray(steps["loss"]), np.asarray(steps["accuracy"])

    return epoch


# -- PyTorch: what a student writes, with autograd and by hand ------------------------------------


def torch_mlp(thetas):
    """nn.Linear layers (ReLU between) holding the θ's: weight θ[:, :-1], bias θ[:, -1]."""
    import torch

    layers = []
    for theta in thetas:
        linear = torch.nn.Linear(theta.shape[1] - 1, theta.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(theta[:, :-1]))
            linear.bias.copy_(torch.tensor(theta[:, -1]))
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def torch_autograd_step(model, x, y):
    """The batch's mean cross-entropy backpropagated into the modules' .grad; (loss, accuracy)."""
    import torch.nn.functional as F

    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), (logits.argmax(1) == y).float().mean()


def torch_hand_backward(thetas, x, y):
    """handgrad.py's formulas in PyTorch: (∂L/∂θ per layer, mean loss, accuracy) of a batch,
    δ_L = (p̂ − Y)/B, ∂θ_l = δ_lᵀ x̃_{l-1}, δ_{l-1} = (δ_l θ_l[:, :-1]) ⊙ 1[z_{l-1} > 0]."""
    import torch
    import torch.nn.functional as F

    inputs, zs, h = [], [], x
    for layer, theta in enumerate(thetas):
        inputs.append(torch.cat([h, torch.ones(h.shape[0], 1)], dim=1))
        zs.append(inputs[-1] @ theta.T)
        h = zs[-1] if layer == len(thetas) - 1 else torch.relu(zs[-1])
    log_p = torch.log_softmax(h, dim=1)
    one_hot = F.one_hot(y, N_CLASSES).to(h.dtype)
    delta = (log_p.exp() - one_hot) / x.shape[0]
    grads = []
    for layer in reversed(range(len(thetas))):
        grads.append(delta.T @ inputs[layer])
        if layer:
            delta = (delta @ thetas[layer][:, :-1]) * (zs[layer - 1] > 0)
    loss = -(log_p * one_hot).sum(dim=1).mean()
    return grads[::-1], loss, (h.argmax(1) == y).float().mean()


def torch_optimizer(name: str, params):
    """torch's optimizer `name` ("sgd", "adam") at the benchmark's learning rate."""
    import torch

    return {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name](params, lr=LR)


def torch_epoch(thetas, by_hand: bool, optimizer: str, X, y, batch_size: int):
    """A function that trains one more epoch over consecutive slices and returns its per-step
    (losses, accuracies)."""
    import torch

    if by_hand:
        params = [torch.nn.Parameter(torch.tensor(theta)) for theta in thetas]
    else:
        model = torch_mlp(thetas)
        params = list(model.parameters())
    opt = torch_optimizer(optimizer, params)

    def step(xb, yb):
        if not by_hand:
            opt.zero_grad()
            return torch_autograd_step(model, xb, yb)
        with torch.no_grad():
            grads, loss, accuracy = torch_hand_backward(params, xb, yb)
        for theta, grad in zip(params, grads):
            theta.grad = grad
        return loss, accuracy

    def epoch():
        losses, accuracies = [], []
        for start in range(0, X.shape[0], batch_size):
            loss, accuracy = step(X[start : start + batch_size], y[start : start + batch_size])
            opt.step()
            losses.append(loss.item())
            accuracies.append(accuracy.item())
        return np.array(losses), np.array(accuracies)

    return epoch


# -- the check that the four compute the same gradient --------------------------------------------


def gradient_differences(model, x, y) -> dict:
    """Max |∂θ − jax.grad's ∂θ| over all layers, per other variant, on one batch from the initial
    θ (float32); `grad_max_abs` is jax.grad's largest entry, the scale to read them against."""
    import jax
    import torch
    from flax import nnx

    from jaxtrainer import train
    from jaxtrainer.gradient import autodiff
    from jaxtrainer.labs import handgrad
    from jaxtrainer.tasks import Classification

    task = Classification(N_CLASSES)
    graphdef, params = nnx.split(model, nnx.Param)
    xj, yj = train.to_device(x, y, task)
    reference = [np.asarray(g) for g in jax.tree.leaves(autodiff(graphdef, params, xj, yj, task)[0])]
    thetas = [np.asarray(t) for t in jax.tree.leaves(params)]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mlp = torch_mlp(thetas)
    torch_autograd_step(mlp, xt, yt)
    linears = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        hand_torch = torch_hand_backward([torch.tensor(t) for t in thetas], xt, yt)[0]
    grads = {
        "jax_hand": [
            np.asarray(g) for g in jax.tree.leaves(handgrad.backprop(graphdef, params, xj, yj, task)[0])
        ],
        "torch_autograd": [torch.cat([m.weight.grad, m.bias.grad[:, None]], dim=1).numpy() for m in linears],
        "torch_hand": [g.numpy() for g in hand_torch],
    }
    diffs = {
        name: max(float(np.max(np.abs(g - r))) for g, r in zip(gs, reference)) for name, gs in grads.items()
    }
    return {**diffs, "grad_max_abs": max(float(np.max(np.abs(r))) for r in reference)}


# -- the benchmark ---------------------------------------------------------------------------------


def run_config(depth: int, width: int, X, y, *, epochs: int, batch_size: int, optimizer: str) -> dict:
    """A table row: the gradient check, then `epochs` rounds of one epoch per variant, each
    variant's last-epoch training loss and accuracy kept to show that they trained alike."""
    import jax
    import torch
    from flax import nnx

    from jaxtrainer import train
    from jaxtrainer.gradient import autodiff
    from jaxtrainer.labs import handgrad
    from jaxtrainer.tasks import Classification

    model = handgrad.SoftmaxMLP(N_IN, [width] * depth, N_CLASSES, init="glorot", seed=0)
    thetas = [np.asarray(t) for t in jax.tree.leaves(nnx.split(model, nnx.Param)[1])]
    grad_diff = gradient_differences(model, X[:batch_size], y[:batch_size])
    Xj, yj = train.to_device(X, y, Classification(N_CLASSES))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    epoch_of = {
        "jax_hand": jax_epoch(model, handgrad.backprop, optimizer, Xj, yj, batch_size),
        "jax_autodiff": jax_epoch(model, autodiff, optimizer, Xj, yj, batch_size),
        "torch_autograd": torch_epoch(thetas, False, optimizer, Xt, yt, batch_size),
        "torch_hand": torch_epoch(thetas, True, optimizer, Xt, yt, batch_size),
    }
    times = {name: [] for name in VARIANTS}
    last = {}
    for round_ in range(epochs):
        shift = round_ % len(VARIANTS)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            start = time.perf_counter()
            losses, accuracies = epoch_of[name]()
            times[name].append(time.perf_counter() - start)
            last[name] = {"loss": float(np.mean(losses)), "accuracy": float(np.mean(accuracies))}
    variants = {name: {**epoch_times(times[name]), "last_epoch_train": last[name]} for name in VARIANTS}
    baseline = variants[BASELINE]["median_epoch_s"]
    return {
        "config": f"{depth}x{width}",
        "depth": depth,
        "width": width,
        "parameters": int(sum(t.size for t in thetas)),
        "variants": variants,
        "ratios": {
            name: variants[name]["median_epoch_s"] / baseline for name in VARIANTS if name != BASELINE
        },
        "grad_max_abs_diff_vs_jax_grad": grad_diff,
    }


def machine() -> str:
    """The processor, cores, JAX and PyTorch versions and devices, for the table's header."""
    import jax
    import torch

    return (
        f"{host()}; JAX {jax.__version__} on {jax.devices()[0].device_kind}; PyTorch {torch.__version__} "
        f"({torch.get_num_threads()} torch threads)"
    )


def markdown(rows: list, meta: dict) -> str:
    """backprop_speed.md: seconds per epoch and ratios, then first epochs and gradient gaps."""
    others = [name for name in VARIANTS if name != BASELINE]
    checked = [name for name in VARIANTS if name != GRAD_REFERENCE]
    lines = [
        f"{meta['n_train']:,} synthetic 784-pixel examples, 10 classes, batch "
        f"{meta['batch_size']}, {meta['optimizer']} lr {LR}, {meta['epochs']} epochs "
        f"(median of epochs 2..{meta['epochs']}); {meta['machine']}",
        "",
        "Seconds per epoch, and the ratio to PyTorch autograd's (below 1: faster):",
        "",
    ]
    header = [
        "config",
        "parameters",
        *(f"{LABELS[n]} s" for n in VARIANTS),
        *(f"{LABELS[n]} ratio" for n in others),
    ]
    table = [
        [
            row["config"],
            f"{row['parameters']:,}",
            *(f"{row['variants'][n]['median_epoch_s']:.3f}" for n in VARIANTS),
            *(f"{row['ratios'][n]:.2f}x" for n in others),
        ]
        for row in rows
    ]
    lines += [markdown_table(header, table), ""]
    lines.append(
        "First epoch (JAX's includes compilation), seconds; max |Δ∂θ| against jax.grad "
        "on the first batch, float32:"
    )
    header = ["config", *(f"{LABELS[n]} 1st s" for n in VARIANTS), *(f"{LABELS[n]} Δ" for n in checked)]
    table = [
        [
            row["config"],
            *(f"{row['variants'][n]['first_epoch_s']:.3f}" for n in VARIANTS),
            *(f"{row['grad_max_abs_diff_vs_jax_grad'][n]:.1e}" for n in checked),
            f"{row['grad_max_abs_diff_vs_jax_grad']['grad_max_abs']:.1e}",
        ]
        for row in rows
    ]
    lines += ["", markdown_table([*header, "max abs ∂θ"], table)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """`python -m benchmarks.backprop_speed`."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--configs",
        nargs="+",
        type=parse_config,
        default=[parse_config(c) for c in DEFAULT_CONFIGS],
        metavar="DEPTHxWIDTH",
        help="hidden layers x width (default: 1x100 3x300 5x1000)",
    )
    p.add_argument("--epochs", type=int, default=3, help="epochs per variant (>= 2; the first is warm-up)")
    p.add_argument("--n-train", type=int, default=54_000, help="synthetic training examples")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=os.cpu_count(),
        help="torch.set_num_threads (default: all cores, os.cpu_count())",
    )
    p.add_argument(
        "--out", default="benchmarks/results", help="folder for backprop_speed.json and backprop_speed.md"
    )
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error(f"--epochs must be at least 2 (the first is warm-up), got {args.epochs}")
    if min(args.n_train, args.batch_size, args.torch_threads) < 1:
        p.error("--n-train, --batch-size and --torch-threads must be positive")
    if importlib.util.find_spec("torch") is None:
        p.error("the PyTorch variants need torch: pip install 'jaxtrainer[torch]'")
    import torch

    torch.set_num_threads(args.torch_threads)
    X, y = synthetic(args.n_train)
    rows = []
    for depth, width in args.configs:
        rows.append(
            run_config(
                depth, width, X, y, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer
            )
        )
        v = rows[-1]["variants"]
        print(
            f"{rows[-1]['config']:>8s} "
            + "  ".join(f"{name} {v[name]['median_epoch_s']:.3f}s" for name in VARIANTS),
            flush=True,
        )
    meta = {
        "configs": [row["config"] for row in rows],
        "epochs": args.epochs,
        "n_train": args.n_train,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": LR,
        "baseline": BASELINE,
        "machine": machine(),
    }
    write_results(args.out, "backprop_speed", {"meta": meta, "rows": rows}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
