"""Loaders: 12-class folders, the full archive layout, tfds (stubbed), detection, ../shared sets."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from tinyspeech_tf.audio import write_wav
from tinyspeech_tf.data import sources as S
from tinyspeech_tf.data.protocol import LABELS
from tinyspeech_tf.errors import UserError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _need_shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"../shared/data/{name} is not available beside the repository checkout")
    return path


def _clip(value: float, n: int = 16000) -> np.ndarray:
    return np.full(n, value, dtype=np.float32)


def make_12class(folder: Path, per_label: int = 2, skip: tuple[str, ...] = ()) -> Path:
    """A tiny 12-class split; clips of label k hold (k + 1) / 100 so labels are checkable."""
    for k, label in enumerate(LABELS):
        if label in skip:
            continue
        (folder / label).mkdir(parents=True)
        for i in range(per_label):
            suffix = ".wav.wav" if label == "_unknown_" else ".wav"
            write_wav(folder / label / f"c{i}{suffix}", _clip((k + 1) / 100))
    return folder


def make_archive(root: Path) -> Path:
    """A tiny full-archive layout: 3 keywords, 4 other words, lists, background noise."""
    rels = []
    for word in ("yes", "no", "stop", "bed", "cat", "dog", "wow"):
        (root / word).mkdir(parents=True)
        for spk in range(4):
            write_wav(root / word / f"{spk:08x}_nohash_0.wav", _clip(0.2, 12000))
            rels.append(f"{word}/{spk:08x}_nohash_0.wav")
    (root / "_background_noise_").mkdir()
    rng = np.random.default_rng(0)
    write_wav(root / "_background_noise_" / "hum.wav",
              (0.5 * rng.standard_normal(48000)).clip(-1, 1))
    (root / "validation_list.txt").write_text("\n".join(r for r in rels if "00000001" in r))
    (root / "testing_list.txt").write_text("\n".join(r for r in rels if "00000002" in r))
    return root


def test_12class_single_folder_and_parent_layout(tmp_path) -> None:
    make_12class(tmp_path / "set" / "train", per_label=3)
    make_12class(tmp_path / "set" / "val", per_label=1)
    single = S.load(tmp_path / "set" / "train")
    assert single.kind == "12class" and list(single.splits) == ["train"]
    train = single.split("train")
    assert train.waveforms.shape == (36, 16000) and train.waveforms.dtype == np.float32
    assert train.labels.dtype == np.int32 and train.label_names == LABELS
    # the clip value encodes its folder, so labels must match the folders they came from
    np.testing.assert_allclose(train.waveforms[:, 0], (train.labels + 1) / 100, atol=1e-4)
    assert any(p.endswith(".wav.wav") for p in train.paths)
    parent = S.load(tmp_path / "set")
    assert {k: len(v) for k, v in parent.splits.items()} == {"train": 36, "validation": 12}
    assert parent.split("val").counts()["yes"] == 1


def test_missing_label_folder_is_named(tmp_path) -> None:
    make_12class(tmp_path / "d", skip=("yes",))
    with pytest.raises(UserError, match=r"no yes/ subfolder"):
        S.load(tmp_path / "d")


def test_unknown_is_capped_in_12class(tmp_path) -> None:
    make_12class(tmp_path / "d", per_label=1)
    for i in range(30):
        write_wav(tmp_path / "d" / "_unknown_" / f"x{i}.wav", _clip(0.0))
    split = S.load(tmp_path / "d").split("train")
    counts = split.counts()
    # 11 non-unknown clips -> at most ceil(0.1 * 11 / 0.9) = 2 unknown
    assert counts["_unknown_"] == 2 and counts["yes"] == 1
    uncapped = S.load(tmp_path / "d", unknown_fraction=None).split("train")
    assert uncapped.counts()["_unknown_"] == 31


def test_archive_layout_splits_by_lists_and_builds_the_protocol(tmp_path) -> None:
    src = S.load(make_archive(tmp_path / "arch"))
    assert src.kind == "archive" and len(src.background_noise) == 1
    train, val, test = (src.split(s) for s in ("train", "validation", "test"))
    # speakers 0 and 3 train, 1 validation, 2 test
    assert train.counts()["yes"] == 2 and val.counts()["yes"] == 1 and test.counts()["stop"] == 1
    assert all("00000001" in p for p in val.paths if p.endswith(".wav"))
    # 6 keyword clips in train -> round(6 * 0.1 / 0.8) = 1 unknown (of 8) and 1 silence
    assert train.counts()["_unknown_"] == 1 and train.counts()["_silence_"] == 1
    assert train.counts()["up"] == 0
    silence = train.waveforms[train.labels == 0]
    assert np.abs(silence).max() <= 1.0 and np.std(silence) > 0.01
    assert any("@" in p for p in train.paths)  # silence names the noise file and offset
    # deterministic for a seed, different for another
    again = S.load(tmp_path / "arch").split("train")
    np.testing.assert_array_equal(again.waveforms, train.waveforms)
    other = S.load(tmp_path / "arch", seed=5).split("train")
    assert not np.array_equal(other.waveforms[other.labels == 0], silence)


def test_detect_and_unknown_source(tmp_path) -> None:
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes").mkdir()
    with pytest.raises(UserError, match="not a Speech Commands dataset folder"):
        S.load(tmp_path / "random")
    with pytest.raises(UserError, match="no such dataset folder"):
        S.load(tmp_path / "absent")
    assert S.detect(make_archive(tmp_path / "a")) == "archive"
    assert S.detect(make_12class(tmp_path / "c")) == "12class"


def test_bad_clip_is_named(tmp_path) -> None:
    make_12class(tmp_path / "d", per_label=1)
    bad = tmp_path / "d" / "go" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(UserError, match="broken.wav"):
        S.load(tmp_path / "d")


def _fake_tfds_load(examples):
    from tinyspeech_tf._compat import tf as tf_

    def fake_load(name, split, data_dir=None, with_info=False, download=True, **_):
        assert name == "speech_commands" and with_info and not download
        audio = [a for a, _, s in examples if s == split]
        labels = [lab for _, lab, s in examples if s == split]
        pairs = list(zip(audio, labels, strict=True))
        ds = tf_.data.Dataset.from_generator(
            lambda: ({"audio": a, "label": np.int64(lab)} for a, lab in pairs),
            output_signature={"audio": tf_.TensorSpec([None], tf_.int16),
                              "label": tf_.TensorSpec([], tf_.int64)})
        info = types.SimpleNamespace(features={"label": types.SimpleNamespace(
            names=list(S.TFDS_LABELS))})
        return ds, info

    return fake_load


def test_tfds_source_with_stubbed_builder(monkeypatch, tmp_path) -> None:
    import tensorflow_datasets as tfds

    monkeypatch.setenv("TINYSPEECH_CACHE", str(tmp_path))
    names = list(S.TFDS_LABELS)  # down go left no off on right stop up yes _silence_ _unknown_
    examples = [
        (np.full(16000, 1000, np.int16), names.index("yes"), "train"),
        (np.full(8000, -2000, np.int16), names.index("down"), "train"),  # short: padded
        (np.zeros(16000, np.int16), names.index("_silence_"), "train"),
        (np.full(16000, 300, np.int16), names.index("_unknown_"), "validation"),
        (np.full(16000, 300, np.int16), names.index("go"), "validation"),
    ]
    monkeypatch.setattr(tfds, "load", _fake_tfds_load(examples))
    src = S.load("tfds:/nonexistent/tfds_dir", splits=("train", "validation"),
                 unknown_fraction=None)
    assert src.kind == "tfds"
    train = src.split("train")
    assert [LABELS[i] for i in train.labels] == ["yes", "down", "_silence_"]
    assert train.waveforms[0, 0] == pytest.approx(1000 / 32768)
    assert train.waveforms[1, 7999] == pytest.approx(-2000 / 32768)
    assert train.waveforms[1, 8000] == 0.0
    assert src.split("validation").counts()["_unknown_"] == 1
    # Streamed once into an int16 cache of the split; a second load reads only the cache.
    cache = sorted((tmp_path / "tfds").glob("train-*.i16"))
    assert len(cache) == 1 and cache[0].stat().st_size == 3 * 16000 * 2

    def no_stream(_ds):
        raise AssertionError("the split was streamed again")

    monkeypatch.setattr(tfds, "as_numpy", no_stream)
    again = S.load("tfds:/nonexistent/tfds_dir", splits=("train",), unknown_fraction=None)
    np.testing.assert_array_equal(np.asarray(again.split("train").waveforms),
                                  np.asarray(train.waveforms))


def test_tfds_unavailable_is_a_user_error(monkeypatch) -> None:
    import tensorflow_datasets as tfds

    def failing_load(*_, **__):
        raise AssertionError("Dataset speech_commands: could not find data in /x. Please ...")

    monkeypatch.setattr(tfds, "load", failing_load)
    with pytest.raises(UserError, match="not available in /x.*could not find data"):
        S.load("tfds:/x", splits=("test",))


def test_shared_v001_mini_archive() -> None:
    root = _need_shared("speech_commands_v0.01_mini")
    src = S.load(root)
    assert src.kind == "archive"
    train, val = src.split("train"), src.split("validation")
    assert len(train) > 50 and len(val) > 10
    val_list = set((root / "validation_list.txt").read_text().split())
    assert all(str(Path(p).relative_to(root)) in val_list for p in val.paths if p.endswith("wav"))
    assert not set(train.paths) & set(val.paths)
    counts = train.counts()
    assert counts["_unknown_"] <= 0.15 * len(train) and counts["_silence_"] >= 1


def test_shared_v002_real_12class() -> None:
    root = _need_shared("speech_commands_v0.02_real")
    src = S.load(root)
    assert src.kind == "12class"
    assert len(src.split("train")) == 2673 and len(src.split("validation")) == 487
    assert min(src.split("train").counts().values()) > 150
