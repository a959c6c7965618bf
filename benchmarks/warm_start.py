"""Warm starts (jaxtrainer/compile_cache.py): `jaxtrainer homework --dataset digits --epochs 3` and,
per homework network, the facade's `Trainer(...).train_loop(1)` on synthetic images, each run in a
fresh interpreter with an empty compilation cache folder (cold), then with what it left (warm). The
table gives each process's wall and CPU time, and for the Trainer rows the in-process seconds.

    python -m benchmarks.warm_start --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from jaxtrainer.bench import host, run_worker, synthetic, write_results
from jaxtrainer.presets import NETWORKS
from jaxtrainer.tables import markdown_table

HOMEWORK = "jaxtrainer homework --dataset digits --epochs 3"


def trainer_child(network: str, n_train: int, n_test: int) -> dict:
    """In the child: build the facade's Trainer and train one epoch; the seconds that took."""
    from torch_compat import Trainer

    dataset = synthetic(n_train, n_test)
    net = NETWORKS[network]
    start = time.perf_counter()
    Trainer(net.network_type, net.net_config, dataset=dataset, progress=False).train_loop(1)
    return {"in_process_s": time.perf_counter() - start}


def timed(command: list, cache: str) -> dict:
    """Run `command` with the compilation cache in `cache`: its wall time, its CPU time (which other
    work on a shared machine changes less) and the JSON line it printed last, if any."""
    env = {**os.environ, "JAXTRAINER_CACHE_DIR": cache}
    env.pop("JAXTRAINER_NO_CACHE", None)
    cpu, start = sum(os.times()[2:4]), time.perf_counter()  # the children's user and system seconds
    report = run_worker(command, " ".join(command), env=env)
    seconds, cpu = time.perf_counter() - start, sum(os.times()[2:4]) - cpu
    return {"process_s": seconds, "cpu_s": cpu, **report}


def measure(name: str, command_for, tmp: str) -> dict:
    """Cold then warm, on a cache folder of this case's own; `command_for(tag)` is the command."""
    cache = os.path.join(tmp, f"cache-{name}")
    cold = timed(command_for("cold"), cache)
    entries = len(os.listdir(cache)) if os.path.isdir(cache) else 0
    warm = timed(command_for("warm"), cache)
    print(
        f"{name}: cold {cold['process_s']:.1f} s, warm {warm['process_s']:.1f} s", file=sys.stderr, flush=True
    )
    return {"name": name, "cold": cold, "warm": warm, "cache_entries": entries}


def markdown(rows: list, meta: dict) -> str:
    """warm_start.md: each command's cold and warm times."""
    header = ("run", "cold s", "warm s", "cold / warm", "cold CPU s", "warm CPU s")
    header += ("cold s, in process", "warm s, in process", "cache files")
    table = []
    for r in rows:
        runs = (r["cold"], r["warm"])
        seconds = [f"{run[key]:.1f}" for key in ("process_s", "cpu_s") for run in runs]
        inner = [f"{run['in_process_s']:.1f}" if "in_process_s" in run else "" for run in runs]
        ratio = f"{runs[0]['process_s'] / runs[1]['process_s']:.1f}x"
        table.append([r["name"], *seconds[:2], ratio, *seconds[2:], *inner, r["cache_entries"]])
    return (
        f"Compilation cache cold (empty folder) vs warm (the folder the cold run left), each run in a "
        f"fresh interpreter; Trainer rows on {meta['n_train']:,} synthetic 1x28x28 images; {meta['machine']}"
        f"\n\n{markdown_table(header, table)}\n"
    )


def main(argv=None) -> int:
    """`python -m benchmarks.warm_start`."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=2_000, help="synthetic images for the Trainer rows")
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--out", default="benchmarks/results", help="folder for warm_start.json and .md")
    p.add_argument("--child", choices=list(NETWORKS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(trainer_child(args.child, args.n_train, args.n_test)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="warm-start-") as tmp:
        homework = [sys.executable, "-m", "jaxtrainer", *HOMEWORK.split()[1:], "--no-progress", "--out"]
        rows.append(measure(HOMEWORK, lambda tag: [*homework, f"{tmp}/{tag}"], tmp))
        for network in NETWORKS:
            child = [sys.executable, "-m", "benchmarks.warm_start", "--child", network]
            sizes = ["--n-train", str(args.n_train), "--n-test", str(args.n_test)]
            rows.append(measure(f"Trainer({network!r}).train_loop(1)", lambda tag: child + sizes, tmp))
    meta = {"n_train": args.n_train, "machine": host()}
    write_results(args.out, "warm_start", {"meta": meta, "rows": rows}, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
