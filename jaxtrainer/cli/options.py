"""The options several commands share, one spelling per concept (a flag taking several values is
named in the singular, like its one-value form elsewhere), and the checks that speak in flag names.
Groups are added by function, not argparse `parents=`: parents share their Action objects, so one
command's set_defaults would change every command's."""

from __future__ import annotations

import argparse
import os
import re
import shutil

from .. import config, presets
from ..errors import InputError
from ..registry import ACTIVATIONS, CONV_IMPLS, DATA_DIR_DATASETS, NETWORK_TYPES, OPTIMIZERS, STRATEGIES
from .policy import UserError

# The engine's names of a network's fields, for its messages in flag names.
FLAGS = {
    "n_channels": "--channels",
    "kernel_sizes": "--kernels",
    "strides": "--strides",
    "dense_hiddens": "--hidden",
}


def in_flag_terms(message: str) -> str:
    """An engine message in flag names: `n_channels and strides ...` -> `--channels and --strides ...`."""
    return re.sub(r"\b(" + "|".join(FLAGS) + r")\b", lambda match: FLAGS[match.group(1)], message)


def checked(convert, check, doc: str | None = None):
    """An argparse `type=`: `convert`, then the engine's `check` (an unconvertible text goes to it as
    is, so the message is the engine's); argparse adds the flag: `argument --epochs: must be ...`."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = text
        try:
            return check(value)
        except ValueError as e:
            message = str(e)
            start = message.find("must ")
            raise argparse.ArgumentTypeError(message[start:] if start >= 0 else message) from None

    parse.__name__ = check.__name__.removeprefix("check_")
    parse.__doc__ = doc
    return parse


def at_least(low: int):
    """A `check` for `checked`: ints below `low` are refused, in the engine's words."""

    def check(value: int) -> int:
        if value < low:
            raise InputError(f"value must be an int >= {low}, got {value}")
        return value

    return check


def int_at_least(low: int):
    """argparse `type=`: an int >= `low`."""
    return checked(int, at_least(low))


seed = checked(int, config.check_seed, "argparse `type=`: an int in [0, 2**32 - 1] (a 32-bit PRNG key).")
lr = checked(float, config.check_lr, "argparse `type=`: a finite float > 0.")
epochs = checked(int, config.check_n_epochs, "argparse `type=`: an int >= 0.")
batch_size = checked(int, config.check_batch_size, "argparse `type=`: an int > 0.")
positive_int = batch_size  # a layer size, a count: the same check, whose message names no field


def defaults(text: str, default) -> str:
    """`text (default: DEFAULT)`, the default as the user would type it."""
    if isinstance(default, (list, tuple)):
        default = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) or "none"
    return f"{text} (default: {default})"


def option(p, flag: str, default, what: str, **kwargs) -> None:
    """`p.add_argument(flag)` whose help `what` ends with the default it uses."""
    p.add_argument(flag, default=default, help=defaults(what, default), **kwargs)


# The flags several commands add alike (`shared`), each with its one help.
SHARED = {
    "--no-progress": dict(action="store_true", help="no progress bars or per-step lines (default: shown)"),
    "--overwrite": dict(
        action="store_true",
        help="replace what an earlier command left in --out (default: continue the same run; "
        "refuse anything else; see docs/usage.md, 'An existing --out')",
    ),
    "--conv-impl": dict(
        choices=CONV_IMPLS, help="how convolutions are computed (default: im2col on CPU, lax on GPU/TPU)"
    ),
    "--strategy": dict(
        choices=STRATEGIES,
        default="auto",
        help="how the members of one architecture share a program: vmap (batched), map (one after "
        "another inside it), auto (map on CPU, vmap on GPU/TPU) (default: auto)",
    ),
}


def shared(p, *flags: str) -> None:
    """Adds each of `flags` as `SHARED` spells it (`--no-progress` is on every command)."""
    for flag in flags:
        p.add_argument(flag, **SHARED[flag])


def data_options(p, dataset: str | None, shown: str | None = None) -> None:
    """`--dataset` (None: the engine picks what `shown` says) and `--data-dir`."""
    p.add_argument(
        "--dataset",
        default=dataset,
        help=defaults(
            "'digits' (embedded), a folder with train/ and test/ <i>_<angle>.png, or "
            f"{', '.join(DATA_DIR_DATASETS)} (read from --data-dir)",
            dataset or shown,
        ),
    )
    p.add_argument(
        "--data-dir",
        help="where named datasets find their files; nothing is downloaded (default: $JAXTRAINER_DATA_DIR)",
    )


def output_options(p, out: str, what: str = "the run folder") -> None:
    """`--out` (default `out`; `what` is its help) and `--overwrite`."""
    option(p, "--out", out, what)
    shared(p, "--overwrite")


def run_options(p, command: str, n_epochs: int, several: bool) -> None:
    """What `train` and `sweep` share; --lr and --seed take one value each, or `several`."""
    network_options(p)
    training_options(p, n_epochs)
    data_options(p, "digits")
    output_options(p, f"runs/{command}")
    shared(p, "--no-progress")
    many, s = ({"nargs": "+"}, "s") if several else ({}, "")
    for flag, check, default, what in (
        ("--lr", lr, presets.DEFAULT_LR, f"learning rate{s}"),
        ("--seed", seed, presets.SEED, f"initialisation seed{s}, 0 to 2**32 - 1"),
    ):
        default = [default] if several else default
        option(p, flag, default, what, type=check, **many)


def network_options(p) -> None:
    """The network's flags, defaulting to `NetworkConfiguration`'s; a CNN's lists are checked
    together by `net_config`."""
    d = config.NetworkConfiguration()
    option(p, "--network", "mlp", "network type", choices=NETWORK_TYPES)
    for flag, nargs, default, what in (
        ("--channels", "+", d.n_channels, "a CNN's conv channels, one per layer"),
        ("--kernels", "+", d.kernel_sizes, "a CNN's kernel sizes, one per conv layer"),
        ("--strides", "+", d.strides, "a CNN's strides, one per conv layer"),
        ("--hidden", "*", d.dense_hiddens, "dense hidden sizes (none: a linear model)"),
    ):
        option(p, flag, list(default), what, type=positive_int, nargs=nargs)
    activation = checked(str, config.check_activation)
    option(p, "--activation", presets.ACTIVATION, f"one of {', '.join(ACTIVATIONS)}", type=activation)
    shared(p, "--conv-impl")


def training_options(p, n_epochs: int) -> None:
    """`--epochs` (default `n_epochs`, each command's own), `--optimizer`, `--batch-size`, `--strategy`."""
    option(p, "--epochs", n_epochs, "training epochs", type=epochs)
    option(p, "--optimizer", OPTIMIZERS[0], "optax's optimizer, by name", choices=OPTIMIZERS)
    option(p, "--batch-size", presets.BATCH_SIZE, "training batch size", type=batch_size)
    shared(p, "--strategy")


def distributed_options(p) -> None:
    """`--coordinator`, `--num-processes`, `--process-id`; unset, each comes from its environment
    variable or the cluster's launcher (docs/cluster.md)."""
    g = p.add_argument_group("several processes (docs/cluster.md; default: one, or as SLURM/Open MPI says)")
    g.add_argument(
        "--coordinator", metavar="HOST:PORT", help="process 0's address (default: $JAXTRAINER_COORDINATOR)"
    )
    g.add_argument("--num-processes", type=int, help="processes in all (default: $JAXTRAINER_NUM_PROCESSES)")
    g.add_argument(
        "--process-id", type=int, help="this process's rank, 0 first (default: $JAXTRAINER_PROCESS_ID)"
    )


def net_config(args) -> config.NetworkConfiguration:
    """The options' network, checked now (a CNN's layer lists must agree) so that a mistake is said
    in flag names before any data is read."""
    cfg = config.NetworkConfiguration(
        tuple(args.channels), tuple(args.kernels), tuple(args.strides), tuple(args.hidden)
    )
    if args.network == "cnn":
        try:
            config.check_cnn(cfg)
        except ValueError as e:
            raise InputError(in_flag_terms(str(e))) from None
    return cfg


def spec(args, members=None):
    """The command's `spec.Spec` from the shared training options; with `members`, the network's too."""
    from ..spec import Spec

    shared = ("optimizer", "batch_size", "epochs", "dataset", "data_dir", "conv_impl", "strategy")
    training = {name: getattr(args, name) for name in shared}
    if members is None:
        return Spec(**training)
    network = dict(network=args.network, net_config=net_config(args), activation=args.activation)
    return Spec(**network, members=members, **training)


def mode(args) -> str:
    """What to do with a run already in --out: continue (default), resume (it must exist), overwrite."""
    resume = getattr(args, "resume", False)
    if args.overwrite and resume:
        raise UserError("--resume and --overwrite contradict each other: choose one")
    return "overwrite" if args.overwrite else "resume" if resume else "continue"


def claim_output(out: str, overwrite: bool, owned, whole: bool = False) -> str:
    """The policy for an --out a command writes anew: missing or empty is used; holding files, it is
    refused unless --overwrite, which removes only the entries named `owned` (links removed, never
    followed). `whole`: the command creates the folder itself, so it must hold nothing else and an
    emptied one is removed."""
    try:
        present = sorted(os.listdir(out))
    except FileNotFoundError:
        return out
    except NotADirectoryError:
        raise InputError(f"--out {out!r} exists and is not a folder; choose another path") from None
    if present and not overwrite:
        raise InputError(
            f"--out {out!r} already holds files ({_listed(present)}): choose another --out, or add "
            "--overwrite to replace this command's earlier output"
        )
    others = [name for name in present if name not in owned]
    if whole and others:
        raise InputError(
            f"--out {out!r} holds files this command did not write ({_listed(others)}): "
            "--overwrite replaces only its own; choose another --out"
        )
    for name in set(owned) & set(present):
        path = os.path.join(out, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    if whole:
        os.rmdir(out)
    return out


def _listed(names) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
