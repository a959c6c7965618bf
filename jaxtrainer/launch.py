"""Start N copies of a `jaxtrainer` command on this machine as one multi-process run: for trying the
multi-process path and for tests (clusters use their own launchers: docs/cluster.md). Process 0's
output is shown as is, the others' prefixed with their rank; when one copy fails, the others stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Sequence

from .distributed import ENV

DEVICES_FLAG = "--xla_force_host_platform_device_count"


def free_port() -> int:
    """A port on 127.0.0.1 free now, for the coordinator; not reserved: another process may take it first."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(stream, prefix: str, out) -> None:
    for line in stream:
        out.write(prefix + line)
        out.flush()


def launch(command: Sequence[str], processes: int, devices: int = 1, grace: float = 60.0) -> int:
    """Run `jaxtrainer COMMAND...` as `processes` processes of `devices` CPU devices each, joined by
    a coordinator on 127.0.0.1; returns the first non-zero exit status, or 0."""
    port = free_port()
    procs: List[subprocess.Popen] = []
    pumps = []
    for rank in range(processes):
        env = {
            **os.environ,
            ENV["coordinator"]: f"127.0.0.1:{port}",
            ENV["num_processes"]: str(processes),
            ENV["process_id"]: str(rank),
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {DEVICES_FLAG}={devices}".strip(),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "jaxtrainer", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        procs.append(proc)
        prefix = "" if rank == 0 else f"[process {rank}] "
        for stream, out in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
            pump = threading.Thread(target=_pump, args=(stream, prefix, out), daemon=True)
            pump.start()
            pumps.append(pump)
    try:
        status = _wait(procs, grace)
    except KeyboardInterrupt:
        for proc in procs:
            _signal(proc, signal.SIGINT)
        status = _wait(procs, grace) or 130
    for pump in pumps:
        pump.join(timeout=5)
    return status


def _wait(procs: List[subprocess.Popen], grace: float) -> int:
    """Wait for all; once one fails, give the others `grace` seconds to notice, then stop them."""
    failed_at = None
    while any(p.poll() is None for p in procs):
        if failed_at is None and any(p.returncode not in (None, 0) for p in procs):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > grace:
            for proc in procs:
                _signal(proc, signal.SIGKILL)
        time.sleep(0.1)
    return next((p.returncode for p in procs if p.returncode != 0), 0)


def _signal(proc: subprocess.Popen, sig) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
