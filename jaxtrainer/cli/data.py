"""`jaxtrainer data build-rotated`: the homework's dataset from files the user has."""

from __future__ import annotations

import logging

from . import options

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """`data` and its one subcommand, `build-rotated`."""
    from ..data import cache
    from ..data.rotation import MAX_ANGLE, N_TEST, N_TRAIN

    p = sub.add_parser(
        "data",
        help="datasets from files you have (nothing is downloaded)",
        description="Datasets built from files you have; nothing is downloaded.",
    )
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    b = data_sub.add_parser(
        "build-rotated",
        help="rotated Fashion-MNIST in the homework's folder format, from the four Fashion-MNIST IDX files",
        description="Write rotated Fashion-MNIST as the homework's folder (train/ and test/ of "
        "<index>_<angle>.png) from the four Fashion-MNIST IDX files, each image turned by a "
        "seeded angle.",
    )
    options.shared(b, "--no-progress")
    b.add_argument("--source", required=True, help="folder with the four IDX files, plain or .gz (required)")
    b.add_argument("--out", required=True, help="the folder to create, with train/ and test/ (required)")
    options.shared(b, "--overwrite")
    options.option(b, "--seed", 0, "draws the angles, 0 to 2**32 - 1", type=options.seed)
    for flag, default, what in (
        ("--max-angle", MAX_ANGLE, "angles are integers in [0, max-angle]"),
        ("--n-train", N_TRAIN, "first N training images"),
        ("--n-test", N_TEST, "first N t10k images"),
    ):
        options.option(b, flag, default, what, type=int)
    b.set_defaults(run=run, backend=False, owned=("train", "test", cache.NAME))


def run(args) -> int:
    """`build-rotated`: --out must be new or empty (or --overwrite); returns the exit status."""
    from ..data import build

    options.claim_output(args.out, args.overwrite, args.owned, whole=True)
    drawn = {name: getattr(args, name) for name in ("seed", "max_angle", "n_train", "n_test")}
    info = build.build_rotated(args.source, args.out, **drawn, progress=not args.no_progress)
    log.info(
        f"wrote {info['out']}: {info['n_train']} train and {info['n_test']} test images, angles "
        f"in [0, {info['max_angle']}], seed {info['seed']}"
    )
    return 0
