"""PyTorch reference vs jaxtrainer on the same synthetic data, per-epoch time with logging included.

Each (framework, model) runs in its own subprocess (peak RSS is per process), frameworks alternate,
and the table reports the median epoch after the first (the first one carries compilation) and the
JAX/PyTorch ratio. A sweep row (cnn_sweep3) trains one architecture at several learning rates:
PyTorch runs the reference Trainer once per learning rate, one run after another (what a user
would do), its epoch being the sum of the runs' epochs; jaxtrainer trains all of them as one
compiled program (`jaxtrainer.sweep.fit_sweep`, strategy "auto").

    python -m benchmarks.compare --models mlp cnn --epochs 4 --out benchmarks/results
    jaxtrainer bench --models mlp cnn cnn_sweep3 --epochs 4     (the same, installed)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from benchmarks.output import write_results

MODELS = {
    "mlp": ("mlp", ((16, 32, 48), (3, 3, 3), (1, 1, 1), (128, 128))),
    "cnn": ("cnn", ((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,))),
    "deep_cnn": ("cnn", ((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256))),
    "shallow_cnn": ("cnn", ((9,), (28,), (1,), (256, 256))),
}
# name: (architecture in MODELS, learning rates); the single-model rows train at lr 1e-3.
SWEEPS = {
    "cnn_sweep3": ("cnn", (1e-2, 1e-3, 1e-4)),
}
DESCRIPTIONS = {
    "cnn_sweep3": "CNN (16, 32, 45) + (128,) x 3 learning rates (1e-2, 1e-3, 1e-4), one program",
}
ROWS = (*MODELS, *SWEEPS)


def synthetic(n_train: int, n_test: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_train + n_test, 1, 28, 28)).astype(np.float32)
    y = rng.standard_normal((n_train + n_test, 1)).astype(np.float32)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def run_torch(model: str, epochs: int, dataset) -> list:
    """A sweep row: the reference Trainer once per learning rate, one run after another; epoch i
    is the sum of the runs' epochs i."""
    if model in SWEEPS:
        base, lrs = SWEEPS[model]
        runs = [_torch_epochs(base, lr, epochs, dataset) for lr in lrs]
        return [sum(epoch) for epoch in zip(*runs)]
    return _torch_epochs(model, 1e-3, epochs, dataset)


def _torch_epochs(model: str, lr: float, epochs: int, dataset) -> list:
    """Epoch boundaries of the reference's own train_loop, read at each log_metrics call."""
    from benchmarks import torch_reference as ref

    network_type, fields = MODELS[model]
    trainer = ref.Trainer(
        network_type, ref.NetworkConfiguration(*fields), lr=lr, dataset=dataset, progress=False
    )
    stamps, log = [], trainer.log_metrics

    def timed_log(*args):
        log(*args)
        stamps.append(time.perf_counter())

    trainer.log_metrics = timed_log
    trainer.train_loop(epochs)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def run_jax(model: str, epochs: int, dataset) -> list:
    from jaxtrainer import NetworkConfiguration, build_network, fit, init_state

    if model in SWEEPS:
        from jaxtrainer.sweeps import fit_sweep, init_sweep, members_of

        base, lrs = SWEEPS[model]
        network_type, fields = MODELS[base]
        graphdef, states, _ = init_sweep(
            network_type, (1, 28, 28), NetworkConfiguration(*fields), members_of(lrs, [0])
        )
        stamps = [time.perf_counter()]
        fit_sweep(
            graphdef,
            states,
            *dataset,
            epochs,
            batch_size=128,
            strategy="auto",
            progress=False,
            on_epoch=lambda *_: stamps.append(time.perf_counter()),
        )
        return [b - a for a, b in zip(stamps, stamps[1:])]
    network_type, fields = MODELS[model]
    net = build_network(network_type, (1, 28, 28), NetworkConfiguration(*fields), seed=0)
    graphdef, state = init_state(net, 1e-3)
    stamps = [time.perf_counter()]
    fit(
        graphdef,
        state,
        *dataset,
        epochs,
        batch_size=128,
        progress=False,
        on_epoch=lambda *_: stamps.append(time.perf_counter()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:])]


def worker(framework: str, model: str, epochs: int, n_train: int, n_test: int) -> dict:
    dataset = synthetic(n_train, n_test)
    times = (run_torch if framework == "torch" else run_jax)(model, epochs, dataset)
    device = "cpu"
    if framework == "jax":
        import jax

        device = str(jax.devices()[0].device_kind)
    row = {
        "framework": framework,
        "model": model,
        "epoch_s": times,
        "first_epoch_s": times[0],
        "median_epoch_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": device,
    }
    if model in SWEEPS:
        row["lrs"] = list(SWEEPS[model][1])
        if framework == "jax":
            from jaxtrainer.sweeps import resolve_strategy

            row["strategy"] = resolve_strategy("auto")
    return row


def ratios(rows: list) -> dict:
    """model: jaxtrainer's median epoch / PyTorch's."""
    by = {(r["framework"], r["model"]): r for r in rows}
    return {
        m: by[("jax", m)]["median_epoch_s"] / by[("torch", m)]["median_epoch_s"]
        for f, m in by
        if f == "torch" and ("jax", m) in by
    }


def markdown(rows: list, meta: dict) -> str:
    lines = [
        f"{meta['n_train']:,} synthetic 1x28x28 images, batch 128, {meta['epochs']} epochs "
        f"(median of epochs 2..{meta['epochs']}), logging included; {meta['machine']}",
        "",
        "| model | PyTorch s/epoch | jaxtrainer s/epoch | ratio | PyTorch 1st epoch | "
        "jaxtrainer 1st epoch | PyTorch RSS MB | jaxtrainer RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["framework"], r["model"]): r for r in rows}
    ratio = ratios(rows)
    for model in meta["models"]:
        t, j = by[("torch", model)], by[("jax", model)]
        lines.append(
            f"| {model} | {t['median_epoch_s']:.2f} | {j['median_epoch_s']:.2f} | "
            f"{ratio[model]:.2f}x | {t['first_epoch_s']:.2f} | "
            f"{j['first_epoch_s']:.2f} | {t['peak_rss_mb']:.0f} | {j['peak_rss_mb']:.0f} |"
        )
    notes = [
        f"{model}: {DESCRIPTIONS[model]}. PyTorch: the reference Trainer once per learning "
        "rate, one run after another, its epoch the sum of the runs' epochs; jaxtrainer: the "
        f"members as one compiled program (`fit_sweep`, strategy "
        f"{by[('jax', model)].get('strategy', 'auto')})."
        for model in meta["models"]
        if model in SWEEPS
    ]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def main(argv=None, prog=None) -> int:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=list(ROWS),
        default=["mlp", "cnn"],
        help="rows of the table (default: mlp cnn); cnn_sweep3: " + DESCRIPTIONS["cnn_sweep3"],
    )
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (>= 2; the first is warm-up)")
    p.add_argument("--n-train", type=int, default=60_000, help="synthetic training images")
    p.add_argument("--n-test", type=int, default=2_000, help="synthetic test images")
    p.add_argument("--out", default="benchmarks/results", help="folder for compare.json and compare.md")
    p.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error(f"--epochs must be at least 2 (the first is warm-up), got {args.epochs}")
    if args.worker:
        print(json.dumps(worker(*args.worker, args.epochs, args.n_train, args.n_test)))
        return 0
    if importlib.util.find_spec("torch") is None:
        p.error("the PyTorch side needs torch: pip install 'jaxtrainer[torch]'")
    rows = []
    for i, model in enumerate(args.models):
        for framework in ("torch", "jax") if i % 2 == 0 else ("jax", "torch"):
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.compare",
                "--worker",
                framework,
                model,
                "--epochs",
                str(args.epochs),
                "--n-train",
                str(args.n_train),
                "--n-test",
                str(args.n_test),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(
                    f"{framework} {model}: the worker failed (exit {done.returncode}):\n"
                    f"{done.stderr[-4000:]}",
                    file=sys.stderr,
                )
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{framework:5s} {model:12s} {rows[-1]['median_epoch_s']:.2f} s/epoch", flush=True)
    meta = {
        "models": args.models,
        "epochs": args.epochs,
        "n_train": args.n_train,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"JAX on {rows[-1]['device'] if rows[-1]['framework'] == 'jax' else rows[-2]['device']}",
    }
    write_results(
        args.out, "compare", {"meta": meta, "rows": rows, "ratios": ratios(rows)}, markdown(rows, meta)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
