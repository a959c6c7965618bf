"""The `jaxtrainer` command: one grammar (shared option groups), one error and interrupt policy.

Every command runs through `_run_command`: a user or environment error (bad value, unwritable
folder, missing file or package, a run folder that belongs to another run) prints one
`jaxtrainer: error: ...` line and exits 2; Ctrl-C, SIGTERM (what cluster schedulers send) or SIGHUP
(a closed terminal or ssh session) prints what is saved on disk and exits 130. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import warnings
from typing import Sequence

from . import __version__, bench, files, presets
from .config import NetworkConfiguration, check_seed
from .grade import cli as grade_cli
from .labs.commands import LABS
from .registry import ACTIVATIONS, CONV_IMPLS, DATA_DIR_DATASETS, NETWORK_TYPES, OPTIMIZERS, STRATEGIES


class UserError(Exception):
    """Raised by a command for bad input that argparse cannot see."""


# -- shared option groups ---------------------------------------------------------------------------
# Added by function rather than argparse `parents=`: parent parsers share their Action objects, so
# one command's set_defaults (another --out or --dataset default) would change every command's.
def _progress_options(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _data_options(p, dataset=None) -> None:
    p.add_argument(
        "--dataset",
        default=dataset,
        help="'digits' (embedded), a folder with train/ and test/ <i>_<angle>.png, or "
        f"{', '.join(DATA_DIR_DATASETS)} (read from --data-dir)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where named datasets find their files (default: $JAXTRAINER_DATA_DIR); nothing is downloaded",
    )


def _output_options(p, out: str) -> None:
    p.add_argument("--out", default=out, help=f"the run folder (default: {out})")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in --out, removing the run found there (default: the same command "
        "continues the run in --out; another configuration is refused)",
    )


def _network_options(p) -> None:
    d = NetworkConfiguration()
    p.add_argument("--network", choices=NETWORK_TYPES, default="mlp")
    p.add_argument("--channels", type=int, nargs="+", default=list(d.n_channels))
    p.add_argument("--kernels", type=int, nargs="+", default=list(d.kernel_sizes))
    p.add_argument("--strides", type=int, nargs="+", default=list(d.strides))
    p.add_argument("--hidden", type=int, nargs="*", default=list(d.dense_hiddens), help="dense hidden sizes")
    p.add_argument("--activation", default=presets.ACTIVATION, help=f"one of {', '.join(ACTIVATIONS)}")
    p.add_argument("--conv-impl", choices=CONV_IMPLS, default=None, help="default: by backend")


def _training_options(p) -> None:
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=OPTIMIZERS[0],
        help="optax's, by name (default: %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=presets.BATCH_SIZE)
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="how members of one architecture share a program: vmap (batched), map (one after "
        "another inside it), auto (map on CPU, vmap on GPU/TPU)",
    )


def _distributed_options(p) -> None:
    g = p.add_argument_group("several processes (docs/cluster.md; default: one, or as SLURM/Open MPI says)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address ($JAXTRAINER_COORDINATOR)")
    g.add_argument("--num-processes", type=int, help="processes in all ($JAXTRAINER_NUM_PROCESSES)")
    g.add_argument("--process-id", type=int, help="this process's rank, 0 first ($JAXTRAINER_PROCESS_ID)")


def _add(p, *groups):
    for group, *args in groups:
        group(p, *args)
    return p


def _seed(text: str) -> int:
    """A seed option, checked by argparse against the one seed range (`config.check_seed`)."""
    try:
        value = int(text)
    except ValueError:
        value = text
    try:
        return check_seed(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _net_config(args) -> NetworkConfiguration:
    return NetworkConfiguration(
        tuple(args.channels), tuple(args.kernels), tuple(args.strides), tuple(args.hidden)
    )


def _spec(args, epochs: int, **network):
    """The command's run spec (`spec.Spec`), from the options every training command shares."""
    from .spec import Spec

    return Spec(
        optimizer=args.optimizer,
        batch_size=args.batch_size,
        epochs=epochs if args.epochs is None else args.epochs,
        dataset=args.dataset,
        data_dir=args.data_dir,
        conv_impl=args.conv_impl,
        strategy=args.strategy,
        **network,
    )


def _network(args, members) -> dict:
    return dict(
        network=args.network, net_config=_net_config(args), activation=args.activation, members=members
    )


def _mode(args) -> str:
    if args.overwrite and getattr(args, "resume", False):
        raise UserError("--resume and --overwrite contradict each other: choose one")
    return "overwrite" if args.overwrite else "resume" if getattr(args, "resume", False) else "continue"


# -- the commands -------------------------------------------------------------------------------------
def _train(args) -> int:
    from .experiments.single import run

    spec = _spec(args, 5, **_network(args, [(args.lr, args.seed)]))
    result = run(spec, args.out, progress=not args.no_progress, mode=_mode(args), export=args.export)
    logs = result["logs"]
    say(
        f"final: train_mae {logs['train_mae'][-1]:.4f}  test_mae {logs['test_mae'][-1]:.4f}  "
        f"test_loss {logs['test_loss'][-1]:.4f}  ({result['meta']['seconds']:.1f} s)"
    )
    for path in result["paths"].values():
        say(f"wrote {path}")
    return 0


def _join(args) -> None:
    """A multi-process run joins its other processes before any JAX computation; only process 0
    prints and shows progress (the others' output would repeat it)."""
    global _quiet
    from . import distributed

    several = distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    if several and not distributed.is_writer():
        args.no_progress = _quiet = True
        logging.getLogger(__package__).setLevel(logging.WARNING)


def _sweep(args) -> int:
    from .experiments.sweep import run_sweep
    from .spec import members_of

    spec = _spec(args, 5, **_network(args, members_of(args.lr, args.seeds, args.pair)))
    result = run_sweep(spec, args.out, mode=_mode(args), progress=not args.no_progress)
    say(result["table"])
    for path in result["paths"].values():
        say(f"wrote {path}")
    return 0


def _homework(args) -> int:
    from .experiments.homework import run_homework

    result = run_homework(
        _spec(args, presets.EPOCHS), args.out, mode=_mode(args), progress=not args.no_progress
    )
    s = result["summary"]
    say(
        f"done in {s['seconds']:.1f} s; shift error {s['equivariance']['shift_error']:.4f}, "
        f"rotation error {s['equivariance']['rotation_error']:.4f}"
    )
    say(f"wrote {result['paths']['report']} (and the runs' logs, figures, summary.json)")
    return 0


def _data(args) -> int:
    from .data import build

    info = build.build_rotated(
        args.source,
        args.out,
        seed=args.seed,
        max_angle=build.MAX_ANGLE if args.max_angle is None else args.max_angle,
        n_train=build.N_TRAIN if args.n_train is None else args.n_train,
        n_test=build.N_TEST if args.n_test is None else args.n_test,
        progress=not args.no_progress,
    )
    say(
        f"wrote {info['out']}: {info['n_train']} train and {info['n_test']} test images, angles "
        f"in [0, {info['max_angle']}], seed {info['seed']}"
    )
    return 0


def _lab(args) -> int:
    lab = LABS[args.lab]
    module = importlib.import_module(f".labs.{lab.module}", __package__)
    if lab.dataset is None:  # Lab A answers on the terminal: no data, no run folder
        module.run_from_args(args)
        return 0
    summary = module.run_from_args(args, mode=_mode(args))
    say(f"wrote {os.path.join(args.out, 'report.md')} ({summary['seconds']:.1f} s)")
    return 0


def _launch(args) -> int:
    from .launch import launch

    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise UserError(
            "launch needs a command to run, e.g. `jaxtrainer launch -n 2 -- sweep --lr 1e-2 1e-3`"
        )
    wrapped = build_parser().parse_args(command)  # a command that cannot run fails before any starts
    owned = [
        f"--{dest.replace('_', '-')}" for dest in _LAUNCH_SETS if getattr(wrapped, dest, None) is not None
    ]
    if owned:
        raise UserError(
            f"launch gives each process its {', '.join(owned)} itself: remove "
            f"{'it' if len(owned) == 1 else 'them'} from the command"
        )
    return launch(command, args.processes, args.devices)


_LAUNCH_SETS = ("coordinator", "num_processes", "process_id")  # what launch gives each process


# -- the grammar ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxtrainer", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(backend=True)  # the command runs JAX: its backend is checked first
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one MLP or CNN: logs.json, logs.csv, curves.png, checkpoint.npz")
    _add(
        p,
        (_network_options,),
        (_training_options,),
        (_data_options, "digits"),
        (_output_options, "runs/train"),
        (_progress_options,),
    )
    p.add_argument("--lr", type=float, default=presets.DEFAULT_LR)
    p.add_argument("--seed", type=_seed, default=presets.SEED, help="initialisation seed, 0 to 2**32 - 1")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out, which must exist (same configuration)",
    )
    p.add_argument(
        "--export", metavar="PATH", help="also write the weights as a state_dict (.pt, .npz, .safetensors)"
    )
    p.set_defaults(run=_train)

    p = sub.add_parser("sweep", help="several learning rates / seeds of one network at once, as one program")
    _add(
        p,
        (_network_options,),
        (_training_options,),
        (_data_options, "digits"),
        (_output_options, "runs/sweep"),
        (_progress_options,),
    )
    p.add_argument("--lr", type=float, nargs="+", default=[presets.DEFAULT_LR], help="learning rates")
    p.add_argument("--seeds", type=_seed, nargs="+", default=[presets.SEED], help="initialisation seeds")
    p.add_argument(
        "--pair", action="store_true", help="pair --lr and --seeds element-wise, not their product"
    )
    _distributed_options(p)
    p.set_defaults(run=_sweep)

    p = sub.add_parser(
        "homework", help="the homework's experiments 1-4: every run, the figures and report.md"
    )
    _add(p, (_training_options,), (_data_options,), (_output_options, "runs/homework"), (_progress_options,))
    p.add_argument("--conv-impl", choices=CONV_IMPLS, default=None, help="default: by backend")
    _distributed_options(p)
    p.set_defaults(run=_homework)

    p = sub.add_parser("data", help="datasets from files you have (nothing is downloaded)")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    b = data_sub.add_parser(
        "build-rotated",
        help="rotated Fashion-MNIST in the homework's folder format, from the four Fashion-MNIST IDX files",
    )
    _progress_options(b)
    b.add_argument("--source", required=True, help="folder with the four IDX files (plain or .gz)")
    b.add_argument("--out", required=True, help="the folder to create (train/, test/)")
    b.add_argument("--seed", type=_seed, default=0, help="draws the angles (default 0)")
    b.add_argument(
        "--max-angle", type=int, default=None, help="angles are integers in [0, max-angle] (default 90)"
    )
    b.add_argument("--n-train", type=int, default=None, help="first N training images (default 60000)")
    b.add_argument("--n-test", type=int, default=None, help="first N t10k images (default 2000)")
    b.set_defaults(run=_data, backend=False)

    p = sub.add_parser("lab", help="the course's other labs, A-D")
    lab_sub = p.add_subparsers(dest="lab", required=True, metavar="LAB")
    for name, lab in LABS.items():
        p = lab_sub.add_parser(
            name,
            help=lab.help,
            description=lab.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if lab.dataset is not None:
            _add(p, (_data_options, lab.dataset), (_output_options, f"runs/{name}"), (_progress_options,))
            p.add_argument("--epochs", type=int, default=lab.epochs, help=f"default: {lab.epochs}")
            p.add_argument("--seed", type=_seed, default=0, help="initialisation and validation split")
            p.add_argument(
                "--strategy", choices=STRATEGIES, default="auto", help="how the lrs share a program"
            )
        lab.options(p)
        p.set_defaults(run=_lab, backend=lab.dataset is not None)

    grade_cli.add_parser(sub)

    p = sub.add_parser(
        "launch",
        help="run a command as N processes on this machine (a multi-process sweep or homework, to try it)",
        description="Starts N copies of `jaxtrainer COMMAND ...` joined as one multi-process run "
        "(coordinator on 127.0.0.1). Clusters use their own launchers: docs/cluster.md.",
    )
    p.add_argument("-n", "--processes", type=int, default=2, help="processes (default 2)")
    p.add_argument("--devices", type=int, default=1, help="CPU devices per process (default 1)")
    p.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    p.set_defaults(run=_launch, backend=False)  # its processes run JAX, not itself

    p = sub.add_parser(
        "bench",
        help="PyTorch reference against jaxtrainer, per-epoch time on synthetic data",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_arguments(p)
    p.set_defaults(  # the frameworks run in their own processes
        run=bench.run, backend=False, interrupted="nothing written: the table goes to {out} at the end"
    )
    return parser


# -- one policy for errors and interrupts ------------------------------------------------------------
_quiet = False  # processes other than 0 of a multi-process run print nothing


def say(message: str) -> None:
    if not _quiet:
        print(message, flush=True)


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


_RUNNING: dict = {}  # the command running now ("args", "opened" run folders), for an interrupt


def _interrupted(signum, frame) -> None:
    """SIGINT, SIGTERM or SIGHUP (`files.INTERRUPTS`). A command that runs JAX leaves at once, from
    wherever it is (a compile, a write, a garbage collector's callback that would swallow a
    KeyboardInterrupt): nothing unwinds, so nothing half-done runs on while XLA's threads do.
    Every file on disk is whole (atomic writes; the checkpoint is the truth of the epochs done);
    the temporary file of a write in progress and the locks are removed, and the message says what
    is saved. A command without JAX (`data`, Lab A) unwinds as usual, so that its own clean-ups
    run."""
    for sig in files.INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
    args = _RUNNING.get("args")
    if args is not None and not args.backend:
        raise KeyboardInterrupt
    runs = sys.modules.get(f"{__package__}.runs")
    if getattr(runs, "abandon", None) is None:  # not imported yet (or half): nothing was written
        runs = None
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


def _run_command(argv) -> int:
    _RUNNING.clear()
    args = None
    try:
        args = build_parser().parse_args(argv)
        _RUNNING["args"] = args
        if hasattr(args, "coordinator"):
            _join(args)  # before anything starts JAX's backend
        if args.backend:
            _check_backend()
        from . import runs

        with runs.tracking() as opened:
            _RUNNING["opened"] = opened
            return args.run(args)
    except (UserError, ValueError, OSError, ImportError) as e:
        print(f"jaxtrainer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # unwound: a command without JAX, or an interrupt raised in-process
        if e.args:  # the command said what it did and undid
            message = f"jaxtrainer: interrupted; {e.args[0]}"
        elif hasattr(args, "interrupted"):  # a command that trains nothing says what it keeps
            message = f"jaxtrainer: interrupted; {args.interrupted.format(out=args.out)}"
        else:
            message = _interrupted_message(
                args, _RUNNING.get("opened", []), sys.modules.get(f"{__package__}.runs")
            )
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
    runs = sys.modules.get(f"{__package__}.runs")
    epochs = [(f, runs.epochs_on_disk(f)) for f in _RUNNING.get("opened", [])] if runs else []
    saved = [f"{f} ({n} epochs)" for f, n in epochs if n]
    return f"; saved so far: {', '.join(saved)}" if saved else ""


def _out_of_memory(error: Exception) -> bool:
    """A program bigger than the memory (XLA's RESOURCE_EXHAUSTED, or the host's MemoryError) is
    the environment's limit, not a bug."""
    return isinstance(error, MemoryError) or str(error).startswith("RESOURCE_EXHAUSTED")


def _peer_failed(error: Exception) -> None:
    """A collective that broke because another process of a multi-process run died: one line, and
    leave at once (a normal exit would wait for the dead process at JAX's shutdown barrier)."""
    distributed = sys.modules.get(f"{__package__}.distributed")
    if distributed is None or not distributed.peer_failed(error):
        return
    print(
        f"jaxtrainer: error: another process of this multi-process run stopped ({str(error).splitlines()[0]})"
        f"{_saved_so_far()}. Run the same command on every process again to continue",
        file=sys.stderr,
        flush=True,
    )
    sys.modules[f"{__package__}.runs"].abandon()
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


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's entry point. Interrupts leave the process (exit 130); called in-process,
    the caller's signal handlers and streams are restored on return."""
    handlers = {sig: signal.signal(sig, _interrupted) for sig in files.INTERRUPTS}
    streams, format_warning = (sys.stdout, sys.stderr), warnings.formatwarning
    sys.stdout, sys.stderr = _Output(sys.stdout), _Output(sys.stderr)
    warnings.formatwarning = _one_line_warnings(format_warning)
    log, handler = logging.getLogger(__package__), logging.StreamHandler(sys.stdout)
    level, _ = log.level, log.addHandler(handler)  # the engine's messages, as said: one line each
    log.setLevel(logging.INFO)
    try:
        return _run_command(argv)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        sys.stdout, sys.stderr = streams
        warnings.formatwarning = format_warning
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())
