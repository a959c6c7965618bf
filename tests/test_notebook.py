"""notebooks/homework.ipynb: stored without outputs, and run end to end by a real kernel (nbclient)."""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from jaxtrainer.presets import CNN, DEEP_CNN, MLP, SHALLOW_CNN_28

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "homework.ipynb"
RUNS = {  # the comparison table's rows: network type and configuration
    "mlp lr=0.01": ("mlp", MLP),
    "mlp lr=0.0001": ("mlp", MLP),
    "mlp lr=1e-08": ("mlp", MLP),
    "cnn": ("cnn", CNN),
    "deep cnn": ("cnn", DEEP_CNN),
    "shallow cnn": ("cnn", SHALLOW_CNN_28),
}


def parameters(network: str, cfg) -> int:
    """Counted by hand for 1x28x28 inputs: each conv (k*k*c_in + 1) * c_out, the CNN's last pool
    adaptive to 4x4, then the dense layers and the one output."""
    width, total = 28 * 28, 0
    if network == "cnn":
        c_in = 1
        for c_out, k in zip(cfg.n_channels, cfg.kernel_sizes):
            total += (k * k * c_in + 1) * c_out
            c_in = c_out
        width = c_in * 4 * 4
    for size in (*cfg.dense_hiddens, 1):
        total += (width + 1) * size
        width = size
    return total


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cell"
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.outputs]
    numbered = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.execution_count]
    assert not dirty and not numbered, (
        f"cells {dirty} keep outputs, cells {numbered} an execution count: clear them before committing "
        "(Jupyter: Edit > Clear Outputs of All Cells)"
    )


@pytest.mark.slow
def test_notebook_runs_every_cell_and_draws_figures(tmp_path, monkeypatch):
    # The kernel is another process: it imports this checkout's packages, and writes in tmp_path.
    root = str(NOTEBOOK.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) >= 4  # experiments 1, 2, 3 and the equivariance figure
    assert (tmp_path / "equivariance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The comparison table: one row per run, its parameter count as counted by hand.
    table = next(out.data["text/markdown"] for out in outputs if "text/markdown" in out.get("data", {}))
    rows = {
        m[0]: m[1:] for m in re.findall(r"^\| ([^|]+?) \| ([\d,]+) \| ([\d.]+) \| ([\d.]+) \|", table, re.M)
    }
    assert list(rows) == list(RUNS)
    for name, (network, cfg) in RUNS.items():
        assert int(rows[name][0].replace(",", "")) == parameters(network, cfg), name
    # lr 1e-8 barely moves the weights: its test MAE stays the highest of the three MLPs.
    mlp_test_mae = {name: float(rows[name][2]) for name in RUNS if name.startswith("mlp")}
    assert max(mlp_test_mae, key=mlp_test_mae.get) == "mlp lr=1e-08"
