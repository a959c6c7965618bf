"""THE run folder: `run.json` (the manifest), `checkpoint.npz`, `.jaxtrainer.lock` and the run's
outputs, written only by its owner's `Run`, each file whole (`files.atomic_write`) and never through
a symbolic link; the resume rule is one pure function (`resume.plan`)."""

# The package's interface (and `os`, `fcntl`: tests patch `runs.os.open` and `runs.fcntl.flock`).
import fcntl  # noqa: F401
import os  # noqa: F401

from .checkpoint import load_checkpoint, read_header  # noqa: F401
from .lock import LOCK, Lock, abandon  # noqa: F401
from .manifest import CHECKPOINT, MANIFEST, RunError, plain  # noqa: F401
from .run import Run, check_writable_folder, epochs_on_disk, tracking  # noqa: F401
