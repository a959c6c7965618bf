"""`jaxtrainer launch`: a command as N processes on this machine, one multi-process run."""

from __future__ import annotations

import argparse

from . import options
from .policy import UserError

_LAUNCH_SETS = ("coordinator", "num_processes", "process_id")  # what launch gives each process


def add_parser(sub) -> None:
    """`launch`; everything after `--` is the command each process runs."""
    p = sub.add_parser(
        "launch",
        help="run a command as N processes on this machine (a multi-process sweep or homework, to try it)",
        description="Starts N copies of `jaxtrainer COMMAND ...` joined as one multi-process run "
        "(coordinator on 127.0.0.1). Clusters use their own launchers: docs/cluster.md.",
    )
    p.add_argument(
        "-n", "--num-processes", type=options.int_at_least(1), default=2, help="processes (default: 2)"
    )
    p.add_argument(
        "--devices", type=options.int_at_least(1), default=1, help="CPU devices per process (default: 1)"
    )
    options.shared(p, "--no-progress")  # the processes' own: add --no-progress to the command
    p.add_argument(
        "command_line",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND ...",
        help="the command each process runs",
    )
    p.set_defaults(run=run, backend=False)  # its processes run JAX, not itself


def run(args) -> int:
    """Parses the wrapped command first, so a bad one fails before any process starts; returns its status."""
    from ..launch import launch

    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise UserError(
            "launch needs a command to run, e.g. `jaxtrainer launch -n 2 -- sweep --lr 1e-2 1e-3`"
        )
    wrapped = args.grammar().parse_args(command)  # a command that cannot run fails before any starts
    owned = [
        f"--{dest.replace('_', '-')}" for dest in _LAUNCH_SETS if getattr(wrapped, dest, None) is not None
    ]
    if owned:
        raise UserError(
            f"launch gives each process its {', '.join(owned)} itself: remove "
            f"{'it' if len(owned) == 1 else 'them'} from the command"
        )
    if args.no_progress and not wrapped.no_progress:
        command = [*command, "--no-progress"]
    return launch(command, args.num_processes, args.devices)
