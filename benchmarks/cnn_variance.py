"""Why the CNN's epoch time varies on 2-core machines of one kind: the same bench workers (a fresh
process each; 60,000 synthetic images, batch 128) idle, with the other core busy, with one XLA
thread, and the facade's train_loop(1) once per epoch; each line a median s/epoch of epochs 2..N.

    python -m benchmarks.cnn_variance --epochs 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from jaxtrainer import bench, presets

ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
FACADE = """
import json, sys, time
import numpy as np
from torch_compat import Trainer
from jaxtrainer import presets
with np.load(sys.argv[1]) as a:
    data = ((a["X_train"], a["y_train"]), (a["X_test"], a["y_test"]))
trainer = Trainer("cnn", presets.CNN, dataset=data, progress=False)
stamps = [time.perf_counter()]
for _ in range(int(sys.argv[2])):  # one epoch per call (its logs included), as a notebook cell runs it
    trainer.train_loop(1)
    stamps.append(time.perf_counter())
print(json.dumps({"runs": [[b - a for a, b in zip(stamps, stamps[1:])]]}))
"""


def seconds(command, env=None) -> float:
    """The median epoch (after the first) of a bench worker run as `command`."""
    report = bench.run_worker(command, " ".join(command), env=env)
    return bench.epoch_times([sum(e) for e in zip(*report["runs"])])["median_epoch_s"]


def main(argv=None) -> int:
    """`python -m benchmarks.cnn_variance`."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.npz")
        (X, y), (Xt, yt) = bench.synthetic(60_000, 2_000)
        np.savez(data, X_train=X, y_train=y, X_test=Xt, y_test=yt)
        jax_cmd = bench._command("jax", "cnn", args.epochs, data)
        torch_cmd = bench._command("torch", "cnn", args.epochs, data)
        one_thread = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {ONE_THREAD}".strip())
        print(f"CNN {presets.CNN}, 60,000 images, median s/epoch of epochs 2..{args.epochs}")

        def row(condition, framework, command, env=None):
            print(f"  {condition:32s} {framework:6s} {seconds(command, env):6.2f}", flush=True)

        row("idle", "jax", jax_cmd)
        row("idle", "torch", torch_cmd)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            row("other core busy", "jax", jax_cmd)
            row("other core busy", "torch", torch_cmd)
            row("other core busy, one XLA thread", "jax", jax_cmd, one_thread)
        finally:
            busy.kill()
        row("one XLA thread", "jax", jax_cmd, one_thread)
        row("the facade's train_loop", "jax", [sys.executable, "-c", FACADE, data, str(args.epochs)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
