"""The sandbox each submission runs in: bubblewrap (the sandbox Flatpak uses) around an
unprivileged user, with resource limits, no network, and nothing of the grader's in reach.

What one run sees (``bwrap`` namespaces: mount, PID, network, IPC, UTS):
- the system (/usr, /etc) and the Python install read-only; the project itself (jaxtrainer,
  torch_compat, the source tree) is not mounted, so the reference and the checks cannot be imported;
- /submission, its own folder (its files, the data or a view of them), the only writable place besides
  an empty HOME and a private /tmp; other submissions, --out and --dataset are not mounted;
- /grader, read-only: the collector and the request;
- no network but its own loopback; a PID namespace, so no other process of the machine can be
  seen or signalled, and every process the run starts (setsid and double forks included) dies
  when its first process ends or the timeout kills it.

When the grader runs as root, each submission gets its own unprivileged uid (so that limits on
processes are its own, not the class's); limits on memory, processes, file size, CPU time and open
files apply to everything it starts; its output is capped (`Output`), and the grader's memory does
not grow with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from typing import Dict, List, NamedTuple, Sequence, Tuple

from ..errors import JaxtrainerError

UID_BASE = 200_000  # the sandboxes' uids lie above it, none in /etc/passwd
UIDS_PER_SESSION = 1000  # a session's slots; two sessions on one machine get other uids (by pid)
HOME, WORK, GRADER = "/home/student", "/submission", "/grader"


class Limits(NamedTuple):
    """One run's resource limits, sizes in bytes: prlimit applies them in both modes, and `output` caps
    what output.log keeps."""

    memory: int = 8 << 30  # address space per process (torch maps ~2 GB before any work)
    processes: int = 256  # processes and threads of the submission's uid
    file_size: int = 1 << 30  # largest file it may write
    open_files: int = 512
    output: int = 10 << 20  # bytes of stdout+stderr kept in output.log


class SandboxError(JaxtrainerError):
    """The sandbox cannot be built on this machine (the CLI says it in one line, exit 2)."""


def _project_paths() -> List[str]:
    """The folders that hold the project's packages (hidden inside the sandbox)."""
    import jaxtrainer
    import torch_compat

    # packages have a file
    return [os.path.dirname(os.path.abspath(m.__file__)) for m in (jaxtrainer, torch_compat)]  # pyright: ignore[reportCallIssue, reportArgumentType]


def _python_roots() -> List[str]:
    """The folders the sandbox's interpreter needs: the base install and the venv."""
    roots = []
    for path in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))):
        path = os.path.realpath(path)
        if not any(path == r or path.startswith(r + os.sep) for r in roots):
            roots.append(path)
    return roots


def bwrap() -> str:
    """The bwrap executable, or SandboxError saying how to get it."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxError(
            "bubblewrap (bwrap) is not installed: grading runs each submission in its sandbox "
            "(apt-get install bubblewrap, dnf install bubblewrap); --sandbox none grades without "
            "one, for trusted code only"
        )
    return found


def _mkdirs(args: List[str], path: str, made: set) -> None:
    """Create the parents of a mount point readable by everyone (bwrap's own are 0700)."""
    parts = path.strip("/").split("/")[:-1]
    for i in range(len(parts)):
        parent = "/" + "/".join(parts[: i + 1])
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", parent]


class Sandbox(NamedTuple):
    """How runs are sandboxed: `mode` 'bwrap' (the default) or 'none' (trusted code only)."""

    mode: str = "bwrap"
    limits: Limits = Limits()

    def command(
        self,
        argv: Sequence[str],
        work: str,
        grader_files: Dict[str, str],
        ro_binds: Sequence[Tuple[str, str]] = (),
        env: Dict[str, str] | None = None,
        uid: int | None = None,
    ) -> List[str]:
        """The full command line: `argv` run in `work` (mounted at /submission), with `grader_files`
        ({name: host path}) read-only in /grader and `ro_binds` ((host, inside /submission)) read-only."""
        env = dict(env or {})
        limits = self.limits
        prlimit = [
            "prlimit",
            f"--as={limits.memory}",
            f"--nproc={limits.processes}",
            f"--fsize={limits.file_size}",
            f"--nofile={limits.open_files}",
            "--core=0",
            "--",
        ]
        if self.mode == "none":
            return [*prlimit, *argv]
        args = [bwrap(), "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net"]
        args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        made: set = set()
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        # The private /tmp and HOME first: a Python install under /tmp (a CI's clone) is mounted
        # on top of them.
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        args += ["--perms", "0777", "--tmpfs", HOME]
        for root in _python_roots():
            if any(root == p or root.startswith(p + "/") for p in (WORK, GRADER)):
                raise SandboxError(f"the Python install {root} lies where the sandbox mounts its own folders")
            _mkdirs(args, root, made)
            args += ["--ro-bind", root, root]
        for hidden in _project_paths():  # a non-editable install puts the project in site-packages
            if any(hidden.startswith(r + os.sep) for r in _python_roots()):
                args += ["--tmpfs", hidden]
        args += ["--bind", work, WORK]
        for host, inside in ro_binds:
            args += ["--ro-bind", host, f"{WORK}/{inside}"]
        args += ["--perms", "0755", "--dir", GRADER]
        for name, host in grader_files.items():
            args += ["--ro-bind", host, f"{GRADER}/{name}"]
        args += ["--chdir", WORK, "--clearenv"]
        env.update(HOME=HOME, PATH="/usr/local/bin:/usr/bin:/bin", TMPDIR="/tmp", LANG="C.UTF-8")
        for key, value in env.items():
            args += ["--setenv", key, value]
        args.append("--")
        if uid is not None:
            args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]
        return [*args, *prlimit, *argv]


def uid_for(slot: int) -> int | None:
    """The unprivileged uid of a run when the grader is root (None otherwise: runs keep the
    grader's own uid, and the namespaces alone separate them). RLIMIT_NPROC counts every process of
    a uid on the machine: each slot of each grading session has its own, so that no run's
    processes count against another's."""
    if os.geteuid() != 0:
        return None
    return UID_BASE + (os.getpid() % 100_000) * UIDS_PER_SESSION + slot % UIDS_PER_SESSION


class Output(threading.Thread):
    """Copies a run's output to its log up to `limit` bytes, then notes the cut and reads on
    without keeping anything (so that the run never blocks on a full pipe)."""

    def __init__(self, stream, log, limit: int):
        super().__init__(daemon=True)
        self.stream, self.log, self.limit, self.kept = stream, log, limit, 0

    def run(self) -> None:
        while True:
            chunk = self.stream.read(1 << 16)
            if not chunk:
                break
            if self.kept < self.limit:
                part = chunk[: self.limit - self.kept]
                self.log.write(part)
                self.kept += len(part)
                if self.kept >= self.limit:
                    self.log.write(f"\n[output cut here: over {self.limit >> 20} MB]\n".encode())
                self.log.flush()
        self.stream.close()


class Running:
    """The runs in progress, so that an interrupted grading run kills them all."""

    def __init__(self):
        self._lock, self._procs, self.stopped = threading.Lock(), set(), False

    def add(self, proc: subprocess.Popen) -> None:
        """Track a run; after kill_all (an interrupt), a run that starts late is killed at once."""
        with self._lock:
            self._procs.add(proc)
            if self.stopped:
                _kill_group(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        """Stop tracking a run that has ended (its processes are already dead)."""
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        """SIGKILL every tracked run's process group, and each run that starts after (an interrupt)."""
        with self._lock:
            self.stopped = True
            for proc in self._procs:
                _kill_group(proc)


RUNNING = Running()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def processes_of(uid: int) -> List[int]:
    """The pids owned by `uid` (a run's processes, wherever they are)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def reap(uid: int | None, wait: float = 10.0) -> None:
    """Make sure no process of the run's uid is left (the PID namespace already killed them; this
    is the proof, and the last resort)."""
    if uid is None:
        return
    deadline = time.monotonic() + wait
    while True:
        left = processes_of(uid)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            raise SandboxError(f"processes {left[:5]} of uid {uid} survived SIGKILL")
        time.sleep(0.05)


def run(command: List[str], log_path: str, timeout: float, limit: int, uid: int | None) -> int | None:
    """Run a sandbox command: its exit status, or None when it was still running at the timeout.
    Either way nothing it started is left when this returns."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        RUNNING.add(proc)
        copier = Output(proc.stdout, log, limit)
        copier.start()
        try:
            status = proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            status = None
        finally:
            _kill_group(proc)
            proc.wait()
            RUNNING.discard(proc)
            reap(uid)
            copier.join(timeout=10)
    return status


def check(mode: str) -> None:
    """SandboxError now, with its reason, rather than a crash per submission later."""
    if mode == "none":
        return
    bwrap()
    probe = Sandbox(mode).command(["true"], work="/", grader_files={}, uid=uid_for(0))
    probe = probe[: probe.index("--", probe.index("--chdir")) + 1] + ["true"]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SandboxError(
            f"bubblewrap cannot build the sandbox here ({_last(done.stderr) or done.returncode}): "
            "it needs user namespaces, or root; --sandbox none grades without one, for trusted code only"
        )


def _last(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


class Untrusted(Exception):
    """A file a run left is not a regular file under the size limit (a link, a FIFO, too big)."""


def read_untrusted(path: str, limit: int) -> bytes:
    """The bytes of a file a run wrote, read without following a link or blocking on a FIFO, and
    only if it is a regular file of at most `limit` bytes (the grader reads as root)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise Untrusted(f"{os.path.basename(path)} cannot be opened ({e.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise Untrusted(f"{os.path.basename(path)} is not a regular file of at most {limit >> 20} MB")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise Untrusted(f"{os.path.basename(path)} grew over {limit >> 20} MB")
        return b"".join(chunks)
    finally:
        os.close(fd)
