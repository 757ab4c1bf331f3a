"""Bounded memory: loading lists and checks clips without reading their audio, training reads
them per batch, and the scale benchmark builds its archive and reports what it measured."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_export import write_tone_set

from tinyspeech_tf.bench import scale
from tinyspeech_tf.data import clips as clips_mod
from tinyspeech_tf.data import load, make_dataset
from tinyspeech_tf.errors import UserError


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_tone_set(tmp_path_factory.mktemp("tones"), train_per_label=8)


@pytest.fixture(scope="module")
def archive(tones, tmp_path_factory):
    """A 360-clip archive in the official layout, varied from the tone set."""
    root = tmp_path_factory.mktemp("scale") / "archive"
    splits = [load(tones).split("train")]
    info = scale.build_archive(root, 360, splits, None, seed=0, log=lambda _: None)
    return root, info, splits


def test_loading_reads_no_audio_and_training_reads_per_batch(archive, monkeypatch):
    root, _, _ = archive
    reads: list[str] = []
    real_read = clips_mod.read_clip
    monkeypatch.setattr(clips_mod, "read_clip", lambda path: reads.append(path) or
                        real_read(path))
    source = load(root)
    train = source.split("train")
    assert len(train) > 200 and reads == []  # listed and header-checked, nothing read
    ds = make_dataset(train, batch_size=16, training=True, seed=0, epochs=1)
    x, _ = next(iter(ds))
    assert x.shape == (16, 16000)
    # The first batch (and the few prefetched behind it), not the split, was read.
    assert 16 <= len(reads) < len(train) // 2
    # What is read equals what reading every clip up front gave.
    every = np.asarray(train.waveforms)
    again = train.waveforms.read(np.array([3, 0, 7]))
    np.testing.assert_array_equal(again, every[[3, 0, 7]])


def test_archive_is_official_layout_reused_and_prefixes_hold_every_word(archive, tmp_path):
    root, info, splits = archive
    assert (root / "validation_list.txt").is_file() and (root / "testing_list.txt").is_file()
    again = scale.build_archive(root, 360, splits, None, seed=0, log=lambda _: None)
    assert again["names"] == info["names"]  # reused, not rebuilt
    small = tmp_path / "small"
    scale.subset_archive(root, info, small, 120)
    loaded = load(small).split("train")
    assert set(np.unique(loaded.labels)) >= set(range(2, 12))  # every keyword in the prefix
    # Hard links: the subset costs no second copy of its clips.
    first = info["names"][0]
    assert (small / first).stat().st_ino == (root / first).stat().st_ino


def test_bench_scale_reports_what_it_measured(tones, tmp_path, capsys):
    from tinyspeech_tf import cli

    out = tmp_path / "report"
    code = cli.main(["bench-scale", "--real", str(tones), "--no-synthetic", "--sizes", "240,480",
                     "--work",
                     str(tmp_path / "work"), "--out", str(out)])
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())
    rows = report["rows"]
    assert [r["clips"] for r in rows] == [240, 480]
    for row in rows:
        assert 100 * 2**20 < row["peak_rss_bytes"] < 8 * 2**30
        assert row["clips_per_second"] > 0 and row["first_batch_seconds"] > 0
    assert report["checks"]["rss_growth"] == round(rows[1]["peak_rss_bytes"]
                                                   / rows[0]["peak_rss_bytes"], 3)
    assert "| 480 |" in out.with_suffix(".md").read_text()


def test_bench_scale_bad_sizes_are_one_line(capsys):
    from conftest import fails_one_line

    fails_one_line(["bench-scale", "--sizes", "10k"], capsys, "--sizes")
    with pytest.raises(UserError, match="at least two"):
        from tinyspeech_tf.apps import bench_scale

        bench_scale.run(type("A", (), {"sizes": "5000", "no_synthetic": True})())
