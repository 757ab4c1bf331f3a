"""`tinyspeech seeds`: one recipe, several seeds, runs reused on a second call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fails_one_line
from tiny_export import write_tone_set

from tinyspeech_tf import cli, quantize


@pytest.fixture(scope="module")
def tone_set(tmp_path_factory) -> Path:
    return write_tone_set(tmp_path_factory.mktemp("tones"), train_per_label=4)


def test_seeds_trains_each_seed_then_reuses_the_runs(tone_set, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps({"builder": "tinyspeech", "kwargs": {
        "stem_channels": 4, "embed_widths": [4], "head_channels": 8}}))
    argv = ["seeds", str(spec), "--data", str(tone_set), "--seeds", "2", "--seed", "3",
            "--epochs", "1", "--qat-epochs", "0", "--runs", str(tmp_path / "runs"),
            "--report", str(tmp_path / "report"), "--rounds", "5"]
    assert cli.main(argv) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    (row,) = report["architectures"]
    assert report["seeds"] == [3, 4] and row["architecture"] == "tiny"
    runs = [json.loads((tmp_path / "runs" / f"tiny_seed{s}" / "metrics.json").read_text())
            for s in (3, 4)]
    accuracies = [m["int8_tflm"]["accuracy"] for m in runs]
    assert [r["int8_tflm"] for r in row["runs"]] == accuracies
    assert row["mean"] == pytest.approx(sum(accuracies) / 2)
    assert row["min"] == min(accuracies) and row["max"] == max(accuracies)
    assert row["tflite_bytes"] == max(m["tflite_bytes"] for m in runs)
    assert "| tiny |" in (tmp_path / "report.md").read_text()
    # The first seed's int8 model: its operators and a host latency measured on it.
    first = (tmp_path / "runs" / "tiny_seed3" / "model_int8.tflite").read_bytes()
    assert row["ops"] == quantize.op_count(first) >= len(quantize.op_set(first))
    assert row["latency_us"] > 0
    from tinyspeech_tf import board_arena, board_cost

    assert row["arena_32bit_bytes"] == board_arena.board_arena_bytes(first)["arena"]
    assert row["cmsis_nn_instructions"] == board_cost.estimate(first)["instructions"] > 0

    # A second call finds both runs finished with this exact recipe and trains nothing.
    def no_training(*_args, **_kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("tinyspeech_tf.train.train", no_training)
    capsys.readouterr()
    assert cli.main(argv) == 0
    again = json.loads((tmp_path / "report.json").read_text())
    for r in (report, again):  # the latency is measured afresh
        r["architectures"][0].pop("latency_us")
    assert again == report


def test_seeds_unknown_architecture_is_one_line(tmp_path, capsys):
    fails_one_line(["seeds", "no_such_model", "--data", str(tmp_path)], capsys,
                   "no_such_model: neither a zoo model")
