"""The `jaxtrainer` command: parses arguments and calls the experiments, nothing more."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .config import NetworkConfiguration


def _network_and_data_options(p) -> None:
    """The options `train` and `sweep` share, same names and defaults."""
    d = NetworkConfiguration()
    p.add_argument("--network", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--channels", type=int, nargs="+", default=list(d.n_channels))
    p.add_argument("--kernels", type=int, nargs="+", default=list(d.kernel_sizes))
    p.add_argument("--strides", type=int, nargs="+", default=list(d.strides))
    p.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=list(d.dense_hiddens),
        help="dense hidden sizes (default: 256 256)",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--activation", default="relu", help="relu, tanh or sigmoid")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument(
        "--dataset",
        default="digits",
        help="'digits' (embedded), a folder with train/ and test/ <i>_<angle>.png, or "
        "fashion_mnist, mnist, svhn, cifar10 (read from --data-dir)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where --dataset fashion_mnist/mnist/svhn/cifar10 finds its files "
        "(default: $JAXTRAINER_DATA_DIR); nothing is downloaded",
    )
    p.add_argument(
        "--conv-impl",
        choices=("im2col", "lax"),
        default=None,
        help="default: im2col on CPU, lax.conv on GPU/TPU",
    )


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one MLP or CNN and write logs.json, logs.csv, curves.png")
    _network_and_data_options(p)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=197331)
    p.add_argument("--out", default="runs/train", help="output folder")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint in --out (same configuration, more epochs allowed)",
    )
    p.add_argument(
        "--export",
        metavar="PATH",
        help="also write the trained weights as a PyTorch state_dict (.pt, .npz, .safetensors)",
    )
    p.add_argument("--no-progress", action="store_true")


def _train(args) -> int:
    from .experiments.single import RunConfig, run

    cfg = RunConfig(
        network=args.network,
        net_config=NetworkConfiguration(
            tuple(args.channels), tuple(args.kernels), tuple(args.strides), tuple(args.hidden)
        ),
        lr=args.lr,
        batch_size=args.batch_size,
        activation=args.activation,
        epochs=args.epochs,
        dataset=args.dataset,
        data_dir=args.data_dir,
        seed=args.seed,
        conv_impl=args.conv_impl,
    )
    result = run(cfg, args.out, progress=not args.no_progress, resume=args.resume, export=args.export)
    logs = result["logs"]
    print(
        f"final: train_mae {logs['train_mae'][-1]:.4f}  test_mae {logs['test_mae'][-1]:.4f}  "
        f"test_loss {logs['test_loss'][-1]:.4f}  ({result['meta']['seconds']:.1f} s)"
    )
    for path in result["paths"].values():
        print(f"wrote {path}")
    return 0


def _data_parser(sub) -> None:
    p = sub.add_parser("data", help="datasets from files you have (nothing is downloaded)")
    commands = p.add_subparsers(dest="data_command", required=True)
    b = commands.add_parser(
        "build-rotated",
        help="rotated Fashion-MNIST in SPEC's folder format, from the four Fashion-MNIST IDX files",
    )
    b.add_argument(
        "--source",
        required=True,
        help="folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz), or a "
        "torchvision/Keras cache holding them",
    )
    b.add_argument("--out", required=True, help="the folder to create (train/, test/)")
    b.add_argument("--seed", type=int, default=0, help="draws the angles (default 0)")
    b.add_argument(
        "--max-angle", type=int, default=None, help="angles are integers in [0, max-angle] (default 90)"
    )
    b.add_argument("--n-train", type=int, default=None, help="first N training images (default 60000)")
    b.add_argument("--n-test", type=int, default=None, help="first N t10k images (default 2000)")
    b.add_argument("--no-progress", action="store_true")


def _data(args) -> int:
    from .data import build

    try:
        info = build.build_rotated(
            args.source,
            args.out,
            seed=args.seed,
            max_angle=build.MAX_ANGLE if args.max_angle is None else args.max_angle,
            n_train=build.N_TRAIN if args.n_train is None else args.n_train,
            n_test=build.N_TEST if args.n_test is None else args.n_test,
            progress=not args.no_progress,
        )
    except (ValueError, OSError, ImportError) as e:
        print(f"jaxtrainer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"jaxtrainer: interrupted; {args.out} was not written", file=sys.stderr)
        return 130
    print(
        f"wrote {info['out']}: {info['n_train']} train and {info['n_test']} test images, angles "
        f"in [0, {info['max_angle']}], seed {info['seed']}"
    )
    return 0


def _sweep_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train several learning rates / seeds of one network at once, as one compiled program"
    )
    p.add_argument("--lr", type=float, nargs="+", default=[1e-3], help="learning rates")
    p.add_argument("--seeds", type=int, nargs="+", default=[197331], help="initialisation seeds")
    p.add_argument(
        "--pair",
        action="store_true",
        help="pair --lr and --seeds element-wise instead of their cross product",
    )
    p.add_argument(
        "--strategy",
        choices=("auto", "vmap", "map"),
        default="auto",
        help="vmap: members batched; map: one after another inside the program; auto: "
        "map on CPU (measured faster there), vmap on GPU/TPU",
    )
    _network_and_data_options(p)
    p.add_argument(
        "--out",
        default="runs/sweep",
        help="output folder: one lr_<lr>_seed_<seed>/ per member, report.md, sweep.png; "
        "re-running skips finished members and resumes an interrupted sweep",
    )
    p.add_argument("--no-progress", action="store_true")


def _sweep(args) -> int:
    from .experiments.homework import run_sweep
    from .sweep import members_of

    cfg = NetworkConfiguration(
        tuple(args.channels), tuple(args.kernels), tuple(args.strides), tuple(args.hidden)
    )
    try:
        result = run_sweep(
            args.network,
            cfg,
            args.dataset,
            args.out,
            members=members_of(args.lr, args.seeds, args.pair),
            epochs=args.epochs,
            batch_size=args.batch_size,
            activation=args.activation,
            strategy=args.strategy,
            conv_impl=args.conv_impl,
            progress=not args.no_progress,
            data_dir=args.data_dir,
        )
    except KeyboardInterrupt:
        print(
            f"jaxtrainer: interrupted; the last finished epoch is saved in {args.out} "
            "(run the same command again to continue)",
            file=sys.stderr,
        )
        return 130
    print(result["table"])
    for path in result["paths"].values():
        print(f"wrote {path}")
    return 0


def _homework_parser(sub) -> None:
    p = sub.add_parser(
        "homework", help="the homework's experiments 1-4: every run, the figures and report.md"
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="'digits' (embedded), a folder with train/ and test/ <i>_<angle>.png, or "
        "fashion_mnist, mnist, svhn, cifar10 (read from --data-dir); default "
        "./rotated_fashion_mnist, as the homework",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where --dataset fashion_mnist/mnist/svhn/cifar10 finds its files "
        "(default: $JAXTRAINER_DATA_DIR); nothing is downloaded",
    )
    p.add_argument(
        "--out",
        default="runs/homework",
        help="output folder; re-running skips the runs already finished there",
    )
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--strategy",
        choices=("auto", "vmap", "map"),
        default="auto",
        help="how runs of one architecture share a program (default: by backend)",
    )
    p.add_argument(
        "--conv-impl",
        choices=("im2col", "lax"),
        default=None,
        help="default: im2col on CPU, lax.conv on GPU/TPU",
    )
    p.add_argument("--no-progress", action="store_true")


def _homework(args) -> int:
    from .experiments.homework import run_homework

    try:
        result = run_homework(
            args.dataset,
            args.out,
            epochs=args.epochs,
            batch_size=args.batch_size,
            strategy=args.strategy,
            conv_impl=args.conv_impl,
            progress=not args.no_progress,
            data_dir=args.data_dir,
        )
    except KeyboardInterrupt:
        print(
            f"jaxtrainer: interrupted; finished epochs are saved in {args.out} (run the same "
            "command again to continue)",
            file=sys.stderr,
        )
        return 130
    s = result["summary"]
    print(
        f"done in {s['seconds']:.1f} s; shift error {s['equivariance']['shift_error']:.4f}, "
        f"rotation error {s['equivariance']['rotation_error']:.4f}"
    )
    print(f"wrote {result['paths']['report']} (and the runs' logs, figures, summary.json)")
    return 0


def _bench_parser(sub) -> None:
    # Its options are jaxtrainer.bench's own; everything after `bench` goes there (--help too).
    sub.add_parser(
        "bench",
        add_help=False,
        help="PyTorch reference against jaxtrainer, per-epoch time on synthetic data "
        "(`jaxtrainer bench --help` for its options)",
    )


def _bench(rest) -> int:
    from . import bench

    return bench.main(rest, prog="jaxtrainer bench")


CLASSIFICATION_LABS = {"logreg": "logreg_lab", "mlp": "mlp_lab", "mnist": "mnist_lab"}
LABS = ("bayesnet", *CLASSIFICATION_LABS)


def _classification_lab(name: str, rest) -> int:
    """`jaxtrainer lab logreg|mlp|mnist`: the options every classification lab shares, then the
    lab's own (its module's `add_arguments`)."""
    import importlib

    from .config import check_n_epochs

    lab = importlib.import_module(f".experiments.{CLASSIFICATION_LABS[name]}", __package__)
    p = argparse.ArgumentParser(
        prog=f"jaxtrainer lab {name}",
        description=lab.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        default=lab.DEFAULT_DATASET,
        help=f"digits (embedded, offline), fashion_mnist or mnist (IDX files in "
        f"--data-dir) (default: {lab.DEFAULT_DATASET})",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="where fashion_mnist/mnist find their IDX files (default: "
        "$JAXTRAINER_DATA_DIR); nothing is downloaded",
    )
    p.add_argument("--out", default=f"runs/{name}", help=f"output folder (default: runs/{name})")
    p.add_argument("--epochs", type=int, default=lab.EPOCHS, help=f"default: {lab.EPOCHS}")
    p.add_argument("--seed", type=int, default=0, help="initialisation and validation split")
    p.add_argument(
        "--strategy",
        choices=("auto", "vmap", "map"),
        default="auto",
        help="how the learning rates of one shape train together (default: auto, "
        "map on CPU, vmap on GPU/TPU)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    lab.add_arguments(p)
    args = p.parse_args(rest)
    try:
        check_n_epochs(args.epochs)
        summary = lab.run_from_args(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"jaxtrainer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"jaxtrainer: interrupted; the finished sweeps are kept in "
            f"{os.path.join(args.out, 'sweeps')}: the same command continues from them",
            file=sys.stderr,
        )
        return 130
    print(f"wrote {os.path.join(args.out, 'report.md')} ({summary['seconds']:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxtrainer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _data_parser(sub)
    _sweep_parser(sub)
    _homework_parser(sub)
    _bench_parser(sub)
    lab = sub.add_parser("lab", help="the course's other labs", add_help=False)
    lab.add_argument("name", choices=LABS)
    args, rest = parser.parse_known_args(argv)
    if args.command == "lab" and args.name in CLASSIFICATION_LABS:
        return _classification_lab(args.name, rest)
    if args.command == "lab":
        from .experiments import bayesnet_lab

        return bayesnet_lab.main(rest)
    if args.command == "bench":
        return _bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "data":
        return _data(args)
    try:
        return {"sweep": _sweep, "homework": _homework}.get(args.command, _train)(args)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"jaxtrainer: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"jaxtrainer: interrupted; the last finished epoch is saved in {args.out} "
            "(continue with --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
