"""jaxtrainer/grade/loader_data.py: the loader year's SVHN and CIFAR-10 files, in the formats the real
files have (torchvision reading them back: tests/test_grade_sandbox_boot.py)."""

import pickle

import numpy as np
import pytest
import scipy.io

from jaxtrainer.data import cifar, svhn
from jaxtrainer.grade.loader_data import loader_images, write_loader_data


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader") / "data"
    return root, write_loader_data(str(root), n_train=47, n_test=13)


def test_the_files_are_those_torchvision_looks_for(written):
    root, out = written
    batches = [f"cifar-10-batches-py/{name}" for name in (*cifar.TRAIN_FILES, "test_batch", "batches.meta")]
    assert out["files"] == ["train_32x32.mat", "test_32x32.mat", *batches]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == sorted(
        out["files"]
    )


def test_svhn_mat_holds_x_hwcn_and_labels_with_10_for_zero(written):
    root, out = written
    for split, n in (("train", 47), ("test", 13)):
        mat = scipy.io.loadmat(root / f"{split}_32x32.mat")
        images, labels = out[split]
        assert mat["X"].dtype == np.uint8 and mat["X"].shape == (32, 32, 3, n) and mat["y"].shape == (n, 1)
        np.testing.assert_array_equal(mat["X"][:, :, :, 5], images[5].transpose(1, 2, 0))
        np.testing.assert_array_equal(mat["y"][:, 0], np.where(labels == 0, 10, labels))
        X, y = svhn.read_mat(str(root / f"{split}_32x32.mat"))  # the project's own reader agrees
        np.testing.assert_array_equal(X, images)
        np.testing.assert_array_equal(y, labels)


def test_cifar_batches_load_as_the_real_ones_with_either_encoding(written):
    root, out = written
    folder = root / "cifar-10-batches-py"
    with open(folder / "data_batch_2", "rb") as f:
        as_str = pickle.load(f, encoding="latin1")  # how torchvision reads them
    with open(folder / "data_batch_2", "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")  # how CIFAR's own page reads them
    assert sorted(as_str) == ["batch_label", "data", "filenames", "labels"]
    assert sorted(as_bytes) == [b"batch_label", b"data", b"filenames", b"labels"]
    assert as_str["batch_label"] == "training batch 2 of 5"
    images, labels = out["train"]
    rows = slice(10, 20)  # 47 images over 5 batches: 10, 10, 9, 9, 9
    assert as_str["data"].dtype == np.uint8 and as_str["data"].shape == (10, 3072)
    np.testing.assert_array_equal(as_str["data"].reshape(-1, 3, 32, 32), images[rows])
    assert as_str["labels"] == labels[rows].tolist()
    with open(folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    assert meta["label_names"] == [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    ]
    for split, names in (("train", cifar.TRAIN_FILES), ("test", cifar.TEST_FILES)):
        X, y = cifar.read_split(str(folder), names)  # the project's own reader agrees
        np.testing.assert_array_equal(X, out[split][0])
        np.testing.assert_array_equal(y, out[split][1])


def test_the_images_are_the_embedded_digits_in_three_channel_gains():
    from sklearn.datasets import load_digits

    data = loader_images(n_train=200, n_test=50)
    images, labels = data["train"]
    assert images.shape == (200, 3, 32, 32) and images.dtype == np.uint8
    # each 3x3 block of the 24x24 digit averages back to its 8x8 original (bilinear upscaling)
    digits = load_digits()
    red = images[:, 0, 4:28, 4:28].reshape(200, 8, 3, 8, 3).mean(axis=(2, 4)) / 255 * 16
    nearest = [np.abs(digits.images - r).sum(axis=(1, 2)).argmin() for r in red[:20]]
    assert digits.target[nearest].tolist() == labels[:20].tolist()
    np.testing.assert_allclose(images[:, 1], images[:, 0] * 0.8, atol=1)
    np.testing.assert_allclose(images[:, 2], images[:, 0] * 0.6, atol=1)
    assert images[:, :, :4].max() == 0 and images[:, :, 28:].max() == 0  # a blank 4-pixel margin
    again = loader_images(n_train=200, n_test=50)
    for split in ("train", "test"):
        np.testing.assert_array_equal(again[split][0], data[split][0])
        np.testing.assert_array_equal(again[split][1], data[split][1])


@pytest.mark.parametrize(
    "n_train, n_test, message",
    [
        (1, 10, "n_train must be an integer of at least 2, got 1"),
        (100, 2.5, "n_test must be an integer of at least 2, got 2.5"),
        (1700, 200, r"n_train \+ n_test must be at most 1797 \(the embedded digits\), got 1900"),
    ],
)
def test_bad_sizes_are_refused_by_name(n_train, n_test, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        loader_images(n_train, n_test)
