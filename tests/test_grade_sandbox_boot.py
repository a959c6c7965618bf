"""jaxtrainer/grade/sandbox_boot.py, run as the sandbox runs it: by its path, in a fresh isolated
interpreter (-I: no PYTHONPATH, the worktree not on the path), with the grader's loader data."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from jaxtrainer.grade import sandbox_boot
from jaxtrainer.grade.loader_data import write_loader_data

BOOT = os.path.abspath(sandbox_boot.__file__)

# After install(): every connection or datagram the student's process would send, and every name it
# would resolve, is recorded in NETWORK and refused, so a test sees any attempt to reach the network.
PRELUDE = """
import json, runpy, socket, sys
boot = runpy.run_path({boot!r})
boot["install"]({data_root!r})
NETWORK = []
def spy(what):
    def refuse(*args, **kwargs):
        NETWORK.append(what)
        raise OSError("the test refuses the network")
    return refuse
for name in ("connect", "connect_ex", "sendto", "sendmsg"):
    setattr(socket.socket, name, spy(name))
for name in ("getaddrinfo", "gethostbyname", "create_connection"):
    setattr(socket, name, spy(name))
"""


def run_boot(code: str, cwd, data_root=None) -> dict:
    """Run PRELUDE + `code` by the boot file's path in a fresh `python -I`; `code` prints one JSON
    line, returned as a dict."""
    script = PRELUDE.format(boot=BOOT, data_root=data_root) + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A student's working folder holding ./data as the grader writes it, and what was written."""
    folder = tmp_path_factory.mktemp("student")
    written = write_loader_data(str(folder / "data"), n_train=60, n_test=20)
    return folder, written


def test_install_imports_nothing_and_is_idempotent(tmp_path):
    out = run_boot(
        """
        boot2 = runpy.run_path(boot["__file__"])  # a second copy of the file, as a second install would
        boot2["install"](None)
        boot["install"](None)
        hooks = [f for f in sys.meta_path if getattr(f, "_jaxtrainer_grading_offline", False)]
        loaded = sorted(m for m in ("torch", "torchvision", "jaxtrainer", "torch_compat") if m in sys.modules)
        print(json.dumps({"hooks": len(hooks), "loaded": loaded, "network": NETWORK}))
        """,
        cwd=tmp_path,
    )
    assert out == {"hooks": 1, "loaded": [], "network": []}


@pytest.mark.slow
def test_torchvision_imports_beside_the_cpu_torch_and_its_transforms_work(tmp_path):
    out = run_boot(
        """
        import numpy as np, torch, torchvision
        from PIL import Image
        from torchvision import transforms
        from torchvision.transforms import InterpolationMode
        import torchvision.transforms.functional as TF

        pixels = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3) * 3
        image = Image.fromarray(pixels)
        x = transforms.ToTensor()(image)
        normalized = transforms.Normalize((0.5, 0.25, 0.1), (0.5, 0.5, 2.0))(x)
        rotated = TF.affine(x, angle=90.0, translate=[0, 0], scale=1.0, shear=[0.0],
                            interpolation=InterpolationMode.NEAREST)
        try:
            torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
            ops = "ran"
        except RuntimeError as e:
            ops = str(e)
        print(json.dumps({
            "x": x.tolist(), "to_tensor": TF.to_tensor(image).tolist(), "normalized": normalized.tolist(),
            "rotated": rotated.tolist(), "ops": ops, "network": NETWORK,
            "jaxtrainer": "jaxtrainer" in sys.modules or "torch_compat" in sys.modules,
        }))
        """,
        cwd=tmp_path,
    )
    pixels = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3) * 3
    expected = pixels.transpose(2, 0, 1) / np.float32(255)
    np.testing.assert_allclose(out["x"], expected, rtol=1e-6)
    np.testing.assert_allclose(out["to_tensor"], expected, rtol=1e-6)
    mean, std = np.array([0.5, 0.25, 0.1])[:, None, None], np.array([0.5, 0.5, 2.0])[:, None, None]
    np.testing.assert_allclose(out["normalized"], (expected - mean) / std, rtol=1e-5, atol=1e-6)
    # TF.affine turns clockwise: a quarter turn of a square image is np.rot90 the other way
    np.testing.assert_array_equal(out["rotated"], np.rot90(np.array(out["x"]), k=-1, axes=(1, 2)))
    assert out["ops"].startswith("Couldn't load custom C++ ops")  # torchvision's own clear error
    assert out["network"] == [] and out["jaxtrainer"] is False


@pytest.mark.slow
def test_svhn_and_cifar10_read_the_local_copies_offline(served):
    folder, written = served
    out = run_boot(
        """
        import numpy as np, torch, torchvision
        from torchvision import transforms
        SVHN, CIFAR10 = torchvision.datasets.SVHN, torchvision.datasets.CIFAR10
        arrays = {}
        for split in ("train", "test"):
            sets = {
                "svhn": SVHN(root="./data", split=split, download=True, transform=transforms.ToTensor()),
                "cifar": CIFAR10(root="./data", train=split == "train", download=True,
                                 transform=transforms.ToTensor()),
            }
            for name, dataset in sets.items():
                images, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=1000)))
                arrays[f"{name}_{split}_images"] = images.numpy()
                arrays[f"{name}_{split}_labels"] = labels.numpy()
        np.savez("read.npz", **arrays)
        print(json.dumps({"network": NETWORK, "label_dtype": str(labels.dtype)}))
        """,
        cwd=folder,
    )
    assert out == {"network": [], "label_dtype": "torch.int64"}
    read = np.load(folder / "read.npz")
    for name in ("svhn", "cifar"):
        for split in ("train", "test"):
            images, labels = written[split]
            np.testing.assert_allclose(read[f"{name}_{split}_images"], images / np.float32(255), rtol=1e-6)
            np.testing.assert_array_equal(read[f"{name}_{split}_labels"], labels)
    assert sorted(np.unique(written["train"][1])) == list(range(10))  # digit 0 is SVHN's label 10 on disk


@pytest.mark.slow
def test_a_data_set_without_a_local_copy_fails_offline_with_a_clear_error(tmp_path):
    out = run_boot(
        """
        import time, urllib.request, torchvision
        errors = {}
        attempts = {
            "svhn": lambda: torchvision.datasets.SVHN(root="./data", split="train", download=True),
            "cifar100": lambda: torchvision.datasets.CIFAR100(root="./data", download=True),
            "fashion": lambda: torchvision.datasets.FashionMNIST(root="./data", download=True),
            "emnist": lambda: torchvision.datasets.EMNIST(root="./data", split="digits", download=True),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except RuntimeError as e:
                errors[name] = str(e)
        print(json.dumps({"errors": errors, "network": NETWORK}))
        """,
        cwd=tmp_path,
    )
    data = os.path.join(os.path.realpath(tmp_path), "data")
    assert out["network"] == []
    assert out["errors"] == {
        "svhn": f"grading is offline: torchvision.datasets.SVHN has no local copy under {data} "
        "(no train_32x32.mat), and nothing is downloaded",
        "cifar100": f"grading is offline: torchvision.datasets.CIFAR100 has no local copy under {data} "
        "(no cifar-100-python/train), and nothing is downloaded",
        "fashion": f"grading is offline: torchvision.datasets.FashionMNIST has no local copy under {data} "
        "(no FashionMNIST/raw/train-images-idx3-ubyte), and nothing is downloaded",
        "emnist": "grading is offline: torchvision cannot download "
        "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip; nothing is downloaded here",
    }


def test_urllib_fails_at_once_without_the_network(tmp_path):
    script = f"""
import json, runpy, time, urllib.error, urllib.request
runpy.run_path({BOOT!r})["install"]()
start = time.perf_counter()
try:
    urllib.request.urlopen("http://ufldl.stanford.edu/housenumbers/train_32x32.mat", timeout=60)
    error = None
except urllib.error.URLError as e:
    error = str(e.reason)
print(json.dumps({{"error": error, "seconds": time.perf_counter() - start}}))
"""
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    out = json.loads(done.stdout)
    assert out["error"] == "[Errno -2] grading is offline: no network, cannot resolve 'ufldl.stanford.edu'"
    assert out["seconds"] < 1.0


@pytest.mark.slow
def test_the_graders_data_root_serves_any_root(served, tmp_path):
    folder, written = served
    out = run_boot(
        """
        import torchvision
        dataset = torchvision.datasets.SVHN(root="/content/drive/MyDrive/data", split="test", download=True)
        cifar = torchvision.datasets.CIFAR10(root="data/", train=False, download=False)
        print(json.dumps({"n": len(dataset), "root": dataset.root, "labels": dataset.labels.tolist(),
                          "cifar_root": cifar.root, "network": NETWORK}))
        """,
        cwd=tmp_path,
        data_root=str(folder / "data"),
    )
    assert out == {
        "n": 20,
        "root": str(folder / "data"),
        "labels": written["test"][1].tolist(),
        "cifar_root": str(folder / "data"),
        "network": [],
    }


def _boot_module():
    """The boot file loaded as a fresh module in this process, for its import hook alone
    (install() is never called here: it would patch this process's sockets)."""
    spec = importlib.util.spec_from_file_location("sandbox_boot_under_test", BOOT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("has_ops", [False, True])
def test_the_empty_registrations_only_stand_in_when_the_operators_did_not_load(monkeypatch, has_ops):
    finder = _boot_module()._TorchvisionFinder()
    extension = types.SimpleNamespace(_has_ops=lambda: has_ops)
    monkeypatch.setitem(sys.modules, "torchvision.extension", extension)
    spec = finder.find_spec("torchvision._meta_registrations")
    if has_ops:  # a torchvision built for this torch: its own module, found by the usual finders
        assert spec is None
    else:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert [name for name in vars(module) if not name.startswith("__")] == []
    assert finder.find_spec("torchvision.io") is None  # any other module: the usual finders
