"""The whole homework (experiments 1-4) on a SYNTHETIC set the size of rotated Fashion-MNIST (random
pixels and targets: nothing to learn), for its wall time only.

    python -m benchmarks.homework_synthetic --epochs 50 --out runs/homework_synthetic60k
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    """`python -m benchmarks.homework_synthetic`."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--n-train", type=int, default=60_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--out", default="runs/homework_synthetic60k")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from jaxtrainer.bench import synthetic
    from jaxtrainer.data import Dataset
    from jaxtrainer.experiments.homework import run_homework
    from jaxtrainer.spec import Spec

    (X, y), (Xt, yt) = synthetic(args.n_train, args.n_test)
    ds = Dataset(f"SYNTHETIC random data, {args.n_train:,} images", X, y, Xt, yt)
    start = time.perf_counter()
    result = run_homework(Spec(dataset=ds, epochs=args.epochs), args.out, progress=not args.no_progress)
    print(
        f"homework on {ds.name}, {args.epochs} epochs: {time.perf_counter() - start:.1f} s; "
        f"report in {result['paths']['report']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
