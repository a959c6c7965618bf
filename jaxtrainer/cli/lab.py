"""`jaxtrainer lab NAME`: the course's other labs, A-D (their options: `labs/commands.py`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os

from ..labs.commands import LABS
from . import options

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """`lab` with one subcommand per lab; Lab A, with no dataset, gets no run-folder options."""
    p = sub.add_parser(
        "lab",
        help="the course's other labs, A-D",
        description="The course's other labs: Lab A answers on the terminal; B-D train classifiers "
        "written by hand and write a run folder with report.md.",
    )
    lab_sub = p.add_subparsers(dest="lab", required=True, metavar="LAB")
    for name, lab in LABS.items():
        p = lab_sub.add_parser(
            name,
            help=lab.help,
            description=lab.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if lab.dataset is not None:
            options.data_options(p, lab.dataset)
            options.output_options(p, f"runs/{name}")
            options.shared(p, "--no-progress")
            options.option(p, "--epochs", lab.epochs, "epochs", type=options.epochs)
            options.option(
                p, "--seed", 0, "initialisation and validation split, 0 to 2**32 - 1", type=options.seed
            )
            options.shared(p, "--strategy")
        else:
            options.shared(p, "--no-progress")  # accepted everywhere; Lab A shows no progress
        lab.options(p)
        p.set_defaults(run=run, backend=lab.dataset is not None)


def run(args) -> int:
    """Imports the chosen lab's module only now, so `lab --help` loads none of them; returns 0."""
    lab = LABS[args.lab]
    module = importlib.import_module(f"..labs.{lab.module}", __package__)
    if lab.dataset is None:  # Lab A answers on the terminal: no data, no run folder
        module.run_from_args(args)
        return 0
    summary = module.run_from_args(args, mode=options.mode(args))
    log.info(f"wrote {os.path.join(args.out, 'report.md')} ({summary['seconds']:.1f} s)")
    return 0
