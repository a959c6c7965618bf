"""Several processes (hosts) as one program on JAX's multi-controller runtime: every process runs the
same command and loads (and checks) the same data, a sweep's members are split over all their
devices, and process 0 writes every file. Processes meet by --coordinator/--num-processes/
--process-id (or $JAXTRAINER_*), or SLURM's or Open MPI's detection; docs/cluster.md."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

import jax
import numpy as np
from jax.experimental import multihost_utils

from .errors import InputError

ENV = {name: f"JAXTRAINER_{name.upper()}" for name in ("coordinator", "num_processes", "process_id")}
# A dead process is noticed by the others within this many seconds (JAX's default is 100).
HEARTBEAT_ENV, HEARTBEAT_DEFAULT = "JAXTRAINER_HEARTBEAT_TIMEOUT", 30


def _cluster_detected() -> bool:
    """A launcher JAX detects by itself started several tasks (SLURM's srun, Open MPI's mpirun)."""
    for var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        with contextlib.suppress(ValueError):
            if int(os.environ.get(var, "1")) > 1:
                return True
    return False


def initialize(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """Join the other processes, before any JAX computation; returns whether there are several.
    Arguments default to their environment variables; none and no cluster launcher: one process."""
    coordinator = coordinator or os.environ.get(ENV["coordinator"])
    num_processes = num_processes if num_processes is not None else _int_variable(ENV["num_processes"])
    process_id = process_id if process_id is not None else _int_variable(ENV["process_id"])
    explicit = (coordinator, num_processes, process_id)
    if all(v is None for v in explicit) and not _cluster_detected():
        return False
    if any(v is None for v in explicit) and not all(v is None for v in explicit):
        raise InputError(
            "a multi-process run needs --coordinator HOST:PORT, --num-processes N and --process-id I "
            f"together (got coordinator={coordinator!r}, num_processes={num_processes!r}, "
            f"process_id={process_id!r})"
        )
    if num_processes is not None:
        assert coordinator is not None and process_id is not None
        if num_processes < 1:
            raise InputError(f"--num-processes must be >= 1, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise InputError(
                f"--process-id must be in [0, {num_processes - 1}] for --num-processes "
                f"{num_processes}, got {process_id}"
            )
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise InputError(f"--coordinator must be HOST:PORT (a port in 1..65535), got {coordinator!r}")
    heartbeat = _int_variable(HEARTBEAT_ENV)
    if heartbeat is None:
        heartbeat = HEARTBEAT_DEFAULT
    elif heartbeat < 1:
        raise InputError(f"${HEARTBEAT_ENV} must be a whole number of seconds >= 1, got {heartbeat}")
    if "cpu" in str(jax.config.jax_platforms or "cpu"):  # untyped flag  # pyright: ignore[reportAttributeAccessIssue]
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(coordinator, num_processes, process_id, heartbeat_timeout_seconds=heartbeat)
    return jax.process_count() > 1


def _int_variable(variable: str) -> int | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"${variable} must be an integer, got {value!r}") from None


def process_count() -> int:
    """Processes in this run, 1 unless `initialize` joined several (callers need not import jax)."""
    return jax.process_count()


def is_writer() -> bool:
    """Process 0 writes every file; the others compute their share and check."""
    return jax.process_index() == 0


def broadcast(tree):
    """Process 0's `tree` on every process (the others pass a tree of the same shapes)."""
    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def broadcast_json(value):
    """Process 0's JSON-able `value` on every process (the others pass anything)."""
    data = np.frombuffer(json.dumps(value).encode(), np.uint8) if is_writer() else np.zeros(0, np.uint8)
    size = int(broadcast(np.array([data.size], np.int64))[0])
    data = broadcast(data if is_writer() else np.zeros(size, np.uint8))
    return json.loads(bytes(np.asarray(data, np.uint8)).decode())


# What a collective says when the process at the other end died or stopped answering.
PEER_GONE = ("gloo", "connection", "heartbeat", "unavailable", "coordination", "barrier", "deadline")
# A jitted collective's dispatch raises a broken Gloo connection as a plain ValueError starting with
# XLA's status code ("UNKNOWN: Gloo all-reduce failed: ..."; issue 22 item 10).
XLA_STATUS = ("UNKNOWN:", "INTERNAL:", "UNAVAILABLE:", "DEADLINE_EXCEEDED:", "ABORTED:", "CANCELLED:")


def peer_failed(error: BaseException) -> bool:
    """Whether `error` is a collective broken by another process's death (connection reset, heartbeats
    stopped) in a multi-process run; any other runtime error stays a bug, with its traceback."""
    text = str(error)
    from_xla = isinstance(error, jax.errors.JaxRuntimeError) or (
        isinstance(error, ValueError) and text.startswith(XLA_STATUS)
    )
    return process_count() > 1 and from_xla and any(word in text.lower() for word in PEER_GONE)


def from_writer(value):
    """Process 0's `value` (JSON-able) on every process; itself in a one-process run."""
    return value if process_count() == 1 else broadcast_json(value)


def check_same_data(fingerprint: dict) -> None:
    """Every process must hold the data process 0 holds (each loads its own copy)."""
    if process_count() == 1:
        return
    mine = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    theirs = broadcast_json(mine)
    same = np.asarray(multihost_utils.process_allgather(np.array([mine == theirs]))).reshape(-1)
    bad = [i for i, ok in enumerate(same) if not ok]
    if bad:
        raise InputError(
            f"process(es) {bad} loaded other data than process 0 (data fingerprints differ): every "
            "process must read the same dataset"
        )


def to_host(tree):
    """Every array of `tree` whole, as numpy, on every process (gathered when it spans several)."""
    if process_count() == 1:
        return jax.device_get(tree)
    gather = lambda a: multihost_utils.process_allgather(a, tiled=True)
    return jax.tree.map(lambda a: np.asarray(a if a.is_fully_addressable else gather(a)), tree)
