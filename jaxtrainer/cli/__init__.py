"""The `jaxtrainer` command: one file per command, each with `add_parser(sub)` and `run(args)`;
`options` holds the options they share, `policy` the one policy for output, errors and
interrupts."""

from __future__ import annotations

import argparse
from typing import Sequence

from .. import __version__
from . import bench, data, grade, homework, lab, launch, policy, sweep, train

COMMANDS = (train, sweep, homework, data, lab, grade, launch, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxtrainer",
        description="Train the homework's networks with JAX, grade students' PyTorch solutions, and "
        "run the course's labs. `jaxtrainer COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(backend=True)  # the command runs JAX: its backend is checked first
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's entry point (`jaxtrainer`, `python -m jaxtrainer`)."""
    return policy.main(argv, build_parser)
