"""`jaxtrainer homework`: the homework's experiments 1-4, every run, the figures and report.md."""

from __future__ import annotations

import logging

from .. import presets
from . import options

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """`homework`: a training command, so it accepts the multi-process options."""
    p = sub.add_parser(
        "homework",
        help="the homework's experiments 1-4: every run, the figures and report.md",
        description="Run the homework's four experiments (learning rates, MLP against CNN, network "
        "shapes, equivariance to shifts and rotations) on --dataset and write their runs, figures, "
        "summary.json and report.md in --out. The same command again continues where it stopped.",
    )
    options.training_options(p, presets.EPOCHS)
    options.data_options(p, None, "./rotated_fashion_mnist, the homework's folder")
    options.output_options(p, "runs/homework")
    options.shared(p, "--no-progress")
    options.shared(p, "--conv-impl")
    options.distributed_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    """Runs (or continues) the four experiments, logs the equivariance errors; returns 0."""
    from ..experiments.homework import run_homework

    result = run_homework(
        options.spec(args), args.out, mode=options.mode(args), progress=not args.no_progress
    )
    s = result["summary"]
    log.info(
        f"done in {s['seconds']:.1f} s; shift error {s['equivariance']['shift_error']:.4f}, "
        f"rotation error {s['equivariance']['rotation_error']:.4f}"
    )
    log.info(f"wrote {result['paths']['report']} (and the runs' logs, figures, summary.json)")
    return 0
