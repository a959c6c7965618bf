"""The command line's one policy for output, errors and interrupts, the same for every command.

- Output: the "jaxtrainer" logger, configured once here (the message alone, INFO to stdout; only
  warnings on processes other than 0 of a multi-process run, whose output would repeat process 0's).
- A user or environment error (`JaxtrainerError`: a bad value, a run folder that belongs to another
  run, a missing sandbox; an `OSError` on a path the user gave; a missing optional package) prints
  one `jaxtrainer: error: ...` line and exits 2. Anything else, a `ValueError` from inside the
  engine or JAX included, is a bug and keeps its traceback.
- Ctrl-C, SIGTERM (what cluster schedulers send) or SIGHUP (a closed terminal or ssh session)
  prints what is saved on disk and exits 130.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings

from .. import files
from ..errors import JaxtrainerError

log = logging.getLogger("jaxtrainer")


class UserError(JaxtrainerError):
    """Bad input that argparse cannot see (options that contradict each other, a missing command)."""


class _Output:
    """stdout or stderr, whose reader may go away (`jaxtrainer train ... | head -n1`): from then on
    the rest of the output is dropped and the run goes on writing its files. Flushed at each line,
    so nothing said is lost when an interrupt leaves at once."""

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


@contextlib.contextmanager
def _logging_to(stream):
    """The "jaxtrainer" logger prints the message alone to `stream`, from INFO; restored on exit,
    so that a caller in the same process (a notebook, a test) gets its own configuration back."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = log.handlers, log.level, log.propagate
    log.handlers, log.propagate = [handler], False
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.handlers, log.level, log.propagate = saved


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
    KeyboardInterrupt): nothing unwinds, so nothing half-done runs on while XLA's threads do.
    Every file on disk is whole (atomic writes; the checkpoint is the truth of the epochs done);
    the temporary file of a write in progress and the locks are removed, and the message says what
    is saved. A command without JAX (`data`, Lab A, `grade`) unwinds as usual, so that its own
    clean-ups run."""
    for sig in files.INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
    args = _RUNNING.get("args")
    if args is not None and not args.backend:
        raise KeyboardInterrupt
    runs = _runs_module()
    message = _interrupted_message(args, _RUNNING.get("opened", []), runs)
    if runs is not None:
        runs.abandon()
    with contextlib.suppress(OSError):  # stderr closed too: the exit status still says it
        os.write(2, f"{message}\n".encode(errors="replace"))
    os._exit(130)


def _interrupted_message(args, opened, runs) -> str:
    """What is on disk, read from the checkpoints of the runs this command opened (or, when it
    opened none yet, of the runs already in --out and its sub-folders, which it did not touch)."""
    if args is None:
        return "jaxtrainer: interrupted before the command started; nothing was written"
    out = getattr(args, "out", None)
    if out is None:  # a command without a run folder
        return "jaxtrainer: interrupted"
    if runs is None:
        return "jaxtrainer: interrupted before anything was written"

    def saved(folders):
        epochs = [(folder, runs.epochs_on_disk(folder)) for folder in folders]
        return ", ".join(f"{folder} ({n} epoch{'s' * (n != 1)})" for folder, n in epochs if n)

    listed = opened and saved(opened)
    if listed:
        return (
            f"jaxtrainer: interrupted; the last finished epoch is saved in {listed}: "
            "run the same command again to continue"
        )
    present = not opened and saved([out, *_sub_folders(out)])
    if present:
        return f"jaxtrainer: interrupted before training started; unchanged: {present}"
    return f"jaxtrainer: interrupted before any epoch was saved in {out}; nothing to continue from"


def _sub_folders(folder: str):
    try:
        return sorted(entry.path for entry in os.scandir(folder) if entry.is_dir())
    except OSError:
        return []


def _check_backend() -> None:
    """JAX starts its backend on first use; a JAX_PLATFORMS naming a platform this machine lacks
    (or a broken accelerator plugin) is an environment error, said in one line."""
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
    missing = []
    path = os.path.abspath(path) if path else None
    while path and not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path) if os.path.dirname(path) != path else None
    return missing


def _remove_empty(folders) -> None:
    """The folders a refused command created and left empty (deepest first): it leaves nothing."""
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


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
    except (JaxtrainerError, OSError, ImportError) as e:
        _peer_failed(e)
        _remove_empty(created)
        print(f"jaxtrainer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # unwound: a command without JAX, or an interrupt raised in-process
        if e.args:  # the command said what it did and undid
            message = f"jaxtrainer: interrupted; {e.args[0]}"
        elif args is not None and hasattr(args, "interrupted"):  # it trains nothing: say what it keeps
            message = f"jaxtrainer: interrupted; {args.interrupted.format(out=args.out)}"
        else:
            message = _interrupted_message(args, _RUNNING.get("opened", []), _runs_module())
        print(message, file=sys.stderr)
        return 130
    except Exception as e:
        _peer_failed(e)
        if _out_of_memory(e):
            print(
                f"jaxtrainer: error: out of memory ({str(e).splitlines()[0] if str(e) else 'MemoryError'})"
                f"{_saved_so_far()}; try a smaller --batch-size, smaller layers or fewer sweep members",
                file=sys.stderr,
            )
            return 2
        raise  # a bug: its traceback is wanted
    finally:
        _RUNNING.clear()


def _saved_so_far() -> str:
    """'; saved so far: FOLDER (N epochs), ...' for the runs this command opened ('' for none)."""
    runs = _runs_module()
    epochs = [(f, runs.epochs_on_disk(f)) for f in _RUNNING.get("opened", [])] if runs else []
    saved = [f"{f} ({n} epochs)" for f, n in epochs if n]
    return f"; saved so far: {', '.join(saved)}" if saved else ""


def _out_of_memory(error: Exception) -> bool:
    """A program bigger than the memory (XLA's RESOURCE_EXHAUSTED, or the host's MemoryError) is
    the environment's limit, not a bug."""
    return isinstance(error, MemoryError) or str(error).startswith("RESOURCE_EXHAUSTED")


def _peer_failed(error: BaseException | None) -> None:
    """A collective that broke because another process of a multi-process run died, whether it
    reached here itself or as the cause of another error (a folder that process 0 "could not
    open" because the collective that told the others broke)."""
    distributed = sys.modules.get("jaxtrainer.distributed")
    seen = set()
    while distributed is not None and error is not None and id(error) not in seen:
        if distributed.peer_failed(error):
            _peer_lost(str(error).splitlines()[0] if str(error) else type(error).__name__)
        seen.add(id(error))
        error = error.__cause__ or error.__context__


def _peer_lost(reason: str) -> None:
    """Another process of a multi-process run died. One line, and leave at once: a normal exit
    would wait for the dead process at JAX's shutdown barrier, then end in a C++ fatal log."""
    message = (
        "jaxtrainer: error: another process of this multi-process run stopped "
        f"({reason or 'no reason given'}){_saved_so_far()}. "
        "Run the same command on every process again to continue\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, message.encode(errors="replace"))
    runs = _runs_module()
    if runs is not None:
        runs.abandon()
    os._exit(2)


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
    """Run one command under the policy. Interrupts leave the process (exit 130); called
    in-process, the caller's signal handlers, streams and logging are restored on return."""
    handlers = {sig: signal.signal(sig, _interrupted) for sig in files.INTERRUPTS}
    streams, format_warning = (sys.stdout, sys.stderr), warnings.formatwarning
    sys.stdout, sys.stderr = output = _Output(sys.stdout), _Output(sys.stderr)
    warnings.formatwarning = _one_line_warnings(format_warning)
    try:
        with _logging_to(sys.stdout):
            return _run_command(argv, build_parser)
    finally:
        if sys.stdout is not output[0]:  # a process other than 0's devnull (`join_processes`)
            sys.stdout.close()
        sys.stdout, sys.stderr = streams
        warnings.formatwarning = format_warning
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
