"""`jaxtrainer train`: one network, one learning rate, one seed."""

from __future__ import annotations

import logging

from . import options

log = logging.getLogger(__name__)
EPOCHS = 5


def add_parser(sub) -> None:
    """`train`: --lr and --seed take one value each; --resume and --export are its own."""
    p = sub.add_parser(
        "train",
        help="train one MLP or CNN: logs.json, logs.csv, curves.png, checkpoint.npz",
        description="Train one MLP or CNN regressor of the rotation angle (MSE; Adam unless --optimizer "
        "says otherwise), and write "
        "the run folder: logs.json, logs.csv, curves.png, checkpoint.npz. The same command again "
        "continues the run from its last saved epoch (to more --epochs too).",
    )
    options.run_options(p, "train", EPOCHS, several=False)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out, which must hold one (same configuration) (default: off)",
    )
    p.add_argument(
        "--export",
        metavar="PATH",
        help="also write the weights as a state_dict (.pt, .npz, .safetensors) (default: none)",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    """Trains (or continues) one run, logs its final errors and the paths written; returns 0."""
    from ..experiments import single

    spec = options.spec(args, [(args.lr, args.seed)])
    result = single.run(
        spec, args.out, progress=not args.no_progress, mode=options.mode(args), export=args.export
    )
    logs = result["logs"]
    log.info(
        f"final: train_mae {logs['train_mae'][-1]:.4f}  test_mae {logs['test_mae'][-1]:.4f}  "
        f"test_loss {logs['test_loss'][-1]:.4f}  ({result['meta']['seconds']:.1f} s)"
    )
    for path in result["paths"].values():
        log.info(f"wrote {path}")
    return 0
