"""Detector settings chosen on a validation stream: the fast replay is the smoother, the sweep
behaves, the chosen point is the sweep's best, and the settings travel into model_settings.h."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_stream import clip_folder  # noqa: F401  (the fixture: tone "words" and noise)
from tiny_export import make_run

from tinyspeech_tf import cli
from tinyspeech_tf.data import LABELS
from tinyspeech_tf.stream import tune
from tinyspeech_tf.stream.detect import detections_from_scores, smoother_config
from tinyspeech_tf.stream.make import speaker_half
from tinyspeech_tf.stream.score import Utterance, score_detections

KEYWORDS = [n for n in LABELS if n not in ("_silence_", "_unknown_")]


def _stream(rng: np.random.Generator, seconds: float, stride_ms: int, gap_s: float = 4.0):
    """Silence-dominated int8 scores with keyword bursts of random height every ``gap_s``
    seconds; half the bursts are utterances on the track, the rest false-alarm bait."""
    n = int(seconds * 1000 // stride_ms)
    times = np.arange(n) * stride_ms
    scores = np.full((n, len(LABELS)), -120, np.int8)
    scores[:, 0] = 100
    utterances = []
    for start_s in np.arange(1.0, seconds - gap_s, gap_s):
        label = int(rng.integers(2, len(LABELS)))
        height = int(rng.integers(-40, 127))
        a, b = int(start_s * 1000 // stride_ms), int((start_s + 0.6) * 1000 // stride_ms)
        scores[a:b, label], scores[a:b, 0] = height, -100
        if rng.random() < 0.5:
            utterances.append(Utterance(float(start_s), float(start_s) + 0.6, LABELS[label]))
    return scores, times, utterances


@pytest.mark.parametrize("window_ms", tune.WINDOWS_MS)
def test_replay_is_the_smoother(window_ms):
    """For every window, count and threshold of the sweep, replaying the detection rule on the
    precomputed averages gives exactly the smoother twin's detections."""
    rng = np.random.default_rng(window_ms)
    for _ in range(3):
        scores = rng.integers(-128, -60, size=(400, len(LABELS))).astype(np.int8)
        for start in range(0, 400, 17):
            scores[start:start + int(rng.integers(1, 12)), int(rng.integers(len(LABELS)))] = \
                rng.integers(0, 128)
        times = np.cumsum(rng.choice([20, 100, 120], size=400))
        n, top, top_score = tune.averages(scores, times, len(LABELS), window_ms)
        for min_count in tune.MIN_COUNTS:
            for threshold in (100, 150, 180, 200, 230, 255):
                config = smoother_config(LABELS, threshold=threshold, window_ms=window_ms,
                                         min_count=min_count,
                                         suppression_ms=tune.SUPPRESSION_MS)
                assert tune.replay(n, top, top_score, times, LABELS, threshold=threshold,
                                   min_count=min_count, suppression_ms=tune.SUPPRESSION_MS) \
                    == detections_from_scores(scores, times, LABELS, config)


def test_sweep_is_monotone_when_utterances_are_apart():
    """Bursts further apart than window + suppression: raising the threshold can only drop
    detections, so hits and false alarms per hour never rise along a DET curve."""
    rng = np.random.default_rng(1)
    scores, times, utterances = _stream(rng, 600.0, 100)
    points = tune.sweep(scores, times, LABELS, utterances, duration_s=600.0, tolerance_s=1.0,
                        stride_ms=100)
    assert {p["window_ms"] for p in points} == set(tune.WINDOWS_MS)
    for window_ms in tune.WINDOWS_MS:
        for min_count in tune.MIN_COUNTS:
            curve = tune.det_curve(points, window_ms, min_count)
            if not curve:
                continue
            hits = [p["hits"] for p in curve]
            fas = [p["false_alarms"] for p in curve]
            assert hits == sorted(hits, reverse=True) and fas == sorted(fas, reverse=True)
            assert hits[0] > hits[-1] and fas[0] > fas[-1]  # the sweep spans the range


def test_chosen_point_is_the_sweeps_best_within_budget():
    rng = np.random.default_rng(2)
    scores, times, utterances = _stream(rng, 600.0, 100, gap_s=2.5)
    points = tune.sweep(scores, times, LABELS, utterances, duration_s=600.0, tolerance_s=1.0,
                        stride_ms=100)
    for budget in (0.0, 6.0, 60.0, 1e9):
        chosen = tune.choose(points, budget)
        assert chosen in points
        inside = [p for p in points if p["false_alarms_per_hour"] <= budget]
        if inside:
            assert chosen["false_alarms_per_hour"] <= budget
            assert chosen["hit_rate"] == max(p["hit_rate"] for p in inside)
        # its figures are those of the smoother run with its settings
        config = smoother_config(LABELS, threshold=chosen["threshold"],
                                 window_ms=chosen["window_ms"], min_count=chosen["min_count"],
                                 suppression_ms=tune.SUPPRESSION_MS)
        found = detections_from_scores(scores, times, LABELS, config)
        s = score_detections(found, utterances, duration_s=600.0, keywords=KEYWORDS)
        assert (s["hits"], s["false_alarms"]) == (chosen["hits"], chosen["false_alarms"])


def test_speaker_halves_split_speakers_not_clips():
    names = [f"yes/{s}_nohash_{k}.wav" for s in ("0a7c2a8d", "3c257192", "b0ae6326",
                                                  "c0fb6812", "f2e59fea", "1b4c9b89")
             for k in range(3)]
    halves = {n: speaker_half(n) for n in names}
    assert set(halves.values()) <= {"a", "b"} and len(set(halves.values())) == 2
    for n in names:  # all clips of a speaker fall in one half
        speaker = n.split("/")[1].split("_nohash_")[0]
        assert {h for m, h in halves.items() if speaker in m} == {halves[n]}


def test_stream_tune_writes_detector_and_export_uses_it(clip_folder, tmp_path, capsys):  # noqa: F811
    """End to end on two tone streams: settings chosen on one, scored on the other; the run's
    detector.json is what export writes into model_settings.h, and `stream` defaults to it."""
    data, noise = clip_folder
    for name, seed in (("a", 1), ("b", 2)):
        assert cli.main(["stream-make", str(tmp_path / f"{name}.wav"), "--data", str(data),
                         "--minutes", "0.4", "--seed", str(seed), "--noise-dir", str(noise),
                         "--gap-s", "0.5", "1.0"]) == 0
    run = make_run(tmp_path)
    out = tmp_path / "report"
    assert cli.main(["stream-tune", str(run), "--tune", str(tmp_path / "a.wav"),
                     "--test", str(tmp_path / "b.wav"), "--strides", "20,100",
                     "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    row = next(r for r in report["models"][0]["rows"] if r["stride_ms"] == 100)
    detector = json.loads((run / "detector.json").read_text())
    assert detector["stride_ms"] == 100 and detector["threshold"] == row["chosen"]["threshold"]
    assert detector["window_ms"] == row["chosen"]["window_ms"]
    assert report["tuning_stream"].endswith("a.wav") and out.with_suffix(".png").is_file()
    capsys.readouterr()
    # the same file as tuning and test stream is refused
    assert cli.main(["stream-tune", str(run), "--tune", str(tmp_path / "a.wav"),
                     "--test", str(tmp_path / "a.wav"), "--out", str(out)]) == 2
    assert "the same file" in capsys.readouterr().err

    export = tmp_path / "export"
    assert cli.main(["export-tflite", str(run), "--out", str(export), "--no-copy",
                     "--golden-wav", str(data / "yes" / "yes_0.wav")]) == 0
    settings = (export / "model_settings.h").read_text()
    assert f"#define TINYSPEECH_DETECTOR_THRESHOLD {detector['threshold']}" in settings
    assert "#define TINYSPEECH_DETECTOR_STRIDE_FRAMES 5" in settings
    ring = max(detector["window_ms"] // 100 + 1, detector["min_count"])
    assert f"#define TINYSPEECH_SMOOTHER_RESULTS {ring} " in settings
    capsys.readouterr()
    assert cli.main(["stream", str(tmp_path / "b.wav"), "--model", str(run),
                     "--json", str(tmp_path / "s.json")]) == 0
    streamed = json.loads((tmp_path / "s.json").read_text())
    assert streamed["stride_ms"] == 100
    assert Path(streamed["audio"]).name == "b.wav"
