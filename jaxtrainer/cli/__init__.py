"""The `jaxtrainer` command: one file per command, each with `add_parser(sub)` and `run(args)`;
`options` holds the options they share, `policy` the one policy for output, errors and
interrupts. The command modules are imported when the parser is built, so that `options` can be
imported alone (the labs' option definitions use its checks)."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    """The whole grammar; also handed to `launch`, which checks the command it wraps with it."""
    from . import bench, data, grade, homework, lab, launch, sweep, train

    parser = argparse.ArgumentParser(
        prog="jaxtrainer",
        description="Train the homework's networks with JAX, grade students' PyTorch solutions, and "
        "run the course's labs. `jaxtrainer COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # backend: the command runs JAX, its backend is checked first; grammar: for `launch`, which
    # checks the command it wraps before starting any process
    parser.set_defaults(backend=True, grammar=build_parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (train, sweep, homework, data, lab, grade, launch, bench):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's entry point (`jaxtrainer`, `python -m jaxtrainer`)."""
    from . import policy

    return policy.main(argv, build_parser)
