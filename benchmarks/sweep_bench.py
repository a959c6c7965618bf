"""Sweeps on this machine: one run's epoch against K runs' epoch by `vmap` and by `lax.map`, on
synthetic 1x28x28 data, batch 128, Adam, MSE, logging included; each timing is the median epoch
after the first (which compiles).

    python -m benchmarks.sweep_bench --network mlp cnn --k 3 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import time

from jaxtrainer.bench import epoch_times, host, synthetic, write_results
from jaxtrainer.presets import NETWORKS
from jaxtrainer.tables import markdown_table


def measure(model: str, k: int, epochs: int, n_train: int, n_test: int, strategies) -> dict:
    """Epochs of the solo run and of each strategy's sweep, interleaved round by round, so that a
    change in the machine's load (it is shared) falls on all of them alike."""
    import jax

    from jaxtrainer.settings import Settings
    from jaxtrainer.spec import Spec
    from jaxtrainer.sweeps import init_sweep, sweep_epoch
    from jaxtrainer.train import to_device

    network, cfg, _ = NETWORKS[model]
    (X, y), test = synthetic(n_train, n_test)
    X, y = to_device(X, y)
    evals = ((X[:2000], y[:2000]), to_device(*test))
    spec = Spec(network, cfg, members=((1e-3, 0),))
    graphdef, solo, _ = init_sweep(spec, (1, 28, 28))  # one run: a sweep of one
    states = {"solo": solo}
    members = [(lr, 0) for lr in (1e-2, 1e-4, 1e-8, 1e-3, 3e-3, 3e-4, 1e-5, 1e-6)[:k]]
    for strategy in strategies:
        states[strategy] = init_sweep(spec.replace(members=members), (1, 28, 28))[1]

    def epoch(key):
        settings = Settings(batch_size=128, strategy="map" if key == "solo" else key)
        states[key], _, out = sweep_epoch(graphdef, states[key], (X, y, None, evals), settings)
        return out

    row = {"model": model, "k": k, **{key: [] for key in states}}
    for _ in range(epochs):
        for key in states:
            start = time.perf_counter()
            jax.block_until_ready(epoch(key))
            row[key].append(time.perf_counter() - start)
    row["median"] = {key: epoch_times(row[key])["median_epoch_s"] for key in states}
    row["backend"] = jax.default_backend()
    return row


def markdown(rows: list, meta: dict) -> str:
    """sweep.md: one run's epoch against each strategy's sweep of K."""
    strategies = [s for s in ("vmap", "map") if s in rows[0]["median"]]
    header = ["model", "one run s/epoch"]
    for s in strategies:
        header += [f"K={rows[0]['k']} {s} s/epoch", f"{s} / one run"]
    table = []
    for r in rows:
        m = r["median"]
        table.append([r["model"], f"{m['solo']:.2f}"])
        for s in strategies:
            table[-1] += [f"{m[s]:.2f}", f"{m[s] / m['solo']:.2f}x"]
    return (
        f"{meta['n_train']:,} synthetic 1x28x28 images, batch 128, {meta['epochs']} epochs "
        f"(median of epochs 2..{meta['epochs']}, the three interleaved), logging included; "
        f"{meta['machine']}, JAX on {rows[0]['backend']}\n\n{markdown_table(header, table)}\n"
    )


def main(argv=None) -> int:
    """`python -m benchmarks.sweep_bench`."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", nargs="+", choices=tuple(NETWORKS), default=["mlp", "cnn"])
    p.add_argument("--k", type=int, default=3, help="members per sweep")
    p.add_argument("--strategies", nargs="+", choices=("vmap", "map"), default=["vmap", "map"])
    p.add_argument("--epochs", type=int, default=3, help="epochs per timing (>= 2)")
    p.add_argument("--n-train", type=int, default=60_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    rows = []
    for model in args.network:
        rows.append(measure(model, args.k, args.epochs, args.n_train, args.n_test, args.strategies))
        print(json.dumps(rows[-1]), flush=True)
    meta = {"n_train": args.n_train, "epochs": args.epochs, "machine": host()}
    write_results(args.out, "sweep", {"meta": meta, "rows": rows}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
