"""How long `jaxtrainer grade`'s similarity report takes on N submissions of ~300 lines: the same
correct.py (tests/grade_solutions/) and 21 random helpers of each student's own; timed with correct.py
as the --template (no pair similar) and without (all N(N-1)/2 pairs reported and written).

    python -m benchmarks.similarity_speed --submissions 30
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

from jaxtrainer.grade.similarity import find_similar, write_similarity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTION = os.path.join(ROOT, "tests", "grade_solutions", "correct.py")


def own_code(seed: int) -> str:
    """Seeded functions unlike any other seed's, the code a submission adds to the template."""
    rng = random.Random(seed)
    return "".join(
        f"\n\ndef helper_{seed}_{j}(x, y):\n    z = x * {rng.randint(1, 99)} + y ** {rng.randint(2, 5)}\n"
        f"    if z > {rng.randint(0, 1000)}:\n        return z - {rng.random():.4f}\n    return -z\n"
        for j in range(21)
    )


def main() -> None:
    """`python -m benchmarks.similarity_speed`."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--submissions", type=int, default=30, help="how many (default: 30)")
    args = parser.parse_args()
    with open(SOLUTION) as f:
        shared = f.read()
    with tempfile.TemporaryDirectory() as folder:
        sources = []
        for i in range(args.submissions):
            path = os.path.join(folder, f"student{i:03d}.py")
            with open(path, "w") as f:
                f.write(shared + own_code(i))
            sources.append((f"student{i:03d}", path))
        lines = sum(open(path).read().count("\n") for _, path in sources) / len(sources)
        print(f"{len(sources)} submissions of {lines:.0f} lines on average")
        for template in (SOLUTION, None):
            start = time.perf_counter()
            pairs = find_similar(sources, template=template, threshold=0.5)
            found = time.perf_counter()
            write_similarity(pairs, sources, os.path.join(folder, "out"))
            written = time.perf_counter()
            print(
                f"{'with' if template else 'without'} the template: find_similar {found - start:.2f} s "
                f"({len(pairs)} pairs >= 0.5), write_similarity {written - found:.2f} s"
            )


if __name__ == "__main__":
    main()
