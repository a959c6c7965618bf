"""XLA:CPU flags that make the engine faster, set only when this jaxlib knows them.

An unknown flag in XLA_FLAGS aborts the process, so each flag is looked up in jaxlib's own binary
before it is added (values are stored there as upper-case enum names). Must run before JAX
initialises its backend (its first computation).
"""

from __future__ import annotations

import glob
import mmap
import os

# Routes convolutions away from YNNPACK's dot path, ~20 % slower than the default emitter for the
# homework's shapes: 6.3 -> 5.1 s per CNN epoch on the 2-core machine (shared/NOTES_PERFORMANCE.md).
CPU_FLAGS = {"xla_cpu_experimental_ynn_fusion_type": "individual_convolution"}


def _jaxlib_knows(names) -> bool:
    import importlib.util

    spec = importlib.util.find_spec("jaxlib")
    if spec is None or spec.origin is None:
        return False
    libs = glob.glob(os.path.join(os.path.dirname(spec.origin), "libjax_common*.so"))
    for lib in libs:
        with open(lib, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if all(m.find(n.encode()) >= 0 for n in names):
                return True
    return False


def configure() -> None:
    """Add CPU_FLAGS to XLA_FLAGS unless the user set them or JAXTRAINER_XLA_FLAGS=0."""
    if os.environ.get("JAXTRAINER_XLA_FLAGS", "1") == "0":
        return
    current = os.environ.get("XLA_FLAGS", "")
    wanted = {k: v for k, v in CPU_FLAGS.items() if f"--{k}" not in current}
    if not wanted or not _jaxlib_knows([*wanted, *(v.upper() for v in wanted.values())]):
        return
    extra = " ".join(f"--{k}={v}" for k, v in wanted.items())
    os.environ["XLA_FLAGS"] = f"{current} {extra}".strip()
