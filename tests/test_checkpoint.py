"""Nothing lost: checkpoints at each epoch, resume after SIGKILL or SIGINT, state_dict export."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from jaxtrainer import data, runs, state_dict, train
from jaxtrainer.config import NetworkConfiguration
from jaxtrainer.experiments.single import run
from jaxtrainer.runs.checkpoint import read_payload
from jaxtrainer.spec import Spec
from jaxtrainer.sweeps import init_sweep
from torch_compat import reference as ref

CNN_ARGS = [
    "--network",
    "cnn",
    "--channels",
    "16",
    "32",
    "45",
    "--kernels",
    "3",
    "3",
    "3",
    "--strides",
    "1",
    "1",
    "1",
    "--hidden",
    "128",
    "--dataset",
    "digits",
    "--no-progress",
]


def cli(*args):
    return [sys.executable, "-m", "jaxtrainer", "train", *CNN_ARGS, *args]


def start_and_wait_for_first_checkpoint(out):
    proc = subprocess.Popen(
        cli("--epochs", "12", "--out", str(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not (out / runs.CHECKPOINT).exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.01)
    return proc


@pytest.mark.slow
def test_sigkill_mid_run_then_the_same_command_equals_an_uninterrupted_run(tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = start_and_wait_for_first_checkpoint(killed)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = json.loads((killed / "logs.json").read_text())["logs"]
    assert 2 <= len(saved["test_loss"]) < 13  # killed part-way, the finished epochs on disk
    again = subprocess.run(
        cli("--epochs", "12", "--out", str(killed), "--export", str(killed / "w.npz")),
        check=True,
        capture_output=True,
        text=True,
    )
    assert f"taking over a stale lock (pid {proc.pid}, no longer running)" in again.stdout
    assert f"resuming after epoch {len(saved['test_loss']) - 1} from" in again.stdout
    subprocess.run(
        cli("--epochs", "12", "--out", str(whole), "--export", str(whole / "w.npz")),
        check=True,
        capture_output=True,
    )
    assert (killed / "logs.csv").read_text() == (whole / "logs.csv").read_text()
    a, b = (
        state_dict.import_state_dict(str(killed / "w.npz")),
        state_dict.import_state_dict(str(whole / "w.npz")),
    )
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_sigint_leaves_a_clean_checkpoint_partial_logs_and_a_one_line_message(tmp_path):
    out = tmp_path / "run"
    proc = start_and_wait_for_first_checkpoint(out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err
    logs = json.loads((out / "logs.json").read_text())["logs"]
    n = len(logs["train_loss"]) - 1
    assert err.strip().splitlines()[-1] == (
        f"jaxtrainer: interrupted; the last finished epoch is saved in {out} ({n} epoch{'s' * (n != 1)}): "
        "run the same command again to continue"
    )
    assert not (out / runs.LOCK).exists()
    assert 2 <= len(logs["train_loss"]) < 13 and all(len(v) == len(logs["train_loss"]) for v in logs.values())
    spec = Spec("cnn", NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,)), epochs=12)
    template = init_sweep(spec, (1, 28, 28))[1]  # a run is a sweep of one
    ds = data.load("digits")
    identity = {"kind": "train", **spec.identity(data.fingerprint(ds.train, ds.test))}
    state, epoch, saved, saved_identity = runs.load_checkpoint(str(out / runs.CHECKPOINT), template)
    assert saved_identity == runs.plain(identity)
    assert epoch == len(saved[0]["train_loss"]) - 1 == n >= 1
    assert read_payload(str(out / runs.CHECKPOINT))["seconds"] > 0
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in __import__("jax").tree.leaves(state))


@pytest.mark.slow
def test_resume_refuses_a_different_configuration(tmp_path):
    spec = Spec("mlp", NetworkConfiguration(dense_hiddens=(8,)), epochs=1)
    run(spec, str(tmp_path), progress=False)
    with pytest.raises(
        ValueError, match=r"different configuration \(members\.lrs: saved \[0\.001\], now \[0\.01\]\)"
    ):
        run(
            spec.replace(members=[(0.01, spec.members[0][1])], epochs=2),
            str(tmp_path),
            progress=False,
            mode="resume",
        )
    with pytest.raises(
        ValueError,
        match=r"refusing to continue it with a different configuration "
        r"\(net_config\.dense_hiddens: saved \[8\], now \[16\]\)\. .* use --overwrite to start over",
    ):
        run(
            spec.replace(net_config=NetworkConfiguration(dense_hiddens=(16,)), epochs=2),
            str(tmp_path),
            progress=False,
        )
    with pytest.raises(ValueError, match="no run to resume in .*empty: it holds no run.json"):
        run(spec, str(tmp_path / "empty"), progress=False, mode="resume")


def test_a_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / runs.CHECKPOINT).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"checkpoint\.npz is not a readable jaxtrainer checkpoint"):
        runs.load_checkpoint(str(tmp_path / runs.CHECKPOINT), {})


@pytest.mark.slow
@pytest.mark.parametrize("ext", [".pt", ".npz"])
def test_exported_state_dict_loads_into_the_torch_reference_model(ext, tmp_path):
    path = str(tmp_path / f"model{ext}")
    result = run(
        Spec("cnn", NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,)), epochs=1),
        str(tmp_path / "run"),
        progress=False,
        export=path,
    )
    torch_net = ref.Trainer.create_cnn(
        1, ref.NetworkConfiguration((16, 32, 45), (3, 3, 3), (1, 1, 1), (128,)), torch.nn.ReLU()
    )
    loaded = (
        torch.load(path)
        if ext == ".pt"
        else {k: torch.from_numpy(v) for k, v in state_dict.import_state_dict(path).items()}
    )
    torch_net.load_state_dict(loaded)
    ds = data.load("digits")
    pred = torch_net(torch.from_numpy(ds.X_test)).detach().numpy()
    assert float(np.mean((pred - ds.y_test) ** 2)) == pytest.approx(result["logs"]["test_loss"][-1], rel=1e-5)


def test_export_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match=r"extension must be one of \('\.pt', '\.npz', '\.safetensors'\)"):
        state_dict.export_state_dict({}, str(tmp_path / "model.h5"))


@pytest.mark.slow
def test_a_diverging_run_reports_its_epoch_and_keeps_nan_logs(tmp_path, capsys):
    result = run(
        Spec("mlp", NetworkConfiguration(dense_hiddens=(64, 64)), members=[(1e25, 0)], epochs=4),
        str(tmp_path),
        progress=True,
    )
    logs = result["logs"]
    epoch = train.divergence_epoch(logs)
    assert epoch is not None and 1 <= epoch <= 4
    assert result["meta"]["diverged_at_epoch"] == epoch
    assert all(len(v) == 5 for v in logs.values())
    assert all(np.isfinite(v[:epoch]).all() for v in logs.values())
    assert np.isnan(logs["train_loss"][-1])
    assert f"diverged: lr 1e+25: the loss is not finite after epoch {epoch}" in capsys.readouterr().err
    assert (tmp_path / "curves.png").stat().st_size > 5_000
    assert "NaN" in (tmp_path / "logs.json").read_text()


@pytest.mark.slow
def test_evaluating_an_svhn_size_test_set_stays_under_2_gib(tmp_path):
    """26,032 3x32x32 images through the default CNN, in a fresh process. Its peak is read from
    /proc's VmHWM (this process image's own high-water mark): getrusage's ru_maxrss is kept across
    fork and exec, so it reports at least the pytest process's own peak (3 GiB after the parity tests)."""
    script = (
        "import numpy as np\n"
        "from jaxtrainer import models, train\n"
        "from jaxtrainer.config import NetworkConfiguration\n"
        "X = np.random.default_rng(0).random((26032, 3, 32, 32), dtype=np.float32)\n"
        "X *= 2\n"
        "X -= 1\n"
        "y = np.zeros((26032, 1), np.float32)\n"
        "graphdef, state = train.init_state(\n"
        "    models.build_network('cnn', (3, 32, 32), NetworkConfiguration()), 1e-3)\n"
        "m = train.evaluate(graphdef, state.params, X, y)\n"
        "assert np.isfinite(float(m['loss']))\n"
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    peak_mib = int(out.stdout.split()[-1]) / 1024  # VmHWM is in kB
    assert peak_mib < 2048, peak_mib


@pytest.mark.slow
def test_trainer_train_loop_resumes_from_its_checkpoint(tmp_path):
    from torch_compat import Trainer

    def trainer(folder):
        return Trainer(
            "cnn",
            NetworkConfiguration((4, 8), (3, 3), (1, 1), (16,)),
            dataset="digits",
            progress=False,
            checkpoint_dir=str(folder),
        )

    whole = trainer(tmp_path / "whole").train_loop(3)
    trainer(tmp_path / "part").train_loop(1)  # "interrupted" after one epoch
    resumed = trainer(tmp_path / "part")
    logs = resumed.train_loop(3, resume=True)
    assert logs == whole
    with pytest.raises(ValueError, match=r"different configuration \(lr: saved 0\.001, now 0\.01\)"):
        Trainer(
            "cnn",
            NetworkConfiguration((4, 8), (3, 3), (1, 1), (16,)),
            lr=0.01,
            dataset="digits",
            progress=False,
            checkpoint_dir=str(tmp_path / "part"),
        ).train_loop(3, resume=True)
    with pytest.raises(ValueError, match=r"resume=True needs a checkpoint folder"):
        Trainer("mlp", dataset="digits", progress=False).train_loop(1, resume=True)
