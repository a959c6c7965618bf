"""PyTorch reference vs jaxtrainer on the same synthetic data, per-epoch time with logging included.

Each (framework, model) runs in its own subprocess (peak RSS is per process), frameworks alternate,
and the table reports the median epoch after the first (the first one carries compilation) and the
JAX/PyTorch ratio.

    python -m benchmarks.compare --models mlp cnn --epochs 4 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

MODELS = {
    "mlp": ("mlp", ((16, 32, 48), (3, 3, 3), (1, 1, 1), (128, 128))),
    "cnn": ("cnn", ((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,))),
    "deep_cnn": ("cnn", ((8, 16, 32, 64), (1, 1, 1, 1), (1, 1, 1, 1), (256, 256))),
    "shallow_cnn": ("cnn", ((9,), (28,), (1,), (256, 256))),
}


def synthetic(n_train: int, n_test: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_train + n_test, 1, 28, 28)).astype(np.float32)
    y = rng.standard_normal((n_train + n_test, 1)).astype(np.float32)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])


def run_torch(model: str, epochs: int, dataset) -> list:
    """Epoch boundaries of the reference's own train_loop, read at each log_metrics call."""
    from benchmarks import torch_reference as ref

    network_type, fields = MODELS[model]
    trainer = ref.Trainer(network_type, ref.NetworkConfiguration(*fields), dataset=dataset,
                          progress=False)
    stamps, log = [], trainer.log_metrics

    def timed_log(*args):
        log(*args)
        stamps.append(time.perf_counter())

    trainer.log_metrics = timed_log
    trainer.train_loop(epochs)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def run_jax(model: str, epochs: int, dataset) -> list:
    from jaxtrainer import NetworkConfiguration, build_network, fit, init_state

    network_type, fields = MODELS[model]
    net = build_network(network_type, (1, 28, 28), NetworkConfiguration(*fields), seed=0)
    graphdef, state = init_state(net, 1e-3)
    stamps = [time.perf_counter()]
    fit(graphdef, state, *dataset, epochs, batch_size=128, progress=False,
        on_epoch=lambda *_: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def worker(framework: str, model: str, epochs: int, n_train: int, n_test: int) -> dict:
    dataset = synthetic(n_train, n_test)
    times = (run_torch if framework == "torch" else run_jax)(model, epochs, dataset)
    device = "cpu"
    if framework == "jax":
        import jax

        device = str(jax.devices()[0].device_kind)
    return {"framework": framework, "model": model, "epoch_s": times, "first_epoch_s": times[0],
            "median_epoch_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "device": device}


def markdown(rows: list, meta: dict) -> str:
    lines = [f"{meta['n_train']:,} synthetic 1x28x28 images, batch 128, {meta['epochs']} epochs "
             f"(median of epochs 2..{meta['epochs']}), logging included; {meta['machine']}", "",
             "| model | PyTorch s/epoch | jaxtrainer s/epoch | ratio | PyTorch 1st epoch | "
             "jaxtrainer 1st epoch | PyTorch RSS MB | jaxtrainer RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    by = {(r["framework"], r["model"]): r for r in rows}
    for model in meta["models"]:
        t, j = by[("torch", model)], by[("jax", model)]
        lines.append(f"| {model} | {t['median_epoch_s']:.2f} | {j['median_epoch_s']:.2f} | "
                     f"{j['median_epoch_s'] / t['median_epoch_s']:.2f}x | {t['first_epoch_s']:.2f} | "
                     f"{j['first_epoch_s']:.2f} | {t['peak_rss_mb']:.0f} | {j['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=4, help="epochs per run (>= 2; the first is warm-up)")
    p.add_argument("--n-train", type=int, default=60_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.epochs, args.n_train, args.n_test)))
        return 0
    rows = []
    for i, model in enumerate(args.models):
        for framework in (("torch", "jax") if i % 2 == 0 else ("jax", "torch")):
            cmd = [sys.executable, "-m", "benchmarks.compare", "--worker", framework, model,
                   "--epochs", str(args.epochs), "--n-train", str(args.n_train),
                   "--n-test", str(args.n_test)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(f"{framework:5s} {model:12s} {rows[-1]['median_epoch_s']:.2f} s/epoch", flush=True)
    meta = {"models": args.models, "epochs": args.epochs, "n_train": args.n_train,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                       f"JAX on {rows[-1]['device'] if rows[-1]['framework'] == 'jax' else rows[-2]['device']}"}
    os.makedirs(args.out, exist_ok=True)
    table = markdown(rows, meta)
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
