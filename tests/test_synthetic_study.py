"""``tinyspeech synthetic``: each row x seed trained with its own data and recipe, every run
scored on the real validation split, the report's means are those scores."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import fails_one_line
from tiny_export import make_run, write_tone_set

from tinyspeech_tf import cli
from tinyspeech_tf.studies import synthetic


def test_rows_train_their_own_data_and_are_scored_on_real_val(tmp_path, monkeypatch, capsys):
    real = write_tone_set(tmp_path / "real", train_per_label=1)
    template = make_run(tmp_path / "template")
    trained = []

    def fake_training(config):  # what run_summary returns, with a run where it would train
        trained.append((config.data, tuple(config.extra_train), config.epochs, config.seed))
        shutil.copytree(template, config.out)
        return {"int8_tflm": 0.5}

    monkeypatch.setattr("tinyspeech_tf.train.run_summary", fake_training)
    report_path = tmp_path / "reports" / "synthetic"
    assert cli.main(["synthetic", "--real", str(real), "--seeds", "2", "--runs",
                     str(tmp_path / "runs"), "--report", str(report_path)]) == 0
    from tinyspeech_tf.train import recipes

    paper, real_epochs = recipes.get("paper")["epochs"], recipes.get("real")["epochs"]
    assert trained == [("synthetic", (), paper, 0), ("synthetic", (), paper, 1),
                       (str(real), (), real_epochs, 0), (str(real), (), real_epochs, 1),
                       (str(real), ("synthetic",), real_epochs, 0),
                       (str(real), ("synthetic",), real_epochs, 1)]
    report = json.loads(report_path.with_suffix(".json").read_text())
    assert [r["row"] for r in report["rows"]] == ["synthetic", "real", "synthetic+real"]
    assert report["val_examples"] == 24
    for row in report["rows"]:
        scores = [r["real_val_int8"] for r in row["runs"]]
        assert row["mean"] == pytest.approx(sum(scores) / 2) and 0 <= min(scores) <= 1
        assert all(r["own_val_int8"] == 0.5 for r in row["runs"])
    md = report_path.with_suffix(".md").read_text()
    assert f"**{report['rows'][0]['mean']:.2%}**" in md
    capsys.readouterr()


def test_bad_arguments_are_one_line(tmp_path, capsys):
    fails_one_line(["synthetic", "--rows", "bogus", "--real", str(tmp_path)], capsys,
                   "--rows bogus")
    fails_one_line(["synthetic", "--real", str(tmp_path / "none")], capsys, "no such dataset")
    assert synthetic.ROWS["synthetic"] == ("synthetic", [], "paper")
