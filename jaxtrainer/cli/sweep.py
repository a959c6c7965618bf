"""`jaxtrainer sweep`: several learning rates and seeds of one network, trained as one program."""

from __future__ import annotations

import logging

from . import options

log = logging.getLogger(__name__)
EPOCHS = 5


def add_parser(sub) -> None:
    """`sweep`: --lr and --seed take several values."""
    p = sub.add_parser(
        "sweep",
        help="several learning rates / seeds of one network at once, as one program",
        description="Train one network at every (--lr, --seed) pair (their product, or element-wise "
        "with --pair) as one compiled program; one run folder per member in --out, and a table of "
        "the members' final errors. The same command again continues the members' runs.",
    )
    options.run_options(p, "sweep", EPOCHS, several=True)
    p.add_argument(
        "--pair",
        action="store_true",
        help="pair --lr and --seed element-wise, not their product (default: the product)",
    )
    options.distributed_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    """Trains every (lr, seed) member, logs the table and the paths written; returns 0."""
    from ..experiments.sweep import run_sweep
    from ..spec import members_of

    spec = options.spec(args, members_of(args.lr, args.seed, args.pair))
    result = run_sweep(spec, args.out, mode=options.mode(args), progress=not args.no_progress)
    log.info(result["table"])
    for path in result["paths"].values():
        log.info(f"wrote {path}")
    return 0
