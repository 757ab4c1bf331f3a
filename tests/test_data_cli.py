"""`tinyspeech dataset info` and bad input through the real CLI: one line, exit code 2."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_one_line as _fails

from tinyspeech_tf import cli
from tinyspeech_tf.audio import write_wav
from tinyspeech_tf.data.protocol import LABELS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def only_dataset_command(monkeypatch):
    """Build the CLI with just our command so other commands' work in progress cannot break it."""
    monkeypatch.setattr(cli, "COMMANDS", {"dataset": cli.COMMANDS["dataset"]})


def _good_set(folder: Path) -> Path:
    for label in LABELS:
        (folder / label).mkdir(parents=True)
        write_wav(folder / label / "a.wav", np.full(16000, 0.1, np.float32))
    return folder


def _raw_wav(path: Path, rate: int = 16000, channels: int = 1, frames: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.zeros(frames * channels, "<i2").tobytes())




def test_info_prints_kind_sizes_and_counts(tmp_path, capsys) -> None:
    _good_set(tmp_path / "d" / "train")
    _good_set(tmp_path / "d" / "validation")
    assert cli.main(["dataset", "info", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "kind: 12class" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert lines["split"] == ["train", "validation"]
    assert lines["total"] == ["12", "12"]
    assert lines["yes"] == ["1", "1"]


@pytest.mark.parametrize("name, writer, fragment", [
    ("corrupt.wav", lambda p: p.write_bytes(b"RIFF\x00\x00WAVEgarbage"), "not a readable"),
    ("empty.wav", lambda p: p.write_bytes(b""), "not a readable"),
    ("noframes.wav", lambda p: _raw_wav(p, frames=0), "empty clip"),
    ("fast.wav", lambda p: _raw_wav(p, rate=44100), "44100 Hz"),
    ("stereo.wav", lambda p: _raw_wav(p, channels=2), "2 channels"),
])
def test_bad_clip_names_the_file(tmp_path, capsys, name, writer, fragment) -> None:
    root = _good_set(tmp_path / "d")
    writer(root / "stop" / name)
    _fails(["dataset", "info", str(root)], capsys, name, fragment)


def test_missing_label_folder(tmp_path, capsys) -> None:
    root = _good_set(tmp_path / "d")
    (root / "yes" / "a.wav").unlink()
    (root / "yes").rmdir()
    _fails(["dataset", "info", str(root)], capsys, "yes/", "d:")


def test_empty_dataset(tmp_path, capsys) -> None:
    for label in LABELS:
        (tmp_path / "d" / label).mkdir(parents=True)
    _fails(["dataset", "info", str(tmp_path / "d")], capsys, "empty")
    (tmp_path / "arch" / "yes").mkdir(parents=True)
    (tmp_path / "arch" / "validation_list.txt").write_text("")
    _fails(["dataset", "info", str(tmp_path / "arch")], capsys, "empty")


def test_unknown_sources(tmp_path, capsys) -> None:
    _fails(["dataset", "info", str(tmp_path / "nope")], capsys, "no such dataset folder")
    (tmp_path / "misc" / "photos").mkdir(parents=True)
    _fails(["dataset", "info", str(tmp_path / "misc")], capsys, "not a Speech Commands")
    (tmp_path / "file.txt").write_text("x")
    _fails(["dataset", "info", str(tmp_path / "file.txt")], capsys, "not a folder")
    (tmp_path / "mixed" / "yes").mkdir(parents=True)
    (tmp_path / "mixed" / "_unknown_").mkdir()
    (tmp_path / "mixed" / "bed").mkdir()
    _fails(["dataset", "info", str(tmp_path / "mixed")], capsys, "bed/")


def test_info_on_shared_sets(capsys) -> None:
    for name, kind in (("speech_commands_v0.02_real", "12class"),
                       ("speech_commands_v0.01_mini", "archive")):
        if not (SHARED / name).is_dir():
            pytest.skip(f"../shared/data/{name} is not available beside the repository checkout")
        assert cli.main(["dataset", "info", str(SHARED / name)]) == 0
        out = capsys.readouterr().out
        assert f"kind: {kind}" in out and "_silence_" in out
