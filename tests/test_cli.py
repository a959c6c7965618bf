"""The command line's grammar and policy: every option documented with its default, errors in flag
names, one policy for an existing --out, --no-progress everywhere, and which errors are one line
(user and environment) or a traceback (bugs)."""

import argparse
import logging
import os

import pytest

from jaxtrainer import compile_cache, distributed
from jaxtrainer.cli import build_parser, main
from jaxtrainer.cli import train as train_command
from jaxtrainer.errors import InputError

TINY = ["--hidden", "8", "--epochs", "1", "--no-progress"]


def leaf_parsers(parser=None, path=()):
    """(command words, parser) of every command that runs, sub-commands included."""
    parser = parser or build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from leaf_parsers(child, (*path, name))


LEAVES = dict(leaf_parsers())


def test_the_commands_are_the_documented_ones():
    assert set(LEAVES) == {
        ("train",),
        ("sweep",),
        ("homework",),
        ("data", "build-rotated"),
        ("grade",),
        ("launch",),
        ("bench",),
        ("lab", "bayesnet"),
        ("lab", "logreg"),
        ("lab", "mlp"),
        ("lab", "mnist"),
    }


@pytest.mark.parametrize("command", sorted(LEAVES), ids=" ".join)
def test_every_command_and_option_is_described_with_its_default(command):
    parser = LEAVES[command]
    assert parser.description and len(parser.description) > 40, command
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        said = "required" if action.required else "default"
        assert action.help and said in action.help, (command, action.option_strings, action.help)
        if action.default not in (None, False, argparse.SUPPRESS) and not isinstance(action.default, list):
            shown = f"{action.default:g}" if isinstance(action.default, float) else str(action.default)
            assert shown in action.help, (command, action.option_strings, action.help)


@pytest.mark.parametrize(
    "command, epochs",
    [
        (("train",), 5),
        (("sweep",), 5),
        (("homework",), 50),
        (("lab", "logreg"), 5),
        (("lab", "mnist"), 10),
        (("bench",), 4),
    ],
)
def test_epochs_shows_the_default_the_command_uses(command, epochs):
    action = next(a for a in LEAVES[command]._actions if "--epochs" in a.option_strings)
    assert action.default == epochs and action.help.endswith(f"(default: {epochs})")


@pytest.mark.parametrize("command", sorted(LEAVES), ids=" ".join)
def test_no_progress_is_on_every_command(command, tmp_path):
    required = {
        ("data", "build-rotated"): ["--source", "s", "--out", "o"],
        ("grade",): ["a.py"],
    }.get(command, [])
    args = build_parser().parse_args([*command, *required, "--no-progress"])
    assert args.no_progress is True


def test_launch_passes_no_progress_on_to_its_processes(monkeypatch):
    started = []
    monkeypatch.setattr("jaxtrainer.launch.launch", lambda command, n, devices: started.append(command) or 0)
    assert main(["launch", "--no-progress", "-n", "2", "--", "sweep", "--epochs", "1"]) == 0
    assert started == [["sweep", "--epochs", "1", "--no-progress"]]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "-1"], "argument --epochs: must be an int >= 0, got -1"),
        (["train", "--lr", "0"], "argument --lr: must be a finite number > 0, got 0.0"),
        (["sweep", "--batch-size", "0"], "argument --batch-size: must be an int > 0, got 0"),
        (["train", "--channels", "4", "0"], "argument --channels: must be an int > 0, got 0"),
        (
            ["train", "--activation", "gelu"],
            "argument --activation: must be one of ('relu', 'tanh', 'sigmoid')",
        ),
        (["lab", "mnist", "--epochs", "x"], "argument --epochs: must be an int >= 0, got 'x'"),
        (["lab", "mlp", "--depth", "1", "-2"], "argument --depth: must be an int >= 0, got -2"),
        (["launch", "-n", "0", "--", "sweep"], "argument -n/--num-processes: must be an int >= 1"),
    ],
)
def test_a_bad_value_is_refused_by_its_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"jaxtrainer {' '.join(argv[: 2 if argv[0] == 'lab' else 1])}: error: ")
    assert message in last


def test_a_cnn_whose_layer_lists_disagree_is_refused_in_flag_names(tmp_path, capsys):
    argv = [
        "train",
        "--network",
        "cnn",
        "--channels",
        "4",
        "8",
        "--kernels",
        "3",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "jaxtrainer: error: --channels, --kernels and --strides must have the same length, got 2, 1 "
        "and 3 (NetworkConfiguration(--channels=(4, 8), --kernels=(3,), --strides=(1, 1, 1), "
        "--hidden=(256, 256)))\n"
    )
    assert not (tmp_path / "r").exists()


# -- errors: one line for the user's, a traceback for a bug -------------------------------------------
@pytest.mark.parametrize(
    "error",
    [InputError("--lr is wrong"), FileNotFoundError(2, "No such file", "x.png"), ImportError("no scipy")],
)
def test_user_and_environment_errors_are_one_line(error, monkeypatch, tmp_path, capsys):
    def fails(args):
        raise error

    monkeypatch.setattr(train_command, "run", fails)
    assert main(["train", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == f"jaxtrainer: error: {error}\n"


def test_a_value_error_from_inside_the_engine_keeps_its_traceback(monkeypatch, tmp_path):
    """A bug's ValueError (here from a function the command calls) is not taken for a user error."""

    def engine_bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("jaxtrainer.data.load", engine_bug)
    with pytest.raises(ValueError, match="operands could not be broadcast") as raised:
        main(["train", *TINY, "--out", str(tmp_path / "r")])
    assert not isinstance(raised.value, InputError)


# -- one policy for an existing --out --------------------------------------------------------------------
def test_train_resume_with_nothing_to_resume_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert main(["train", *TINY, "--resume", "--out", str(out)]) == 2
    assert "no run to resume" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["train", *TINY],
        ["sweep", *TINY],
        ["homework", "--dataset", "digits", "--epochs", "1", "--no-progress"],
        ["lab", "logreg", "--dataset", "digits", "--epochs", "1", "--no-progress"],
    ],
    ids=lambda c: c[0] if c[0] != "lab" else "lab",
)
def test_a_run_command_refuses_an_out_of_other_files(command, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxtrainer: error: ") and "notes.txt" in err and "--overwrite" in err
    assert sorted(os.listdir(out)) == ["notes.txt"]


def _fake_build(monkeypatch):
    def build(source, out, **kwargs):
        os.makedirs(os.path.join(out, "train"))
        os.makedirs(os.path.join(out, "test"))
        return {"out": out, "n_train": 1, "n_test": 1, "seed": 0, "max_angle": 90}

    monkeypatch.setattr("jaxtrainer.data.build.build_rotated", build)


def test_build_rotated_out_policy(monkeypatch, tmp_path, capsys):
    _fake_build(monkeypatch)
    out = tmp_path / "built"
    argv = ["data", "build-rotated", "--source", str(tmp_path), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (out / "train" / "old.png").write_text("old")
    assert main(argv) == 2
    assert (
        "already holds files (test, train): choose another --out, or add --overwrite"
        in capsys.readouterr().err
    )
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["test", "train"] and os.listdir(out / "train") == []
    (out / "notes.txt").write_text("keep")
    assert main([*argv, "--overwrite"]) == 2
    assert "holds files this command did not write (notes.txt)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep" and (out / "train").is_dir()


def test_build_rotated_into_an_empty_folder(monkeypatch, tmp_path):
    _fake_build(monkeypatch)
    (tmp_path / "empty").mkdir()
    assert main(["data", "build-rotated", "--source", str(tmp_path), "--out", str(tmp_path / "empty")]) == 0
    assert sorted(os.listdir(tmp_path / "empty")) == ["test", "train"]


def test_grade_out_policy(monkeypatch, tmp_path, capsys):
    from jaxtrainer.grade.session import Session

    monkeypatch.setattr(Session, "run", lambda self: 0)
    out = tmp_path / "grades"
    (out / "submissions" / "alice").mkdir(parents=True)
    for name in ("grades.json", "grades.csv", "similarity.csv", "notes.txt"):
        (out / name).write_text("old")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (out / "similarity.html").symlink_to(outside)
    argv = ["grade", str(tmp_path / "a.py"), "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert "already holds files (grades.csv, grades.json, notes.txt, ...)" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["notes.txt"] and outside.read_text() == "keep"


def test_bench_out_policy(monkeypatch, tmp_path, capsys):
    from jaxtrainer import bench

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "measure", interrupted)
    out = tmp_path / "results"
    out.mkdir()
    for name in ("compare.json", "compare.md", "notes.txt"):
        (out / name).write_text("old")
    assert main(["bench", "--out", str(out), "--no-progress"]) == 2
    assert "already holds files (compare.json, compare.md, notes.txt)" in capsys.readouterr().err
    assert main(["bench", "--out", str(out), "--overwrite", "--no-progress"]) == 130
    assert sorted(os.listdir(out)) == ["notes.txt"]


# -- output: the "jaxtrainer" logger, configured by main ----------------------------------------------
def _logs_both(args):
    logging.getLogger("jaxtrainer.experiments").info("an info line")
    logging.getLogger("jaxtrainer.experiments").warning("a warning line")
    return 0


def test_main_logs_the_message_alone_to_stdout_and_restores_the_logger(monkeypatch, tmp_path, capsys):
    enabled = []
    monkeypatch.setattr(compile_cache, "enable", lambda: enabled.append(True))
    monkeypatch.setattr(train_command, "run", _logs_both)
    logger = logging.getLogger("jaxtrainer")
    before = (list(logger.handlers), logger.level, logger.propagate)
    assert main(["train", "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out == "an info line\na warning line\n"
    assert (list(logger.handlers), logger.level, logger.propagate) == before
    assert enabled == [True]  # the persistent compilation cache: turned on by the command, not by imports


def test_processes_other_than_0_log_only_warnings(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(distributed, "initialize", lambda *args: True)
    monkeypatch.setattr(distributed, "is_writer", lambda: False)

    def prints_and_logs(args):
        print("a printed line")
        return _logs_both(args)

    monkeypatch.setattr("jaxtrainer.cli.sweep.run", prints_and_logs)
    assert main(["sweep", "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out == "a warning line\n"


def test_an_error_caused_by_a_lost_peer_is_the_lost_peer_line(monkeypatch, tmp_path, capfd):
    """A collective broken by a dead process, reaching the command as the cause of another error
    (process 0 "could not open" the folder because the collective that told the others broke):
    the documented line, exit 2, at once (`os._exit`: not JAX's shutdown barrier)."""
    from jaxtrainer.runs import RunError

    class Broken(Exception):
        pass

    def fails(args):
        try:
            raise Broken("UNKNOWN: Gloo AllGather failed: Connection reset by peer")
        except Broken:
            raise RunError("process 0 could not open the run folder") from None

    def leaves(code):
        raise SystemExit(code)

    monkeypatch.setattr(distributed, "peer_failed", lambda error: isinstance(error, Broken))
    monkeypatch.setattr(train_command, "run", fails)
    monkeypatch.setattr(os, "_exit", leaves)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(tmp_path / "r")])
    assert exit_.value.code == 2
    assert capfd.readouterr().err == (
        "jaxtrainer: error: another process of this multi-process run stopped (UNKNOWN: Gloo AllGather "
        "failed: Connection reset by peer). Run the same command on every process again to continue\n"
    )
