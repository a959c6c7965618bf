"""benchmarks/backprop_speed.py (Lab C: hand backward vs autograd) end to end on tiny data."""

import json

import pytest

from benchmarks.backprop_speed import BASELINE, LABELS, VARIANTS, main

CONFIGS = ["1x16", "2x8"]


@pytest.mark.slow
def test_every_variant_is_timed_and_computes_the_same_gradient(tmp_path, capsys):
    rc = main(
        [
            "--n-train",
            "600",
            "--batch-size",
            "50",
            "--epochs",
            "2",
            "--configs",
            *CONFIGS,
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "backprop_speed.json").read_text())
    table = (tmp_path / "backprop_speed.md").read_text()
    assert report["meta"]["configs"] == CONFIGS
    assert [row["config"] for row in report["rows"]] == CONFIGS
    for label in LABELS.values():
        assert label in table
    for row in report["rows"]:
        variants = row["variants"]
        assert set(variants) == set(VARIANTS)
        for timing in variants.values():
            assert len(timing["epoch_s"]) == 2 and all(t > 0 for t in timing["epoch_s"])
            assert timing["first_epoch_s"] == timing["epoch_s"][0]
            assert timing["median_epoch_s"] == timing["epoch_s"][1]
        medians = {name: variants[name]["median_epoch_s"] for name in VARIANTS}
        assert set(row["ratios"]) == set(VARIANTS) - {BASELINE}
        for name, ratio in row["ratios"].items():
            assert ratio == pytest.approx(medians[name] / medians[BASELINE], rel=1e-12)
        line = next(l for l in table.splitlines() if l.startswith(f"| {row['config']} | "))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2 : 2 + len(VARIANTS)] == [f"{medians[n]:.3f}" for n in VARIANTS]
        assert cells[2 + len(VARIANTS) :] == [f"{row['ratios'][n]:.2f}x" for n in VARIANTS if n != BASELINE]
        diffs = row["grad_max_abs_diff_vs_jax_grad"]
        assert set(diffs) == {"jax_hand", "torch_autograd", "torch_hand", "grad_max_abs"}
        assert diffs["grad_max_abs"] > 0
        for name in ("jax_hand", "torch_autograd", "torch_hand"):
            assert diffs[name] < 1e-5, (row["config"], name, diffs)
        # same θ, data, order and optimizer: the four trained alike
        losses = [variants[n]["last_epoch_train"]["loss"] for n in VARIANTS]
        assert max(losses) - min(losses) < 1e-4, losses


def test_a_malformed_config_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--configs", "3by300", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "DEPTHxWIDTH" in capsys.readouterr().err
    assert not (tmp_path / "backprop_speed.json").exists()
