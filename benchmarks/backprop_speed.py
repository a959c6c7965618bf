"""Lab C's question "which is faster: the hand-written backward pass or autograd?", measured: one MLP
(784 -> L hidden ReLU layers of width W -> 10, mean cross-entropy) trained from the same θ, data and
batch order by jax_hand (the engine's epoch with `handgrad.backprop`), jax_autodiff (jax.grad),
torch_autograd (nn.Linear, loss.backward()) and torch_hand (handgrad.py's formulas in PyTorch), after
checking that their first gradients agree. Epochs run in rounds, one per variant (order rotating);
the table gives each median epoch after the first and its ratio to PyTorch autograd's. PyTorch uses
all cores (--torch-threads): on a busy machine its threads wait for each other, so time a quiet one.

    python -m benchmarks.backprop_speed --optimizer sgd --out benchmarks/results
    python -m benchmarks.backprop_speed --configs 1x25 3x500 --epochs 5 --optimizer adam
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import jax
import numpy as np
from flax import nnx

from jaxtrainer import train
from jaxtrainer.bench import epoch_times, host, write_results
from jaxtrainer.gradient import autodiff
from jaxtrainer.labs import handgrad, handopt
from jaxtrainer.settings import Settings
from jaxtrainer.tables import markdown_table
from jaxtrainer.tasks import Classification

VARIANTS = ("jax_hand", "jax_autodiff", "torch_autograd", "torch_hand")
BASELINE = "torch_autograd"
GRAD_REFERENCE = "jax_autodiff"
LABELS: dict[str, str] = dict(zip(VARIANTS, ("JAX hand", "JAX jax.grad", "PyTorch autograd", "PyTorch hand")))
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
    """Ten class prototypes in [0, 1]^784 plus Gaussian noise, clipped: learnable, so the variants'
    losses can be compared too."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 1, (N_CLASSES, N_IN)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n)
    X = prototypes[y] + 0.3 * rng.standard_normal((n, N_IN), dtype=np.float32)
    return np.clip(X, 0, 1, out=X), y


def jax_epoch(model, gradient, optimizer: str, X, y, batch_size: int):
    """A function that trains one more epoch (the engine's, `gradient` plugged in) and returns its
    per-step (losses, accuracies)."""
    settings = Settings(
        batch_size=batch_size,
        task=Classification(N_CLASSES),
        optimizer=handopt.by_name(optimizer),
        gradient=gradient,
    )
    graphdef, state = train.init_state(model, LR, settings)
    compiled_epoch = jax.jit(train.member_epoch, static_argnames=("graphdef", "settings"))

    def epoch():
        nonlocal state
        state, steps, _ = compiled_epoch(graphdef, state, (X, y, None, ()), settings)
        jax.block_until_ready(state)
        return np.asarray(steps["loss"]), np.asarray(steps["accuracy"])

    return epoch


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


def torch_epoch(thetas, by_hand: bool, optimizer: str, X, y, batch_size: int):
    """A function that trains one more epoch over consecutive slices with torch.optim's `optimizer`
    and returns its per-step (losses, accuracies)."""
    import torch

    if by_hand:
        params = [torch.nn.Parameter(torch.tensor(theta)) for theta in thetas]
    else:
        model = torch_mlp(thetas)
        params = list(model.parameters())
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer](params, lr=LR)

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
        steps = []
        for start in range(0, X.shape[0], batch_size):
            loss, accuracy = step(X[start : start + batch_size], y[start : start + batch_size])
            opt.step()
            steps.append((loss.item(), accuracy.item()))
        return np.array(steps).T

    return epoch


def gradient_differences(model, x, y) -> dict:
    """Max |∂θ − jax.grad's ∂θ| over all layers, per other variant, on one batch from the initial
    θ; `grad_max_abs` is jax.grad's largest entry, the scale to read them against."""
    import torch

    task = Classification(N_CLASSES)
    graphdef, params = nnx.split(model, nnx.Param)
    xj, yj = train.to_device(x, y, task)

    def jax_grads(gradient):
        return [np.asarray(g) for g in jax.tree.leaves(gradient(graphdef, params, xj, yj, task)[0])]

    reference = jax_grads(autodiff)
    thetas = [np.asarray(t) for t in jax.tree.leaves(params)]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mlp = torch_mlp(thetas)
    torch_autograd_step(mlp, xt, yt)
    with torch.no_grad():
        hand_torch = torch_hand_backward([torch.tensor(t) for t in thetas], xt, yt)[0]
    by_autograd = [np.asarray(p.grad) for p in mlp.parameters()]  # each Linear's weight, then bias
    grads = {
        "jax_hand": jax_grads(handgrad.backprop),
        "torch_autograd": [np.column_stack(wb) for wb in zip(by_autograd[::2], by_autograd[1::2])],
        "torch_hand": [g.numpy() for g in hand_torch],
    }
    diffs = {
        name: max(float(np.max(np.abs(g - r))) for g, r in zip(gs, reference)) for name, gs in grads.items()
    }
    return {**diffs, "grad_max_abs": max(float(np.max(np.abs(r))) for r in reference)}


def run_config(depth: int, width: int, X, y, *, epochs: int, batch_size: int, optimizer: str) -> dict:
    """A table row: the gradient check, then `epochs` rounds of one epoch per variant, each
    variant's last-epoch training loss and accuracy kept to show that they trained alike."""
    import torch

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


def markdown(rows: list, meta: dict) -> str:
    """backprop_speed.md: seconds per epoch and ratios, then first epochs and gradient gaps."""
    others = [name for name in VARIANTS if name != BASELINE]
    checked = [name for name in VARIANTS if name != GRAD_REFERENCE]
    times, firsts = [], []
    for row in rows:
        seconds = [f"{row['variants'][n]['median_epoch_s']:.3f}" for n in VARIANTS]
        ratios = [f"{row['ratios'][n]:.2f}x" for n in others]
        times.append([row["config"], f"{row['parameters']:,}", *seconds, *ratios])
        first = [f"{row['variants'][n]['first_epoch_s']:.3f}" for n in VARIANTS]
        gaps = [f"{row['grad_max_abs_diff_vs_jax_grad'][n]:.1e}" for n in [*checked, "grad_max_abs"]]
        firsts.append([row["config"], *first, *gaps])
    header = ["config", "parameters", *(f"{LABELS[n]} s" for n in VARIANTS)]
    times = markdown_table([*header, *(f"{LABELS[n]} ratio" for n in others)], times)
    header = ["config", *(f"{LABELS[n]} 1st s" for n in VARIANTS), *(f"{LABELS[n]} Δ" for n in checked)]
    firsts = markdown_table([*header, "max abs ∂θ"], firsts)
    return (
        f"{meta['n_train']:,} synthetic 784-pixel examples, 10 classes, batch {meta['batch_size']}, "
        f"{meta['optimizer']} lr {LR}, {meta['epochs']} epochs (median of epochs 2..{meta['epochs']}); "
        f"{meta['machine']}\n\nSeconds per epoch, and the ratio to PyTorch autograd's (below 1: faster):"
        f"\n\n{times}\n\nFirst epoch (JAX's includes compilation), seconds; max |Δ∂θ| against jax.grad "
        f"on the first batch, float32:\n\n{firsts}\n"
    )


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
        row = run_config(
            depth, width, X, y, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer
        )
        rows.append(row)
        medians = "  ".join(f"{name} {row['variants'][name]['median_epoch_s']:.3f}s" for name in VARIANTS)
        print(f"{row['config']:>8s} {medians}", flush=True)
    meta = {
        "configs": [row["config"] for row in rows],
        "epochs": args.epochs,
        "n_train": args.n_train,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": LR,
        "baseline": BASELINE,
        "machine": f"{host()}; JAX {jax.__version__} on {jax.devices()[0].device_kind}; PyTorch "
        f"{torch.__version__} ({torch.get_num_threads()} torch threads)",
    }
    write_results(args.out, "backprop_speed", {"meta": meta, "rows": rows}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
