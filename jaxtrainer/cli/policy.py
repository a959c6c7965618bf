"""The command line's one policy for output, errors and interrupts, the same for every command:
output through the "jaxtrainer" logger; a `JaxtrainerError` (or an `OSError`, a missing package) is
one `jaxtrainer: error: ...` line and exit 2, anything else a bug with its traceback; Ctrl-C,
SIGTERM or SIGHUP says what is saved on disk and exits 130."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

from .. import files
from ..errors import JaxtrainerError

log = logging.getLogger("jaxtrainer")


class UserError(JaxtrainerError):
    """Bad input that argparse cannot see (options that contradict each other, a missing command)."""


class _Output:
    """stdout or stderr, whose reader may go away (`jaxtrainer train ... | head -n1`): the rest is
    then dropped and the run goes on. Flushed at each line: an interrupt that leaves loses nothing."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            n = self._stream.write(text)
            if "\n" in text:
                self._stream.flush()
            return n
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def join_processes(args) -> None:
    """A multi-process run joins its other processes before any JAX computation; only process 0
    prints, logs below warnings and shows progress (the others' output would repeat it)."""
    from .. import distributed

    several = distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    if several and not distributed.is_writer():
        args.no_progress = True
        log.setLevel(logging.WARNING)  # warnings still go to the logger's stream, stdout
        sys.stdout = open(os.devnull, "w")  # what the engine prints (restored by `main`)


_RUNNING: dict = {}  # the command running now ("args", "opened" run folders), for an interrupt


def _runs_module():
    """`jaxtrainer.runs` once imported whole (nothing was written before), else None."""
    runs = sys.modules.get("jaxtrainer.runs")
    return runs if getattr(runs, "abandon", None) is not None else None


def _interrupted(signum, frame) -> None:
    """SIGINT, SIGTERM or SIGHUP (`files.INTERRUPTS`). A command that runs JAX leaves at once, from
    wherever it is (a compile, a write, a garbage collector's callback that would swallow a
    KeyboardInterrupt); every file on disk is whole. One without JAX unwinds, so its clean-ups run."""
    for sig in files.INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
    args = _RUNNING.get("args")
    if args is not None and not args.backend:
        raise KeyboardInterrupt
    _leave(_interrupted_message(args), 130)


def _leave(message: str, status: int) -> None:
    """Say `message` and exit now, leaving no temporary file or lock: nothing unwinds, so nothing
    half-done runs on beside XLA's threads, and no exit waits on a dead peer at JAX's shutdown."""
    runs = _runs_module()
    if runs is not None:
        runs.abandon()
    with contextlib.suppress(OSError):  # stderr closed too: the exit status still says it
        os.write(2, f"{message}\n".encode(errors="replace"))
    os._exit(status)


def _saved(folders) -> str:
    """'FOLDER (N epochs), ...' for those of `folders` whose checkpoint holds epochs."""
    runs = _runs_module()
    epochs = [(folder, runs.epochs_on_disk(folder)) for folder in folders] if runs else []
    return ", ".join(f"{folder} ({n} epoch{'s' * (n != 1)})" for folder, n in epochs if n)


def _saved_so_far() -> str:
    """'; saved so far: FOLDER (N epochs), ...' for the runs this command opened ('' for none)."""
    saved = _saved(_RUNNING.get("opened", []))
    return f"; saved so far: {saved}" if saved else ""


def _interrupted_message(args) -> str:
    """What is on disk, read from the checkpoints of the runs this command opened (or, when it
    opened none yet, of the runs already in --out and its sub-folders, which it did not touch)."""
    if args is None:
        return "jaxtrainer: interrupted before the command started; nothing was written"
    out = getattr(args, "out", None)
    if out is None:  # a command without a run folder
        return "jaxtrainer: interrupted"
    if _runs_module() is None:
        return "jaxtrainer: interrupted before anything was written"
    opened = _RUNNING.get("opened", [])
    saved = _saved(opened or [out, *_sub_folders(out)])
    if saved and opened:
        return (
            f"jaxtrainer: interrupted; the last finished epoch is saved in {saved}: "
            "run the same command again to continue"
        )
    if saved:
        return f"jaxtrainer: interrupted before training started; unchanged: {saved}"
    return f"jaxtrainer: interrupted before any epoch was saved in {out}; nothing to continue from"


def _sub_folders(folder: str):
    try:
        return sorted(entry.path for entry in os.scandir(folder) if entry.is_dir())
    except OSError:
        return []


def _check_backend() -> None:
    """A JAX_PLATFORMS naming a platform this machine lacks (or a broken accelerator plugin) is an
    environment error, said in one line."""
    import jax

    try:
        jax.devices()
    except Exception as e:  # a RuntimeError; `cuda` without an NVIDIA GPU: JAX's bare AssertionError
        platforms = os.environ.get("JAX_PLATFORMS", "")
        text = str(e).strip()
        reason = text.splitlines()[0] if text else "no platform it names is on this machine"
        reason += "" if "JAX_PLATFORMS=''" in reason else " (set JAX_PLATFORMS='' to let JAX choose one)"
        raise UserError(f"JAX cannot start a backend with JAX_PLATFORMS={platforms!r}: {reason}") from None


def _missing_folders(path: str | None) -> list:
    """`path` and those of its parents that do not exist yet, deepest first."""
    if not path:
        return []
    absolute = Path(os.path.abspath(path))
    return [str(folder) for folder in (absolute, *absolute.parents) if not os.path.lexists(folder)]


def _run_command(argv, build_parser) -> int:
    _RUNNING.clear()
    args, created = None, []
    try:
        args = build_parser().parse_args(argv)
        _RUNNING["args"] = args
        created = _missing_folders(getattr(args, "out", None))
        if hasattr(args, "coordinator"):
            join_processes(args)  # before anything starts JAX's backend
        if args.backend:
            _check_backend()
            from .. import compile_cache

            compile_cache.enable()
        from .. import runs

        with runs.tracking() as opened:
            _RUNNING["opened"] = opened
            return args.run(args)
    except KeyboardInterrupt as e:  # unwound: a command without JAX, or an interrupt raised in-process
        if e.args:  # the command said what it did and undid
            message = f"jaxtrainer: interrupted; {e.args[0]}"
        elif args is not None and hasattr(args, "interrupted"):  # it trains nothing: say what it keeps
            message = f"jaxtrainer: interrupted; {args.interrupted.format(out=args.out)}"
        else:
            message = _interrupted_message(args)
        print(message, file=sys.stderr)
        return 130
    except Exception as e:
        _peer_failed(e)
        text = str(e)
        if isinstance(e, (JaxtrainerError, OSError, ImportError)):
            for folder in created:  # a refused command leaves nothing, not even empty folders
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
        elif isinstance(e, MemoryError) or text.startswith("RESOURCE_EXHAUSTED"):  # the environment's limit
            text = (
                f"out of memory ({text.splitlines()[0] if text else 'MemoryError'}){_saved_so_far()}; "
                "try a smaller --batch-size, smaller layers or fewer sweep members"
            )
        else:
            raise  # a bug: its traceback is wanted
        print(f"jaxtrainer: error: {text}", file=sys.stderr)
        return 2
    finally:
        _RUNNING.clear()


def _peer_failed(error: BaseException | None) -> None:
    """Another process of a multi-process run died, seen in a broken collective here or as the
    cause of another error: one line, and leave at once (`_leave`)."""
    distributed = sys.modules.get("jaxtrainer.distributed")
    seen = set()
    while distributed is not None and error is not None and id(error) not in seen:
        if distributed.peer_failed(error):
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            _leave(
                "jaxtrainer: error: another process of this multi-process run stopped "
                f"({reason or 'no reason given'}){_saved_so_far()}. "
                "Run the same command on every process again to continue",
                2,
            )
        seen.add(id(error))
        error = error.__cause__ or error.__context__


def _one_line_warnings(format_warning):
    """Our own warnings as the line they say (Python's format adds a path and a line of source);
    the others keep `format_warning`, which says where they come from."""

    def formatted(message, category, filename, lineno, line=None) -> str:
        text = str(message)
        if text.startswith("jaxtrainer: "):
            return f"jaxtrainer: warning: {text.removeprefix('jaxtrainer: ')}\n"
        return format_warning(message, category, filename, lineno, line)

    return formatted


def main(argv, build_parser) -> int:
    """Run one command under the policy. Interrupts leave the process (exit 130); called in-process
    (a notebook, a test), the caller's signal handlers, streams and logging are restored on return."""
    handlers = {sig: signal.signal(sig, _interrupted) for sig in files.INTERRUPTS}
    streams, format_warning = (sys.stdout, sys.stderr), warnings.formatwarning
    logging_saved = log.handlers, log.level, log.propagate
    sys.stdout, sys.stderr = output = _Output(sys.stdout), _Output(sys.stderr)
    warnings.formatwarning = _one_line_warnings(format_warning)
    to_stdout = logging.StreamHandler(sys.stdout)  # the message alone, from INFO
    to_stdout.setFormatter(logging.Formatter("%(message)s"))
    log.handlers, log.propagate = [to_stdout], False
    log.setLevel(logging.INFO)
    try:
        return _run_command(argv, build_parser)
    finally:
        log.handlers, log.level, log.propagate = logging_saved
        if sys.stdout is not output[0]:  # a process other than 0's devnull (`join_processes`)
            sys.stdout.close()
        sys.stdout, sys.stderr = streams
        warnings.formatwarning = format_warning
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
