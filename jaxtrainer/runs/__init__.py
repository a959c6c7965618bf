"""THE run folder: its layout, its owner, its checkpoint and its one resume rule.

Every command that trains (`train`, `sweep`, `homework`, the labs) and `Trainer(checkpoint_dir=)`
write through a `Run` (`run.py`), the only writer of files in a run folder, which holds:

    run.json           the manifest (`manifest.py`): the run's identity, epochs done, files written
    checkpoint.npz     the training state after the last finished epoch (`checkpoint.py`)
    .jaxtrainer.lock   the owner's lock (`lock.py`)
    <member>/logs.json, logs.csv, figures, report.md ...   the run's outputs

The resume rule is one pure function (`resume.plan`). Every file is written whole or not at all
(`files.atomic_write`) and never through a symbolic link.
"""

# The package's interface (and `os`, `fcntl`: tests patch `runs.os.open` and `runs.fcntl.flock`).
import fcntl  # noqa: F401
import os  # noqa: F401

from .checkpoint import load_checkpoint, read_header  # noqa: F401
from .lock import LOCK, Lock, abandon  # noqa: F401
from .manifest import CHECKPOINT, MANIFEST, RunError, plain, read_json  # noqa: F401
from .run import Run, check_writable_folder, epochs_on_disk, tracking  # noqa: F401
