"""Faults: corrupted checkpoints and manifests. Each is one line naming the file, the run folder
is left as it was, and `--overwrite` starts over without touching anything outside the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import SHORT, contents, csv_bytes, leftovers, refused, run_main, train_argv

from jaxtrainer import runs

pytestmark = pytest.mark.slow  # every case copies a trained run; several train again


def _rewrite_checkpoint(path: Path, header=None, leaves=None) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    if header is not None:
        arrays["header"] = np.array(json.dumps(header(json.loads(str(arrays["header"])))))
    if leaves is not None:
        arrays = leaves(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _without(key):
    return lambda header: {k: v for k, v in header.items() if k != key}


def _reshaped(arrays):
    arrays["leaf_0"] = np.zeros((3, 5), arrays["leaf_0"].dtype)
    return arrays


def _fewer(arrays):
    last = max((k for k in arrays if k.startswith("leaf_")), key=lambda k: int(k.removeprefix("leaf_")))
    return {k: v for k, v in arrays.items() if k != last}


CORRUPTIONS = {  # name: (file, what is done to it)
    "truncated checkpoint": (
        runs.CHECKPOINT,
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    ),
    "garbage checkpoint": (runs.CHECKPOINT, lambda p: p.write_bytes(b"\x00garbage" * 100)),
    "empty checkpoint": (runs.CHECKPOINT, lambda p: p.write_bytes(b"")),
    "checkpoint header without identity": (
        runs.CHECKPOINT,
        lambda p: _rewrite_checkpoint(p, _without("identity")),
    ),
    "checkpoint header without epoch": (runs.CHECKPOINT, lambda p: _rewrite_checkpoint(p, _without("epoch"))),
    "checkpoint header with a text epoch": (
        runs.CHECKPOINT,
        lambda p: _rewrite_checkpoint(p, lambda h: {**h, "epoch": "three"}),
    ),
    "checkpoint of other shapes": (runs.CHECKPOINT, lambda p: _rewrite_checkpoint(p, leaves=_reshaped)),
    "checkpoint with an array missing": (runs.CHECKPOINT, lambda p: _rewrite_checkpoint(p, leaves=_fewer)),
    "checkpoint of another run": (
        runs.CHECKPOINT,
        lambda p: _rewrite_checkpoint(p, lambda h: {**h, "identity": {**h["identity"], "lr": 0.5}}),
    ),
    "checkpoint missing": (runs.CHECKPOINT, lambda p: p.unlink()),
    "garbled manifest": (runs.MANIFEST, lambda p: p.write_text('{"format": 2, "identity": {')),
    "manifest not an object": (runs.MANIFEST, lambda p: p.write_text("[1, 2]")),
    "manifest with a text epoch count": (
        runs.MANIFEST,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "epochs_done": "3"})),
    ),
    "manifest without identity": (
        runs.MANIFEST,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "identity": None})),
    ),
    "manifest naming outputs outside the folder": (
        runs.MANIFEST,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "outputs": ["../precious"]})),
    ),
}


# also started over with --overwrite, which must spare what lies outside the folder
STARTED_OVER = ("truncated checkpoint", "garbled manifest", "manifest naming outputs outside the folder")


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupted_run_folder_is_one_line_naming_the_file_and_left_as_it_is(
    corruption, reference, tmp_path, capfd
):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (tmp_path / "precious").write_text("mine")
    name, corrupt = CORRUPTIONS[corruption]
    corrupt(out / name)
    before = contents(out)
    refused(train_argv(out), capfd, str(out / name), "use --overwrite to start over")
    assert contents(out) == before
    if corruption in STARTED_OVER:
        code, _, _ = run_main(train_argv(out, SHORT, "--overwrite"), capfd)
        assert code == 0 and csv_bytes(out) == csv_bytes(reference) and leftovers(out) == []
        assert (tmp_path / "precious").read_text() == "mine"
