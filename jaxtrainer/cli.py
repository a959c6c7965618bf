"""The `jaxtrainer` command: parses arguments and calls the experiments, nothing more."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .config import NetworkConfiguration


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one MLP or CNN and write logs.json, logs.csv, curves.png")
    d = NetworkConfiguration()
    p.add_argument("--network", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--channels", type=int, nargs="+", default=list(d.n_channels))
    p.add_argument("--kernels", type=int, nargs="+", default=list(d.kernel_sizes))
    p.add_argument("--strides", type=int, nargs="+", default=list(d.strides))
    p.add_argument("--hidden", type=int, nargs="*", default=list(d.dense_hiddens),
                   help="dense hidden sizes (default: 256 256)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--activation", default="relu", help="relu, tanh or sigmoid")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dataset", default="digits",
                   help="'digits' (embedded) or a folder with train/ and test/ <i>_<angle>.png")
    p.add_argument("--seed", type=int, default=197331)
    p.add_argument("--conv-impl", choices=("im2col", "lax"), default=None,
                   help="default: im2col on CPU, lax.conv on GPU/TPU")
    p.add_argument("--out", default="runs/train", help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (same configuration, more epochs allowed)")
    p.add_argument("--export", metavar="PATH",
                   help="also write the trained weights as a PyTorch state_dict (.pt, .npz, .safetensors)")
    p.add_argument("--no-progress", action="store_true")


def _train(args) -> int:
    from .experiments.single import RunConfig, run

    cfg = RunConfig(
        network=args.network,
        net_config=NetworkConfiguration(tuple(args.channels), tuple(args.kernels), tuple(args.strides),
                                        tuple(args.hidden)),
        lr=args.lr, batch_size=args.batch_size, activation=args.activation, epochs=args.epochs,
        dataset=args.dataset, seed=args.seed, conv_impl=args.conv_impl)
    result = run(cfg, args.out, progress=not args.no_progress, resume=args.resume, export=args.export)
    logs = result["logs"]
    print(f"final: train_mae {logs['train_mae'][-1]:.4f}  test_mae {logs['test_mae'][-1]:.4f}  "
          f"test_loss {logs['test_loss'][-1]:.4f}  ({result['meta']['seconds']:.1f} s)")
    for path in result["paths"].values():
        print(f"wrote {path}")
    return 0


LABS = ("bayesnet",)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxtrainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    lab = sub.add_parser("lab", help="the course's other labs", add_help=False)
    lab.add_argument("name", choices=LABS)
    args, rest = parser.parse_known_args(argv)
    if args.command == "lab":
        from .experiments import bayesnet_lab

        return bayesnet_lab.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return _train(args)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"jaxtrainer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jaxtrainer: interrupted; the last finished epoch is saved in {args.out} "
              "(continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
