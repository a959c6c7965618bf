"""Faults: data folders that hold what they should not (a corrupt PNG, a link loop, a FIFO, a
file that is no image, a name that is not UTF-8, constant targets): one line naming the file, or a
run that works; never a hang or a library's internals."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png_folder
from fault_helpers import HIDDEN, refused, run_main, train_argv

from jaxtrainer import data
from torch_compat import Trainer


def test_a_corrupted_image_is_one_line_naming_it(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2)
    bad = png / "train" / sorted(os.listdir(png / "train"))[1]
    bad.write_bytes(b"\x89PNG garbage")
    refused(train_argv(tmp_path / "run", 1, "--dataset", png), capfd, str(bad))


def test_a_symlink_loop_in_a_data_folder_is_one_line_naming_it(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    os.symlink("9_2.png", png / "train" / "9_1.png")
    os.symlink("9_1.png", png / "train" / "9_2.png")
    refused(train_argv(tmp_path / "run", 1, "--dataset", png), capfd, str(png / "train" / "9_"))


def test_a_fifo_named_like_a_png_is_refused_by_name_and_never_blocks(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    fifo = png / "train" / "100_3.png"
    os.mkfifo(fifo)

    def writer_arrives():  # a load blocked on the FIFO is let go (it then reads no bytes)
        with contextlib.suppress(OSError):  # ENXIO: nobody has it open for reading
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    rescue = threading.Timer(20, writer_arrives)
    rescue.start()
    try:
        refused(
            train_argv(tmp_path / "run", 1, "--dataset", png),
            capfd,
            f"{fifo}: cannot be read (a FIFO (named pipe), not a regular file)",
        )
    finally:
        rescue.cancel()


def test_a_png_replaced_by_one_of_the_same_size_and_mtime_is_decoded_again(tmp_path):
    from PIL import Image

    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    target = png / "train" / sorted(os.listdir(png / "train"))[1]
    grey, white = tmp_path / "grey.png", tmp_path / "white.png"
    Image.fromarray(np.full((12, 12), 128, np.uint8)).save(grey)
    Image.fromarray(np.full((12, 12), 255, np.uint8)).save(white)
    assert grey.stat().st_size == white.stat().st_size  # the cache cannot tell them apart by size
    shutil.copy2(grey, target)  # cp -p: the content, and grey.png's mtime
    os.utime(white, ns=(grey.stat().st_atime_ns, grey.stat().st_mtime_ns))
    assert data.load(str(png)).X_train[1].max() == np.float32((128 / 255 - 0.5) / 0.5)
    assert (png / ".jaxtrainer-cache.npz").exists()
    shutil.copy2(white, target)  # same size, same mtime, other pixels
    assert data.load(str(png)).X_train[1].min() == 1.0


@pytest.mark.slow
def test_a_data_folder_whose_name_is_not_utf8_trains_and_draws_its_figure(tmp_path, capfd):
    png = Path(os.fsdecode(bytes(tmp_path) + b"/rotated\xff"))
    write_png_folder(png, n_train=4, n_test=2, size=12)
    code, _, err = run_main(train_argv(tmp_path / "run", 1, "--dataset", png), capfd)
    assert code == 0 and err == "" and (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_a_file_that_is_no_image_is_named_without_pillows_internals(tmp_path, capfd):
    png = write_png_folder(tmp_path / "png", n_train=4, n_test=2, size=12)
    bad = png / "train" / "7_3.png"
    bad.write_text("not an image")
    line = refused(
        train_argv(tmp_path / "run", 1, "--dataset", png),
        capfd,
        f"{bad}: not a readable PNG (no image format Pillow knows, in its 12 bytes)",
    )
    assert "BytesIO" not in line and "0x" not in line


def test_constant_targets_and_numpy_scalars_are_said_as_plain_numbers(tmp_path, capfd):
    from PIL import Image

    png = tmp_path / "png"
    for split, n in (("train", 3), ("test", 1)):
        (png / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((12, 12), 40 * i, np.uint8)).save(png / split / f"{i}_45.png")
    refused(
        train_argv(tmp_path / "run", 1, "--dataset", png),
        capfd,
        "the training targets are constant (45.0): they cannot be standardised",
    )
    for kwargs, message in (
        ({"lr": np.float64(-1.0)}, "lr must be a finite number > 0, got -1.0"),
        ({"seed": np.int64(-1)}, "got -1"),
        ({"batch_size": np.int32(0)}, "batch_size must be an int > 0, got 0"),
    ):
        with pytest.raises(ValueError) as error:
            Trainer("mlp", HIDDEN, dataset="digits", **kwargs)
        assert str(error.value).endswith(message) and "np." not in str(error.value)
