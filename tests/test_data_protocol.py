"""12-class protocol: label order, labels.txt round trip, word mapping, remapping orders."""

from __future__ import annotations

import numpy as np
import pytest

from tinyspeech_tf.data import protocol as P
from tinyspeech_tf.data.sources import Split, remap_labels
from tinyspeech_tf.errors import UserError


def test_label_order_is_the_tf_speech_commands_example_order() -> None:
    assert P.LABELS == ("_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right",
                        "on", "off", "stop", "go")
    assert len(set(P.LABELS)) == 12
    assert not set(P.UNKNOWN_WORDS) & set(P.WORDS)


def test_labels_file_round_trip_keeps_order(tmp_path) -> None:
    order = tuple(reversed(P.LABELS))
    P.write_labels(tmp_path / "labels.txt", order)
    assert P.read_labels(tmp_path / "labels.txt") == order
    assert (tmp_path / "labels.txt").read_text().splitlines()[0] == "go"
    assert list(tmp_path.iterdir()) == [tmp_path / "labels.txt"]  # no temp file left


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("yes\nno\nyes\n", "duplicate")])
def test_bad_labels_files_are_user_errors(tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=fragment):
        P.read_labels(path)
    with pytest.raises(UserError, match="no such labels file"):
        P.read_labels(tmp_path / "missing.txt")


def test_word_to_label_maps_other_words_to_unknown() -> None:
    assert P.word_to_label("yes") == "yes"
    assert P.word_to_label("marvin") == "_unknown_"
    assert P.word_to_label("silence") == "_silence_"
    assert P.label_index("go") == 11
    with pytest.raises(UserError, match="unknown label"):
        P.label_index("maybe")


def test_remap_to_mlperf_order_moves_labels_by_name() -> None:
    split = Split(np.zeros((3, 16000), np.float32), np.array([0, 1, 2], np.int32), P.LABELS)
    mlperf = remap_labels(split, P.MLPERF_LABELS)
    # _silence_ -> "silence" (10), _unknown_ -> "unknown" (11), yes -> 9
    assert mlperf.labels.tolist() == [10, 11, 9]
    assert mlperf.label_names == P.MLPERF_LABELS
    with pytest.raises(UserError, match="no place"):
        remap_labels(split, ("yes", "no"))
