"""Detector settings chosen on a validation stream, not guessed, and the DET curve behind them.

Why: the smoother's threshold, averaging window and count decide a board's hit rate and false
alarms per hour as much as the model does, and micro_speech's defaults (1 s, 200/255, 3) were
tuned for another model. Here the model runs once over a validation stream (keywords, unknown
words, silence over noise, with its label track); the smoother's threshold-independent part
(the ring of recent results and its averages) runs once per averaging window, and the detection
rule is replayed for every threshold and count: a full sweep costs seconds. The chosen point is
the highest hit rate within a false-alarm budget; it is stored beside the run as
``detector.json``, which ``tinyspeech stream`` uses as its defaults and ``export-tflite`` writes
into ``model_settings.h`` for the firmware.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tinyspeech_tf.stream.detect import (  # noqa: F401  (re-exported)
    DETECTOR_FILE,
    Detection,
    DetectorSettings,
    read_settings,
    silence_index,
)
from tinyspeech_tf.stream.smoother import MAX_RESULTS, RecognizeCommands, SmootherConfig

THRESHOLDS = tuple(range(100, 256, 5))
WINDOWS_MS = (250, 500, 750, 1000)
MIN_COUNTS = (1, 2, 3, 4)
SUPPRESSION_MS = 1500
DEFAULT_MAX_FA_PER_HOUR = 6.0


def averages(scores: np.ndarray, times_ms: np.ndarray, num_classes: int,
             window_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per result: how many results the ring holds, the top class and its average score, as the
    smoother computes them (they do not depend on the threshold, the count or suppression)."""
    probe = RecognizeCommands(num_classes, SmootherConfig(average_window_ms=window_ms,
                                                          detection_threshold=255,
                                                          minimum_count=MAX_RESULTS))
    n = np.zeros(len(scores), np.int64)
    top = np.zeros(len(scores), np.int64)
    top_score = np.zeros(len(scores), np.int64)
    for i, (row, t) in enumerate(zip(scores, times_ms, strict=True)):
        result = probe.process(row, int(t))
        n[i] = probe.results
        top[i], top_score[i] = result.found_command, result.score
    return n, top, top_score


def replay(n: np.ndarray, top: np.ndarray, top_score: np.ndarray, times_ms: np.ndarray,
           labels: Sequence[str], *, threshold: int, min_count: int,
           suppression_ms: int) -> list[Detection]:
    """The smoother's detection rule on precomputed averages: the detections
    :class:`~tinyspeech_tf.stream.smoother.RecognizeCommands` reports with these settings."""
    silence = silence_index(labels)
    last_command, last_time = -1, 0
    found = []
    candidates = np.flatnonzero((n >= min_count) & (top_score >= threshold) & (top != silence))
    for i in candidates:
        t, command = int(times_ms[i]), int(top[i])
        if command != last_command or t - last_time > suppression_ms:
            last_command, last_time = command, t
            found.append(Detection(t, labels[command], int(top_score[i])))
    return found


def sweep(scores: np.ndarray, times_ms: np.ndarray, labels: Sequence[str], utterances,
          *, duration_s: float, tolerance_s: float, stride_ms: int,
          thresholds: Sequence[int] = THRESHOLDS, windows_ms: Sequence[int] = WINDOWS_MS,
          min_counts: Sequence[int] = MIN_COUNTS,
          suppression_ms: int = SUPPRESSION_MS) -> list[dict]:
    """Hit rate and false alarms per hour for every setting (a count the window cannot hold at
    this stride is skipped: it would never fire)."""
    from tinyspeech_tf.stream.detect import is_keyword
    from tinyspeech_tf.stream.score import score_detections

    keywords = [name for name in labels if is_keyword(name)]
    points = []
    for window_ms in windows_ms:
        n, top, top_score = averages(scores, times_ms, len(labels), window_ms)
        for min_count in min_counts:
            if min_count > window_ms // stride_ms + 1:
                continue
            for threshold in thresholds:
                found = replay(n, top, top_score, times_ms, labels, threshold=threshold,
                               min_count=min_count, suppression_ms=suppression_ms)
                s = score_detections(found, utterances, duration_s=duration_s,
                                     keywords=keywords, tolerance_s=tolerance_s)
                points.append({"window_ms": window_ms, "min_count": min_count,
                               "threshold": threshold, "hits": s["hits"],
                               "utterances": s["utterances"], "hit_rate": s["hit_rate"],
                               "false_alarms": s["false_alarms"],
                               "false_alarms_per_hour": s["false_alarms_per_hour"]})
    return points


def choose(points: Sequence[dict], max_fa_per_hour: float) -> dict:
    """The highest hit rate within the false-alarm budget (ties: fewer false alarms, then the
    higher threshold); with no point inside the budget, the one with fewest false alarms."""
    inside = [p for p in points if p["false_alarms_per_hour"] <= max_fa_per_hour]
    if inside:
        return max(inside, key=lambda p: (p["hit_rate"] or 0.0, -p["false_alarms_per_hour"],
                                          p["threshold"]))
    return min(points, key=lambda p: (p["false_alarms_per_hour"], -(p["hit_rate"] or 0.0)))


def det_curve(points: Sequence[dict], window_ms: int, min_count: int) -> list[dict]:
    """The points of one window and count, by rising threshold: a DET curve."""
    return sorted((p for p in points if p["window_ms"] == window_ms
                   and p["min_count"] == min_count), key=lambda p: p["threshold"])


def plot(points: Sequence[dict], chosen: dict, path: str | os.PathLike, title: str) -> None:
    """Hit rate against false alarms per hour, one curve per window and count, the chosen
    point marked."""
    from tinyspeech_tf.plots import figure, save_figure

    fig, ax = figure((7.5, 5))
    for window_ms in sorted({p["window_ms"] for p in points}):
        for min_count in sorted({p["min_count"] for p in points}):
            curve = det_curve(points, window_ms, min_count)
            if curve:
                ax.plot([p["false_alarms_per_hour"] for p in curve],
                        [100 * (p["hit_rate"] or 0.0) for p in curve], marker=".",
                        linewidth=1, label=f"{window_ms} ms, count {min_count}")
    ax.plot([chosen["false_alarms_per_hour"]], [100 * (chosen["hit_rate"] or 0.0)], "k*",
            markersize=14, label=f"chosen: threshold {chosen['threshold']}")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("keywords hit (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)
