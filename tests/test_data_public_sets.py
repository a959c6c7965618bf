"""The real datasets on tiny files written here in their true formats: Fashion-MNIST/MNIST IDX
(plain and gzipped), SVHN .mat, CIFAR-10 pickles, tfds data dirs (without tfds), the rotated folder
builder (`jaxtrainer data build-rotated`) and its cache, and the facade's loader variant."""

import json
import os
import pickle
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.io
from conftest import IDX_NAMES, make_idx_set, write_idx
from PIL import Image
from scipy import ndimage

from jaxtrainer import data, registry
from jaxtrainer.cli import main
from jaxtrainer.data import build, cache, digits, rotation
from jaxtrainer.data.loader import BatchLoader
from torch_compat import NetworkConfiguration, Trainer


def unit(u8):
    """The homework's mapping, written out: uint8 -> [0, 1] -> [-1, 1] float32."""
    return ((np.asarray(u8, np.float64) / 255.0 - 0.5) / 0.5).astype(np.float32)


# --- writers of the true formats -----------------------------------------------------------------


def make_svhn(folder, n_train=37, n_test=11, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    raw = {}
    for split, n in (("train", n_train), ("test", n_test)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN's (H, W, C, N)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 1..10, 10 = the digit 0
        y[0] = 10
        scipy.io.savemat(os.path.join(folder, f"{split}_32x32.mat"), {"X": X, "y": y})
        raw[split] = (X, y)
    return raw


def make_cifar(folder, per_batch=3, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    raw = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * per_batch,
        }
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=2)
        raw[name] = batch
    return raw


# --- IDX: Fashion-MNIST / MNIST -------------------------------------------------------------------


@pytest.mark.parametrize("gz", [(False,) * 4, (True,) * 4, (True, False, True, False)])
def test_idx_plain_and_gzipped(tmp_path, gz):
    raw = make_idx_set(tmp_path, gz=gz)
    from jaxtrainer.data import idx

    for key, name in IDX_NAMES.items():
        path = os.path.join(tmp_path, name) + (".gz" if gz[list(IDX_NAMES).index(key)] else "")
        a = idx.read_idx(path)
        assert a.dtype == np.uint8
        np.testing.assert_array_equal(a, raw[key])
    ds = data.load("fashion_mnist", data_dir=tmp_path)
    assert ds.name == "fashion_mnist" and ds.variant == "tensor"
    assert ds.X_train.shape == (12, 1, 28, 28) and ds.X_test.shape == (6, 1, 28, 28)
    assert ds.y_train.shape == (12, 1) and ds.y_test.shape == (6, 1)
    assert all(a.dtype == np.float32 for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test))
    assert ds.X_train.min() >= -1 and ds.X_train.max() <= 1


def test_fashion_mnist_in_memory_is_the_rotation_task(tmp_path):
    """Each image is its source rotated by an integer angle in [0, 90]; targets are the angles
    standardised with the train mean and unbiased std. The angles are recovered by matching."""
    raw = make_idx_set(tmp_path, n_train=5, n_test=3)
    ds = data.load("fashion_mnist", data_dir=tmp_path, seed=4)
    angles = {}
    for split, X in (("train", ds.X_train), ("test", ds.X_test)):
        found = []
        for i, image in enumerate(X[:, 0]):
            src = raw[f"{split}_images"][i] / 255.0
            matches = [
                a
                for a in range(91)
                if np.array_equal(
                    unit(np.rint(np.clip(ndimage.rotate(src, a, reshape=False, order=1), 0, 1) * 255)), image
                )
            ]
            assert len(matches) == 1, (split, i, matches)
            found += matches
        angles[split] = np.array(found, np.float64)
    mean, std = angles["train"].mean(), angles["train"].std(ddof=1)
    np.testing.assert_allclose(ds.y_train[:, 0], (angles["train"] - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.y_test[:, 0], (angles["test"] - mean) / std, rtol=1e-5, atol=1e-6)


def test_idx_torchvision_and_keras_layouts(tmp_path):
    raw = make_idx_set(tmp_path / "FashionMNIST" / "raw")
    a = data.load("fashion_mnist", data_dir=tmp_path)
    assert a.X_train.shape == (12, 1, 28, 28)
    make_idx_set(tmp_path / "keras" / "fashion-mnist")
    b = data.load("fashion_mnist", data_dir=tmp_path / "keras")
    np.testing.assert_array_equal(a.X_train, b.X_train)
    # Keras's mnist.npz
    np.savez(
        tmp_path / "mnist.npz",
        x_train=raw["train_images"],
        y_train=raw["train_labels"],
        x_test=raw["test_images"],
        y_test=raw["test_labels"],
    )
    c = data.load("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(c.X_train, a.X_train)
    np.testing.assert_array_equal(c.y_test, a.y_test)


def test_idx_missing_file(tmp_path):
    make_idx_set(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(
        FileNotFoundError,
        match=r"holds some of the files but not "
        r"t10k-labels-idx1-ubyte\[\.gz\]",
    ):
        data.load("fashion_mnist", data_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"none of train-images-idx3-ubyte\[\.gz\].*Expected "
        r"Zalando's four Fashion-MNIST IDX files.*Nothing is "
        r"downloaded",
    ):
        data.load("fashion_mnist", data_dir=empty)


def test_idx_truncated_plain(tmp_path):
    make_idx_set(tmp_path, gz=(False,) * 4)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte: truncated: the header says "
        r"\(12, 28, 28\) elements",
    ):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_idx_truncated_gzip(tmp_path):
    make_idx_set(tmp_path, gz=(True,) * 4)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: a truncated or corrupt gzip"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_idx_bad_magic(tmp_path):
    make_idx_set(tmp_path, gz=(False,) * 4)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(
        ValueError,
        match=r"train-labels-idx1-ubyte: not an IDX file \(magic number "
        r"504b0304",
    ):
        data.load("fashion_mnist", data_dir=tmp_path)
    # a labels file where images are expected: valid IDX, wrong magic number
    make_idx_set(tmp_path / "swapped", gz=(False,) * 4)
    labels = (tmp_path / "swapped" / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp_path / "swapped" / "t10k-images-idx3-ubyte").write_bytes(labels)
    with pytest.raises(
        ValueError,
        match=r"t10k-images-idx3-ubyte: IDX of uint8 with 1 dimension\(s\), "
        r"expected magic number 00000803",
    ):
        data.load("fashion_mnist", data_dir=tmp_path / "swapped")


def test_idx_count_mismatch(tmp_path):
    make_idx_set(tmp_path, gz=(False,) * 4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8), gz=False)
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte holds 12 images but "
        r".*train-labels-idx1-ubyte holds 11 labels",
    ):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_names_need_a_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(
        FileNotFoundError,
        match=r"dataset 'svhn' is read from files you already have: "
        r"pass data_dir=.*train_32x32\.mat.*Nothing is downloaded",
    ):
        data.load("svhn")
    with pytest.raises(FileNotFoundError, match=r"data_dir '.*nowhere' is not a folder"):
        data.load("cifar10", data_dir=tmp_path / "nowhere")
    with pytest.raises(
        ValueError,
        match=r"data_dir is used with the dataset names .* not with "
        r"dataset='digits'",
    ):
        data.load("digits", data_dir=tmp_path)
    make_svhn(tmp_path)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))  # the default data_dir
    assert data.load("svhn").X_train.shape == (37, 3, 32, 32)


# --- SVHN -----------------------------------------------------------------------------------------


def test_svhn_layout_values_and_labels(tmp_path):
    raw = make_svhn(tmp_path)
    ds = data.load("svhn", data_dir=tmp_path)
    assert ds.variant == "loader"
    assert ds.X_train.shape == (37, 3, 32, 32) and ds.X_test.shape == (11, 3, 32, 32)
    assert ds.y_train.shape == (37, 1) and ds.y_test.shape == (11, 1)
    assert all(a.dtype == np.float32 for a in (ds.X_train, ds.y_train, ds.X_test, ds.y_test))
    X, y = raw["train"]
    for n, c, h, w in [(0, 0, 0, 0), (5, 2, 31, 7), (36, 1, 3, 30)]:
        assert ds.X_train[n, c, h, w] == unit(X[h, w, c, n])
    np.testing.assert_array_equal(ds.X_test, unit(raw["test"][0].transpose(3, 2, 0, 1)))
    digits = np.where(y[:, 0] == 10, 0, y[:, 0])
    np.testing.assert_array_equal(ds.y_train[:, 0], digits.astype(np.float32))  # not standardised
    assert ds.y_train[0, 0] == 0.0  # label 10 is the digit 0
    assert set(np.unique(ds.y_train)) <= set(range(10))


def test_svhn_subfolder(tmp_path):
    make_svhn(tmp_path / "svhn")
    assert data.load("svhn", data_dir=tmp_path).X_train.shape == (37, 3, 32, 32)


def test_svhn_missing_file(tmp_path):
    make_svhn(tmp_path)
    os.remove(tmp_path / "test_32x32.mat")
    with pytest.raises(
        FileNotFoundError,
        match=r"not test_32x32\.mat: expected all of "
        r"train_32x32\.mat, test_32x32\.mat",
    ):
        data.load("svhn", data_dir=tmp_path)


def test_svhn_truncated_mat(tmp_path):
    make_svhn(tmp_path)
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"test_32x32\.mat: not a readable MATLAB \.mat file"):
        data.load("svhn", data_dir=tmp_path)


def test_svhn_count_mismatch_and_missing_variable(tmp_path):
    make_svhn(tmp_path)
    scipy.io.savemat(
        tmp_path / "train_32x32.mat",
        {"X": np.zeros((32, 32, 3, 5), np.uint8), "y": np.ones((4, 1), np.uint8)},
    )
    with pytest.raises(ValueError, match=r"train_32x32\.mat: X holds 5 images but y holds 4 labels"):
        data.load("svhn", data_dir=tmp_path)
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"images": np.zeros((32, 32, 3, 5), np.uint8)})
    with pytest.raises(ValueError, match=r"train_32x32\.mat: no variable X or y"):
        data.load("svhn", data_dir=tmp_path)


# --- CIFAR-10 -------------------------------------------------------------------------------------


def test_cifar_layout_values_and_labels(tmp_path):
    raw = make_cifar(tmp_path / "cifar-10-batches-py")
    ds = data.load("cifar10", data_dir=tmp_path)  # the folder inside a torchvision/Keras root
    assert ds.variant == "loader"
    assert ds.X_train.shape == (15, 3, 32, 32) and ds.X_test.shape == (3, 3, 32, 32)
    assert ds.y_train.shape == (15, 1) and ds.y_train.dtype == np.float32
    rows = np.concatenate([raw[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    for n, c, h, w in [(0, 0, 0, 0), (4, 1, 2, 3), (14, 2, 31, 31)]:
        assert ds.X_train[n, c, h, w] == unit(rows[n, c * 1024 + h * 32 + w])  # RGB planes, row-major
    labels = sum((raw[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    np.testing.assert_array_equal(ds.y_train[:, 0], np.array(labels, np.float32))
    np.testing.assert_array_equal(ds.y_test[:, 0], np.array(raw["test_batch"][b"labels"], np.float32))
    again = data.load("cifar10", data_dir=tmp_path / "cifar-10-batches-py")  # the folder itself
    np.testing.assert_array_equal(again.X_train, ds.X_train)


def test_cifar_missing_truncated_mismatch(tmp_path):
    make_cifar(tmp_path)
    os.remove(tmp_path / "data_batch_3")
    with pytest.raises(FileNotFoundError, match=r"not data_batch_3: expected all of data_batch_1"):
        data.load("cifar10", data_dir=tmp_path)
    make_cifar(tmp_path)
    path = tmp_path / "data_batch_2"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"data_batch_2: not a readable CIFAR-10 python batch"):
        data.load("cifar10", data_dir=tmp_path)
    make_cifar(tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((3, 3072), np.uint8), b"labels": [1, 2]}, f)
    with pytest.raises(ValueError, match=r"test_batch: b'data' holds 3 images but b'labels' holds 2"):
        data.load("cifar10", data_dir=tmp_path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_cifar_pickle_runs_no_code(tmp_path):
    make_cifar(tmp_path)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": []}, f)
    with pytest.raises(
        ValueError,
        match=r"data_batch_1: not a readable CIFAR-10 python batch "
        r"\(UnpicklingError: refusing to load .*system",
    ):
        data.load("cifar10", data_dir=tmp_path)


# --- tensorflow_datasets data dirs ------------------------------------------------------------------


def tfds_dir(root, name):
    version = root / name / "3.0.0"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text("{}")


def test_tfds_dir_without_tfds(tmp_path, monkeypatch):
    tfds_dir(tmp_path, "svhn_cropped")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # not importable
    with pytest.raises(
        ImportError,
        match=r"svhn_cropped is a tensorflow_datasets data dir, but "
        r"tensorflow_datasets is not installed",
    ):
        data.load("svhn", data_dir=tmp_path)


def test_tfds_dir_read_without_download(tmp_path, monkeypatch):
    """A stand-in for tfds: only a prepared builder's as_dataset may be called (no download)."""
    tfds_dir(tmp_path, "cifar10")
    rng = np.random.default_rng(0)
    splits = {
        s: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
        for s, n in (("train", 7), ("test", 4))
    }
    calls = []

    class Builder:
        def __init__(self, name, data_dir):
            calls.append(("builder", name, data_dir))

        def is_prepared(self):
            return True

        def as_dataset(self, split, batch_size, as_supervised):
            assert batch_size == -1 and as_supervised
            return splits[split]

        def download_and_prepare(self, *a, **k):  # pragma: no cover
            raise AssertionError("must never download")

    fake = types.SimpleNamespace(builder=Builder, as_numpy=lambda ds: ds)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    ds = data.load("cifar10", data_dir=tmp_path)
    assert calls == [("builder", "cifar10", str(tmp_path))]
    assert ds.X_train.shape == (7, 3, 32, 32) and ds.variant == "loader"
    np.testing.assert_array_equal(ds.X_train, unit(splits["train"][0].transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(ds.y_test[:, 0], splits["test"][1].astype(np.float32))


def test_no_raw_files_no_tfds_dir(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"dataset 'cifar10': .*Expected CIFAR-10's python "
        r"version.*tensorflow_datasets data dir with cifar10/",
    ):
        data.load("cifar10", data_dir=tmp_path)


# --- a dataset in a new file format: its reader and its registry entry, nothing else ---------------

TOY_READER = """
import os

import numpy as np


def read(folders):
    paths = [os.path.join(f, "toy.npz") for f in folders if os.path.isfile(os.path.join(f, "toy.npz"))]
    if not paths:
        raise FileNotFoundError("no toy.npz")
    with np.load(paths[0]) as z:
        return {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in ("train", "test")}
"""


@pytest.mark.parametrize("variant", ["loader", "tensor"])
def test_a_new_format_is_its_reader_and_its_registry_entry(tmp_path, monkeypatch, variant):
    """Issue 21: `data.named` calls the reader the `registry.DATASETS` entry names (here a module
    that exists only in this test, imported only when the dataset is loaded); no per-format branch."""
    module = f"toyformat_{variant}"  # a new module each run: imported by the load, not before
    (tmp_path / f"{module}.py").write_text(TOY_READER)
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = registry.DatasetEntry(f"{module}.read", "toy.npz", ("", "toy"), variant=variant)
    monkeypatch.setitem(registry.DATASETS, "toy", entry)
    rng = np.random.default_rng(0)
    shape = (3, 8, 8) if variant == "loader" else (8, 8)
    arrays = {
        f"{a}_{s}": rng.integers(0, 256, (n, *shape) if a == "x" else n).astype(np.uint8)
        for s, n in (("train", 6), ("test", 4))
        for a in "xy"
    }
    (tmp_path / "data" / "toy").mkdir(parents=True)
    np.savez(tmp_path / "data" / "toy" / "toy.npz", **arrays)
    assert module not in sys.modules
    ds = data.load("toy", data_dir=tmp_path / "data", seed=3)
    assert ds.name == "toy" and ds.variant == variant
    if variant == "loader":  # the class index as the target, the pixels as given
        np.testing.assert_array_equal(ds.X_train, unit(arrays["x_train"]))
        np.testing.assert_array_equal(ds.y_test[:, 0], arrays["y_test"].astype(np.float32))
    else:  # the rotation task, as for Fashion-MNIST
        expected = rotation.rotated_splits(
            {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "test")}, seed=3, n_train=6, n_test=4
        )
        np.testing.assert_array_equal(ds.X_train[:, 0], unit(expected["train"][0]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"dataset 'toy': no toy.npz\. Expected toy.npz in .*empty"):
        data.load("toy", data_dir=tmp_path / "empty")


# --- build-rotated ------------------------------------------------------------------------------


def run_build(src, out, *extra):
    return main(
        ["data", "build-rotated", "--source", str(src), "--out", str(out), "--no-progress", *map(str, extra)]
    )


def folder_bytes(root):
    return {
        os.path.join(split, name): open(os.path.join(root, split, name), "rb").read()
        for split in ("train", "test")
        for name in sorted(os.listdir(os.path.join(root, split)))
    }


def test_build_rotated_cli(tmp_path, capsys):
    raw = make_idx_set(tmp_path / "src", n_train=12, n_test=6)
    assert run_build(tmp_path / "src", tmp_path / "a", "--seed", 3, "--n-train", 10, "--n-test", 4) == 0
    assert "wrote" in capsys.readouterr().out
    for split, n in (("train", 10), ("test", 4)):
        names = sorted(os.listdir(tmp_path / "a" / split), key=lambda s: int(s.split("_")[0]))
        assert len(names) == n
        for i, name in enumerate(names):
            index, angle = name[:-4].split("_")
            assert int(index) == i and 0 <= int(angle) <= 90
            with Image.open(tmp_path / "a" / split / name) as im:
                assert im.mode == "L" and im.size == (28, 28)
                pixels = np.asarray(im)
            src = raw[f"{split}_images"][i] / 255.0
            expected = np.rint(np.clip(ndimage.rotate(src, int(angle), reshape=False, order=1), 0, 1) * 255)
            np.testing.assert_array_equal(pixels, expected)
    assert sorted(os.listdir(tmp_path)) == ["a", "src"]  # no temporary folder left behind
    # same seed: byte-identical files; another seed: other angles
    assert run_build(tmp_path / "src", tmp_path / "b", "--seed", 3, "--n-train", 10, "--n-test", 4) == 0
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    assert run_build(tmp_path / "src", tmp_path / "c", "--seed", 4, "--n-train", 10, "--n-test", 4) == 0
    assert sorted(folder_bytes(tmp_path / "c")) != sorted(folder_bytes(tmp_path / "a"))
    # the folder loads as the homework's format
    ds = data.load(tmp_path / "a")
    assert ds.X_train.shape == (10, 1, 28, 28) and ds.X_test.shape == (4, 1, 28, 28)


def test_build_rotated_equals_in_memory_load(tmp_path):
    make_idx_set(tmp_path / "src", n_train=12, n_test=6)
    # what load("fashion_mnist") takes: every training image, the first 2,000 (here all 6) test ones
    assert run_build(tmp_path / "src", tmp_path / "out", "--seed", 7, "--n-train", 12, "--n-test", 6) == 0
    built, memory = data.load(tmp_path / "out"), data.load("fashion_mnist", data_dir=tmp_path / "src", seed=7)
    for a, b in zip(
        (built.X_train, built.y_train, built.X_test, built.y_test),
        (memory.X_train, memory.y_train, memory.X_test, memory.y_test),
    ):
        np.testing.assert_array_equal(a, b)


def test_build_rotated_max_angle_and_defaults(tmp_path):
    make_idx_set(tmp_path / "src", n_train=40, n_test=6)
    assert (
        run_build(tmp_path / "src", tmp_path / "small", "--max-angle", 5, "--n-train", 40, "--n-test", 6) == 0
    )
    angles = [int(n[:-4].split("_")[1]) for n in os.listdir(tmp_path / "small" / "train")]
    assert len(angles) == 40 and max(angles) <= 5 and min(angles) >= 0
    assert len(set(angles)) > 1


def test_build_rotated_errors(tmp_path, capsys):
    make_idx_set(tmp_path / "src", n_train=12, n_test=6)
    assert run_build(tmp_path / "src", tmp_path / "x", "--n-train", 13) == 2
    assert "13 train images asked for, the source has 12" in capsys.readouterr().err
    assert run_build(tmp_path / "src", tmp_path / "x", "--max-angle", 360) == 2
    assert "max_angle must be in 1..359" in capsys.readouterr().err
    os.remove(tmp_path / "src" / "train-labels-idx1-ubyte.gz")
    assert run_build(tmp_path / "src", tmp_path / "x") == 2
    assert "train-labels-idx1-ubyte[.gz]" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "notes.txt").write_text("keep")
    make_idx_set(tmp_path / "src")
    assert run_build(tmp_path / "src", tmp_path / "exists") == 2
    assert "exists' already holds files (notes.txt): choose another --out" in capsys.readouterr().err
    assert os.listdir(tmp_path / "exists") == ["notes.txt"]


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_build_rotated_interrupted_leaves_nothing(tmp_path, monkeypatch, capsys, failure):
    make_idx_set(tmp_path / "src", n_train=12, n_test=6)
    written = []
    real = build._write_png

    def failing(path, pixels):
        if len(written) == 7:
            raise failure
        written.append(path)
        real(path, pixels)

    monkeypatch.setattr(build, "_write_png", failing)
    assert build_cli_rc(tmp_path) == (130 if isinstance(failure, KeyboardInterrupt) else 2)
    assert len(written) == 7
    assert not os.path.exists(tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["src"]  # the partial folder is removed too
    with pytest.raises(ValueError, match=r"unknown dataset"):
        data.load(str(tmp_path / "out"))


def test_build_rotated_removes_the_folders_of_killed_builds_and_keeps_a_running_ones(tmp_path):
    make_idx_set(tmp_path / "src", n_train=12, n_test=6)
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    prefix = f".out.partial-{socket.gethostname()}-"
    other_host = f".out.partial-elsewhere-{dead.pid}-0000aaaa"
    try:
        for pid in (dead.pid, alive.pid):
            (tmp_path / f"{prefix}{pid}-0000aaaa" / "train").mkdir(parents=True)
        (tmp_path / other_host).mkdir()
        assert build_cli_rc(tmp_path) == 0
    finally:
        alive.kill()
        alive.wait()
    assert sorted(os.listdir(tmp_path)) == sorted(["src", "out", f"{prefix}{alive.pid}-0000aaaa", other_host])


@pytest.mark.slow
def test_digits_written_as_a_rotated_folder(tmp_path):
    info = digits.write_folder(tmp_path / "rotated_fashion_mnist")
    assert (info["n_train"], info["n_test"]) == (1497, 300)
    ds = data.load(str(tmp_path / "rotated_fashion_mnist"))
    assert ds.X_train.shape == (1497, 1, 28, 28) and ds.X_test.shape == (300, 1, 28, 28)
    # each PNG is a digit's frame, rounded to uint8, split by a seed-0 permutation, rotated by the
    # angle in its name
    frames = np.rint(digits.frames() * 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(frames))
    angles = []
    for split, offset in (("train", digits.N_TEST), ("test", 0)):
        for name in sorted(os.listdir(tmp_path / "rotated_fashion_mnist" / split))[:20]:
            index, angle = map(int, name[:-4].split("_"))
            angles.append(angle)
            with Image.open(tmp_path / "rotated_fashion_mnist" / split / name) as image:
                pixels = np.asarray(image)
            expected = rotation.rotate_uint8(frames[order[offset + index]], angle)
            np.testing.assert_array_equal(pixels, expected, err_msg=f"{split}/{name}")
    assert 0 <= min(angles) and max(angles) <= 90 and len(set(angles)) > 10


def build_cli_rc(tmp_path):
    return run_build(tmp_path / "src", tmp_path / "out", "--n-train", 12, "--n-test", 6)


# --- the folder cache ---------------------------------------------------------------------------


def write_folder(root, n_train=6, n_test=3):
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("test", n_test)):
        os.makedirs(root / split)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                root / split / f"{i}_{10 * i + 5}.png"
            )


def no_png_reads(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a PNG was decoded: the cache was not used")

    monkeypatch.setattr(Image, "open", refuse)


def test_cache_second_load_reads_no_png(tmp_path, monkeypatch):
    write_folder(tmp_path / "set")
    first = data.load(tmp_path / "set")
    assert os.path.isfile(tmp_path / "set" / cache.NAME)
    with monkeypatch.context() as m:
        no_png_reads(m)
        second = data.load(tmp_path / "set")
    for a, b in zip(
        (first.X_train, first.y_train, first.X_test, first.y_test),
        (second.X_train, second.y_train, second.X_test, second.y_test),
    ):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_cache_invalidated_by_a_modified_or_added_file(tmp_path):
    write_folder(tmp_path / "set")
    before = data.load(tmp_path / "set")
    path = tmp_path / "set" / "train" / "2_25.png"
    stat = os.stat(path)
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later mtime, as a rewrite gets
    after = data.load(tmp_path / "set")
    assert np.all(after.X_train[2] == 1.0) and not np.array_equal(after.X_train, before.X_train)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "set" / "test" / "9_80.png")
    added = data.load(tmp_path / "set")
    assert added.X_test.shape == (4, 1, 28, 28) and np.all(added.X_test[3] == -1.0)
    np.testing.assert_allclose(
        added.y_test[3, 0], (80 - 30) / np.std([5, 15, 25, 35, 45, 55], ddof=1), rtol=1e-6
    )
    os.remove(tmp_path / "set" / "test" / "9_80.png")
    assert data.load(tmp_path / "set").X_test.shape == (3, 1, 28, 28)


def test_cache_corrupt_or_unwritable_is_ignored(tmp_path, monkeypatch):
    write_folder(tmp_path / "set")
    expected = data.load(tmp_path / "set")
    (tmp_path / "set" / cache.NAME).write_bytes(b"PK\x03\x04truncated")
    np.testing.assert_array_equal(data.load(tmp_path / "set").X_train, expected.X_train)
    os.remove(tmp_path / "set" / cache.NAME)

    def unwritable(*a, **k):
        raise PermissionError("read-only folder")

    monkeypatch.setattr(np, "savez", unwritable)
    np.testing.assert_array_equal(data.load(tmp_path / "set").X_train, expected.X_train)
    assert sorted(os.listdir(tmp_path / "set")) == ["test", "train"]  # no temporary file left


def test_cache_written_by_build(tmp_path, monkeypatch):
    make_idx_set(tmp_path / "src", n_train=4, n_test=2)
    assert run_build(tmp_path / "src", tmp_path / "out", "--n-train", 4, "--n-test", 2) == 0
    no_png_reads(monkeypatch)
    assert data.load(tmp_path / "out").X_train.shape == (4, 1, 28, 28)


def test_cache_of_an_older_version_not_served(tmp_path, monkeypatch):
    """A cache written under an older decoding rule (VERSION) is ignored even though no file changed."""
    write_folder(tmp_path / "set")
    expected = data.load(tmp_path / "set")
    with monkeypatch.context() as m:
        m.setattr(cache, "VERSION", cache.VERSION - 1)
        old_key = cache.folder_key(tmp_path / "set")
    assert old_key != cache.folder_key(tmp_path / "set")
    stale = {
        s: (np.zeros((n, 28, 28), np.uint8), np.arange(n, dtype=np.int64))
        for s, n in (("train", 6), ("test", 3))
    }
    assert cache.write(tmp_path / "set", old_key, stale)
    again = data.load(tmp_path / "set")
    np.testing.assert_array_equal(again.X_train, expected.X_train)
    np.testing.assert_array_equal(again.y_test, expected.y_test)


def corruptions(good: bytes):
    yield b""
    yield b"not a zip at all"
    for cut in (10, len(good) // 3, len(good) - 30):
        yield good[:cut]
    for at in (len(good) // 4, len(good) // 2, (3 * len(good)) // 4):  # one byte flipped: CRC or header
        yield good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1 :]


def test_cache_corrupt_ignored_and_rewritten(tmp_path, monkeypatch):
    write_folder(tmp_path / "set")
    expected = data.load(tmp_path / "set")
    path = tmp_path / "set" / cache.NAME
    good = path.read_bytes()
    for bad in corruptions(good):
        path.write_bytes(bad)
        np.testing.assert_array_equal(data.load(tmp_path / "set").X_train, expected.X_train)
        assert path.read_bytes() == good  # rewritten whole
    with monkeypatch.context() as m:
        no_png_reads(m)
        np.testing.assert_array_equal(data.load(tmp_path / "set").X_train, expected.X_train)


def test_cache_with_the_right_key_but_another_layout_ignored(tmp_path):
    write_folder(tmp_path / "set")
    expected = data.load(tmp_path / "set")
    key = cache.folder_key(tmp_path / "set")
    wrong = {
        "floats": {s: (np.zeros((2, 28, 28), np.float32), np.zeros(2, np.int64)) for s in cache.SPLITS},
        "flat": {s: (np.zeros((2, 784), np.uint8), np.zeros(2, np.int64)) for s in cache.SPLITS},
        "counts": {s: (np.zeros((2, 28, 28), np.uint8), np.zeros(3, np.int64)) for s in cache.SPLITS},
    }
    for splits in wrong.values():
        np.savez(
            tmp_path / "set" / cache.NAME,
            key=np.array(key),
            **{f"{s}_{part}": a for s in cache.SPLITS for part, a in zip(("images", "angles"), splits[s])},
        )
        assert cache.read(tmp_path / "set", key) is None
        np.testing.assert_array_equal(data.load(tmp_path / "set").X_train, expected.X_train)


def test_cache_keeps_16bit_pixels(tmp_path, monkeypatch):
    span = np.linspace(0, 65535, 28 * 28).round().astype(np.uint16).reshape(28, 28)
    for split in ("train", "test"):
        os.makedirs(tmp_path / "set" / split)
    Image.fromarray(span).save(tmp_path / "set" / "train" / "0_10.png")
    Image.fromarray(span[::-1]).save(tmp_path / "set" / "train" / "1_20.png")
    Image.fromarray(span).save(tmp_path / "set" / "test" / "0_5.png")
    first = data.load(tmp_path / "set")
    np.testing.assert_array_equal(first.X_train[0, 0], ((span / 65535.0 - 0.5) / 0.5).astype(np.float32))
    with monkeypatch.context() as m:
        no_png_reads(m)
        second = data.load(tmp_path / "set")
    np.testing.assert_array_equal(second.X_train, first.X_train)


def test_cache_key_of_an_unlistable_folder_is_none(tmp_path):
    write_folder(tmp_path / "set")
    os.symlink("loop.png", tmp_path / "set" / "train" / "loop.png")
    assert cache.folder_key(tmp_path / "set") is None
    with pytest.raises(ValueError, match=r"train/loop\.png: the name must be <index>_<angle>\.png"):
        data.load(tmp_path / "set")


# --- the loader variant ---------------------------------------------------------------------------


def test_batch_loader():
    X = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10, dtype=np.float32).reshape(10, 1)
    loader = BatchLoader(X, y, 4, shuffle=True, seed=5)
    assert len(loader) == 3
    passes = [[(xb[:, 0, 0, 0].tolist(), yb.shape) for xb, yb in loader] for _ in range(2)]
    for batches in passes:
        assert [len(b[0]) for b in batches] == [4, 4, 2]
        assert sorted(sum((b[0] for b in batches), [])) == list(range(10))
        assert [b[1] for b in batches] == [(4, 1), (4, 1), (2, 1)]
    assert passes[0] != passes[1]  # a new order each pass
    again = BatchLoader(X, y, 4, shuffle=True, seed=5)
    assert [xb[:, 0, 0, 0].tolist() for xb, _ in again] == [b[0] for b in passes[0]]  # reproducible
    ordered = BatchLoader(X, y, 4)
    assert [xb[:, 0, 0, 0].tolist() for xb, _ in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match=r"10 images but 9 labels"):
        BatchLoader(X, y[:9], 4)


CFG = NetworkConfiguration(dense_hiddens=(8,))


def svhn_trainer(folder, **kwargs):
    return Trainer(
        "mlp", CFG, lr=1e-3, batch_size=8, dataset="svhn", data_dir=str(folder), progress=False, **kwargs
    )


@pytest.mark.slow
def test_loader_variant_trainer_data(tmp_path):
    make_svhn(tmp_path)
    t = svhn_trainer(tmp_path)
    assert isinstance(t.train, BatchLoader) and isinstance(t.test, BatchLoader)
    assert len(t.train) == 5 and len(t.test) == 2  # 37 and 11 examples, batches of 8
    batches = list(t.train)
    assert [xb.shape for xb, _ in batches] == [(8, 3, 32, 32)] * 4 + [(5, 3, 32, 32)]
    assert all(yb.shape == (len(xb), 1) and yb.dtype == np.float32 for xb, yb in batches)
    assert t.network.layers[1].in_features == 3 * 32 * 32
    ds = data.load("svhn", data_dir=tmp_path)
    X_test = np.concatenate([xb for xb, _ in t.test])
    np.testing.assert_array_equal(X_test, ds.X_test)  # the test loader keeps the order
    other = svhn_trainer(tmp_path)
    np.testing.assert_array_equal(next(iter(other.train))[0], batches[0][0])  # the seed's order
    assert not np.array_equal(next(iter(other.train))[0], batches[0][0])  # then a new one


@pytest.mark.slow
def test_loader_variant_train_loop_equals_a_plain_loop(tmp_path):
    make_svhn(tmp_path)
    logs = svhn_trainer(tmp_path).train_loop(2)
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in logs.values())

    plain = svhn_trainer(tmp_path)
    expected = {k: [] for k in logs}
    for _ in range(2):
        steps = [plain.training_step(xb, yb) for xb, yb in plain.train]
        expected["train_loss"].append(np.mean([float(loss) for loss, _ in steps]))
        expected["train_mae"].append(np.mean([float(mae) for _, mae in steps]))
        tests = [plain.evaluate(xb, yb) for xb, yb in plain.test]
        expected["test_loss"].append(np.mean([float(loss) for loss, _ in tests]))
        expected["test_mae"].append(np.mean([float(mae) for _, mae in tests]))
    for key in logs:
        np.testing.assert_allclose(logs[key], expected[key], rtol=2e-5, err_msg=key)
    # the mean over batches, not over examples: the short last batch (3 of 11) weighs as a full one
    whole_loss, _ = plain.evaluate(*data.load("svhn", data_dir=tmp_path).test)
    assert abs(float(whole_loss) - expected["test_loss"][-1]) > 1e-6


def test_loader_variant_continues_and_weights_match(tmp_path):
    make_svhn(tmp_path)
    once = svhn_trainer(tmp_path)
    once.train_loop(2)
    twice = svhn_trainer(tmp_path)
    twice.train_loop(1)
    logs = twice.train_loop(1)  # the loader's second pass: same as epoch 2 of one call
    assert twice.train.epoch == 2 and all(len(v) == 2 for v in logs.values())
    for key in logs:
        np.testing.assert_allclose(logs[key], once.train_logs[key], rtol=1e-6)
    for (k, a), b in zip(once.network.state_dict().items(), twice.network.state_dict().values()):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7, err_msg=k)


def test_loader_variant_checkpoint_resume(tmp_path):
    make_svhn(tmp_path / "svhn")
    full = svhn_trainer(tmp_path / "svhn").train_loop(3)
    part = svhn_trainer(tmp_path / "svhn", checkpoint_dir=str(tmp_path / "ck"))
    part.train_loop(2)
    resumed = svhn_trainer(tmp_path / "svhn", checkpoint_dir=str(tmp_path / "ck")).train_loop(3, resume=True)
    for key in full:
        np.testing.assert_allclose(resumed[key], full[key], rtol=1e-6, err_msg=key)


@pytest.mark.slow
def test_cifar_trainer_and_tensor_variant_names(tmp_path):
    make_cifar(tmp_path / "cifar-10-batches-py")
    t = Trainer(
        "cnn",
        NetworkConfiguration((4,), (3,), (1,), (8,)),
        batch_size=4,
        dataset="cifar10",
        data_dir=str(tmp_path),
        progress=False,
    )
    assert isinstance(t.train, BatchLoader) and len(t.train) == 4
    make_idx_set(tmp_path / "fm")
    f = Trainer("mlp", CFG, dataset="fashion_mnist", data_dir=str(tmp_path / "fm"), progress=False)
    assert isinstance(f.train, tuple) and f.train[0].shape == (12, 1, 28, 28)  # tensor variant
    with pytest.raises(ValueError, match=r"data_dir is used with the dataset names"):
        Trainer("mlp", CFG, dataset="digits", data_dir=str(tmp_path))


@pytest.mark.slow
def test_cli_train_with_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    make_svhn(tmp_path / "svhn", n_train=20, n_test=6)
    rc = main(
        [
            "train",
            "--dataset",
            "svhn",
            "--data-dir",
            str(tmp_path / "svhn"),
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    assert rc == 0 and os.path.isfile(tmp_path / "run" / "logs.json")
    assert data.DATA_DIR_ENV not in os.environ  # passed as an argument, not through the environment
    saved = json.loads((tmp_path / "run" / "logs.json").read_text())
    assert saved["config"]["data_dir"] == str(tmp_path / "svhn")
