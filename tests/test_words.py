"""Your own keywords: --words picks them from a Speech Commands archive, every other word is
_unknown_, and the labels travel through the run into the firmware headers."""

from __future__ import annotations

import pytest
from conftest import fails_one_line, require_shared

from tinyspeech_tf import cli
from tinyspeech_tf.data.protocol import labels_for
from tinyspeech_tf.data.sources import load
from tinyspeech_tf.errors import UserError


@pytest.mark.parametrize("words", [[], ["a", "a"], ["_silence_"], ["bad word"],
                                   [f"w{i}" for i in range(31)]])
def test_bad_word_lists_are_refused(words):
    with pytest.raises(UserError, match="--words"):
        labels_for(words)


def test_archive_keeps_the_words_and_maps_the_rest_to_unknown():
    mini = require_shared("data", "speech_commands_v0.01_mini")
    source = load(str(mini), words=("marvin", "sheila", "bed"))
    for split in source.splits.values():
        assert split.label_names == ("_silence_", "_unknown_", "marvin", "sheila", "bed")
        for path, label in zip(split.paths, split.labels, strict=True):
            word = path.replace("\\\\", "/").split("/")[-2]
            expected = word if word in ("marvin", "sheila", "bed") else (
                "_silence_" if word == "_background_noise_" or "@" in path else "_unknown_")
            assert split.label_names[label] == expected, path
    counts = source.split("train").counts()
    assert all(counts[w] > 0 for w in ("marvin", "sheila", "bed"))


def test_three_word_model_trains_and_exports(tmp_path, capsys):
    """Fine-tuned from the shipped TinySpeech-M with a fresh 5-way classifier."""
    mini = require_shared("data", "speech_commands_v0.01_mini")
    run = tmp_path / "words"
    assert cli.main(["train", "--words", "marvin,sheila,bed", "--data", str(mini), "--out",
                     str(run), "--epochs", "1", "--qat-epochs", "0",
                     "--max-steps-per-epoch", "2", "--init-from", "pretrained"]) == 0
    assert "weights from pretrained" in capsys.readouterr().out
    assert '"init_from": "pretrained"' in (run / "metrics.json").read_text()
    assert (run / "labels.txt").read_text().split() == [
        "_silence_", "_unknown_", "marvin", "sheila", "bed"]
    assert cli.main(["export-tflite", str(run), "--out", str(tmp_path / "export"),
                     "--no-copy"]) == 0
    settings = (tmp_path / "export" / "model_settings.h").read_text()
    assert '{"_silence_", "_unknown_", "marvin", "sheila", "bed"}' in settings


def test_words_need_an_archive(tmp_path, capsys):
    val = require_shared("data", "speech_commands_v0.02_real")
    fails_one_line(["train", "--words", "marvin", "--data", str(val), "--out",
                    str(tmp_path / "r")], capsys, "custom --words need the full Speech "
                   "Commands archive layout")
    fails_one_line(["train", "--words", "marvin", "--out", str(tmp_path / "s")], capsys,
                   "the offline synthetic set speaks the ten protocol words")
    mini = require_shared("data", "speech_commands_v0.01_mini")
    fails_one_line(["train", "--words", "nosuchword", "--data", str(mini), "--out",
                    str(tmp_path / "t")], capsys, "no folder for word(s) nosuchword")
