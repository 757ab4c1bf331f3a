"""Recipes as data: named recipes, explicit options winning, and the one-change-at-a-time
study with its generated report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from conftest import fails_one_line
from tiny_export import write_tone_set

from tinyspeech_tf import cli
from tinyspeech_tf.apps.common import add_recipe_arguments, recipe_fields
from tinyspeech_tf.train import TrainConfig, recipes


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser)
    return parser.parse_args(list(argv))


def test_real_recipe_is_real_plain_plus_the_adopted_variants():
    real = recipes.get("real")
    plain = recipes.get("real_plain")
    for key, value in plain.items():
        assert real[key] == value, key
    for name in recipes.ADOPTED:
        for key, value in recipes.VARIANTS[name].items():
            assert real[key] == value, (name, key)
    assert set(real) == set(plain).union(*(recipes.VARIANTS[n] for n in recipes.ADOPTED))
    # Every variant and recipe names only TrainConfig fields.
    for fields in [*recipes.RECIPES.values(), *recipes.VARIANTS.values()]:
        TrainConfig(**fields)


def test_explicit_options_override_the_recipe():
    fields = recipe_fields(_args("--recipe", "real", "--epochs", "7", "--distill-alpha", "0.2",
                                 "--teacher-labels", "a, b,c"))
    assert fields["epochs"] == 7 and fields["distill_alpha"] == 0.2
    assert fields["lr_schedule"] == "cosine" and fields["qat_epochs"] == 30
    assert fields["teacher_labels"] == ["a", "b", "c"]
    assert recipe_fields(_args()) == {}
    assert recipe_fields(_args("--recipe", "paper")) == recipes.get("paper")


@pytest.mark.parametrize("argv,fragment", [
    (["--distill-alpha", "1.5"], "--distill-alpha 1.5: use a weight in [0, 1]"),
    (["--distill-temperature", "0"], "--distill-temperature 0.0: must be > 0"),
    (["--label-smoothing", "1"], "--label-smoothing 1.0: use a value in [0, 1)"),
    (["--time-masks", "-1"], "mask options must be >= 0"),
])
def test_bad_recipe_values_are_one_line(argv, fragment, tmp_path, capsys):
    fails_one_line(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), *argv],
                   capsys, fragment)


def test_recipe_study_reports_each_change_against_the_baseline(tmp_path, capsys):
    tones = write_tone_set(tmp_path / "tones", train_per_label=2)
    report = tmp_path / "report"
    argv = ["recipe", "--data", str(tones), "--variants", "label_smoothing,baseline",
            "--seeds", "2", "--epochs", "1", "--qat-epochs", "0", "--max-steps-per-epoch", "2",
            "--runs", str(tmp_path / "runs"), "--report", str(report)]
    assert cli.main(argv) == 0
    data = json.loads(report.with_suffix(".json").read_text())
    assert [r["variant"] for r in data["rows"]] == ["baseline", "label_smoothing"]
    base, ls = data["rows"]
    assert "delta" not in base and ls["changes"] == {"label_smoothing": 0.1}
    assert ls["delta"] == pytest.approx(ls["mean"] - base["mean"])
    pairs = zip(ls["runs"], base["runs"], strict=True)
    won = sum(a["int8_tflm"] > b["int8_tflm"] for a, b in pairs)
    assert ls["seeds_won"] == won and ls["helps"] == (ls["delta"] > 0 and won == 2)
    run = Path(ls["runs"][1]["run"])
    assert run == tmp_path / "runs" / "label_smoothing" / "tinyspeech_m_seed1"
    saved = json.loads((run / "config.json").read_text())
    assert saved["label_smoothing"] == 0.1 and saved["seed"] == 1
    assert saved["lr_schedule"] == "cosine" and saved["teacher"] is None
    md = report.with_suffix(".md").read_text()
    assert "| tinyspeech_m | label_smoothing | label_smoothing=0.1 |" in md
    # A second call reuses every finished run: nothing is retrained.
    stamp = (run / "model_int8.tflite").stat().st_mtime_ns
    assert cli.main(argv) == 0
    assert (run / "model_int8.tflite").stat().st_mtime_ns == stamp
    # A run whose folder is gone keeps its figures from the report of the same recipe, marked.
    import shutil

    shutil.rmtree(run)
    assert cli.main(argv) == 0
    kept = json.loads(report.with_suffix(".json").read_text())["rows"][1]["runs"][1]
    assert not run.exists() and kept["from_report"] == report.with_suffix(".json").as_posix()
    assert kept["int8_tflm"] == ls["runs"][1]["int8_tflm"]
    assert f"{kept['int8_tflm']:.2%}*" in report.with_suffix(".md").read_text()
    # ... but not when the base recipe differs (here: one more float epoch): it trains.
    assert cli.main([*argv, "--epochs", "2"]) == 0
    assert (run / "model_int8.tflite").is_file()


def test_recipe_study_refuses_unknown_variants(tmp_path, capsys):
    fails_one_line(["recipe", "--data", str(tmp_path), "--variants", "baseline,magic"], capsys,
                   "--variants magic: choose from")
