"""``tinyspeech stream-tune``: detector settings chosen on one stream, tested on another.

For each stride a board might run the model at, the detector (threshold, averaging window,
count) is chosen on the *tuning* stream (one half of the validation speakers, see
``stream-make --speakers a``) as the highest hit rate within the false-alarm budget, and then
scored, unchanged, on the *test* stream (the other half). The test stream never chooses
anything. The settings for the board's stride are written beside the run (``detector.json``);
anchor models (the MLPerf reference, our DS-CNN) go through the same procedure, so the report
shows what the detector does with a stronger model on the same audio.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.stream import tune
from tinyspeech_tf.stream.detect import is_keyword, load_model, run_stream, stride_frames
from tinyspeech_tf.stream.score import (
    DEFAULT_TOLERANCE_S,
    check_track_audio,
    read_track,
    score_detections,
)

# 250 ms is not a whole number of 20 ms frame steps (a board runs the model when a frame
# completes): 240 ms stands for it.
STRIDES_MS = (20, 100, 240, 500)
# The stride the firmware defaults to when no other is asked: the smallest measured stride a
# Cortex-M4 at 64 MHz sustains with TinySpeech-M (about 55 ms per inference with CMSIS-NN
# kernels, about 0.5 s with TFLM's reference kernels, on a real-TFLM build).
BOARD_STRIDE_MS = 100


def _stream(model, audio: str, track: str, strides: Sequence[int]) -> dict:
    """The model's int8 scores every ``gcd(strides)`` ms (one pass; each stride is a slice of
    it), the stream's length and its keyword utterances."""
    import math

    from tinyspeech_tf.audio import read_wav

    utterances = read_track(track)
    check_track_audio(track, audio)
    keywords = [n for n in model.labels if is_keyword(n)]
    strange = sorted({u.label for u in utterances} - set(keywords))
    if strange:
        raise UserError(f"{track}: label(s) {', '.join(strange)} are not keywords of "
                        f"{model.path}")
    samples, rate = read_wav(audio, sample_rate=model.frontend.sample_rate)
    step_ms = math.gcd(*strides)
    result = run_stream(samples, model, stride_ms=step_ms)
    return {"audio": audio, "scores": result["scores"], "times_ms": result["times_ms"],
            "duration_s": len(samples) / rate, "utterances": utterances, "step_ms": step_ms}


def _at_stride(stream: dict, stride_ms: int, frontend) -> tuple[np.ndarray, np.ndarray]:
    """Scores and times at ``stride_ms``: every k-th window of the one-frame-step pass (the
    windows of a stride start at frame 0, as on the board)."""
    k = stride_frames(stride_ms, frontend) // stride_frames(stream["step_ms"], frontend)
    return stream["scores"][::k], stream["times_ms"][::k]


def _score(model, stream: dict, stride_ms: int, point: dict, tolerance_s: float) -> dict:
    scores, times = _at_stride(stream, stride_ms, model.frontend)
    n, top, top_score = tune.averages(scores, times, len(model.labels), point["window_ms"])
    found = tune.replay(n, top, top_score, times, model.labels, threshold=point["threshold"],
                        min_count=point["min_count"], suppression_ms=tune.SUPPRESSION_MS)
    s = score_detections(found, stream["utterances"], duration_s=stream["duration_s"],
                         keywords=[k for k in model.labels if is_keyword(k)],
                         tolerance_s=tolerance_s)
    return {k: s[k] for k in ("utterances", "hits", "hit_rate", "false_alarms",
                              "false_alarms_per_hour")}


def tune_model(model, tuning: dict, test: dict, strides: Sequence[int], max_fa: float,
               tolerance_s: float) -> list[dict]:
    """Per stride: the sweep on the tuning stream, its chosen point, that point on the test
    stream, and the test stream's DET curve at the chosen window and count."""
    rows = []
    for stride_ms in strides:
        scores, times = _at_stride(tuning, stride_ms, model.frontend)
        points = tune.sweep(scores, times, model.labels, tuning["utterances"],
                            duration_s=tuning["duration_s"], tolerance_s=tolerance_s,
                            stride_ms=stride_ms)
        chosen = tune.choose(points, max_fa)
        test_scores, test_times = _at_stride(test, stride_ms, model.frontend)
        curve = tune.det_curve(
            tune.sweep(test_scores, test_times, model.labels, test["utterances"],
                       duration_s=test["duration_s"], tolerance_s=tolerance_s,
                       stride_ms=stride_ms, windows_ms=(chosen["window_ms"],),
                       min_counts=(chosen["min_count"],)),
            chosen["window_ms"], chosen["min_count"])
        rows.append({"stride_ms": stride_ms, "chosen": chosen, "tuning_sweep": points,
                     "test": _score(model, test, stride_ms, chosen, tolerance_s),
                     "test_det": curve})
    return rows


def study(model_path: str | os.PathLike, *, tune_audio: str, tune_track: str,
          test_audio: str, test_track: str, strides: Sequence[int] = STRIDES_MS,
          board_stride_ms: int = BOARD_STRIDE_MS,
          max_fa_per_hour: float = tune.DEFAULT_MAX_FA_PER_HOUR,
          anchors: Sequence[tuple[str, str, str | None]] = (),
          tolerance_s: float = DEFAULT_TOLERANCE_S, labels: str | None = None,
          command: str = "tinyspeech stream-tune") -> dict:
    """Tune and test ``model_path`` (a run directory) and each anchor ``(name, model,
    labels)`` at every stride; the report (the chosen settings are *not* written here)."""
    if board_stride_ms not in strides:
        raise UserError(f"--board-stride-ms {board_stride_ms} must be one of the strides "
                        f"measured ({', '.join(map(str, strides))})")
    if not max_fa_per_hour >= 0:
        raise UserError(f"--max-fa-per-hour must be >= 0, got {max_fa_per_hour}")
    if Path(tune_audio).resolve() == Path(test_audio).resolve():
        raise UserError("the tuning and the test stream are the same file: settings chosen on "
                        "the test stream would flatter it; make two (stream-make --speakers "
                        "a / b)")
    # Anchors are measured at the board's stride only: a large model over every 20 ms of two
    # long streams in the TFLM interpreter would take most of the run.
    models = [("model", load_model(model_path, labels), list(strides))]
    models += [(name, load_model(path, anchor_labels), [board_stride_ms])
               for name, path, anchor_labels in anchors]
    for _, model, _ in models:
        for stride_ms in strides:
            stride_frames(stride_ms, model.frontend)  # bad strides fail before the slow work
    entries = []
    for name, model, its_strides in models:
        tuning = _stream(model, tune_audio, tune_track, its_strides)
        test = _stream(model, test_audio, test_track, its_strides)
        rows = tune_model(model, tuning, test, its_strides, max_fa_per_hour, tolerance_s)
        entries.append({"name": name, "model": os.fspath(model.path), "rows": rows})
    return {"command": command, "tuning_stream": tune_audio, "test_stream": test_audio,
            "max_false_alarms_per_hour": max_fa_per_hour, "board_stride_ms": board_stride_ms,
            "suppression_ms": tune.SUPPRESSION_MS, "tolerance_s": tolerance_s,
            "models": entries}


def settings_for(report: dict, stride_ms: int) -> tune.DetectorSettings:
    """The detector settings the study chose for the model at ``stride_ms``."""
    row = next(r for r in report["models"][0]["rows"] if r["stride_ms"] == stride_ms)
    chosen = row["chosen"]
    return tune.DetectorSettings(
        stride_ms=stride_ms, threshold=chosen["threshold"], window_ms=chosen["window_ms"],
        min_count=chosen["min_count"], suppression_ms=report["suppression_ms"],
        chosen_on=report["tuning_stream"],
        max_false_alarms_per_hour=report["max_false_alarms_per_hour"],
        hit_rate=chosen["hit_rate"], false_alarms_per_hour=chosen["false_alarms_per_hour"])


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(report: dict, det_png: str | None = None) -> str:
    """The stride table (chosen on the tuning stream, scored on the test stream) per model."""
    lines = ["# Streaming detection: settings chosen on one stream, tested on another", "",
             f"Generated by `{report['command']}`. Detector settings are chosen on "
             f"`{report['tuning_stream']}` as the highest hit rate at no more than "
             f"{report['max_false_alarms_per_hour']:g} false alarms per hour, then scored "
             f"unchanged on `{report['test_stream']}` (other speakers). Suppression "
             f"{report['suppression_ms']} ms; a hit is a detection of the right keyword "
             f"between the utterance's start and {report['tolerance_s']:g} s after its end. "
             f"The board's default stride is {report['board_stride_ms']} ms; anchor models "
             "are measured at that stride only.", "",
             "| model | stride | threshold | window | count | tuning: hits | tuning: FA/h "
             "| test: hits | test: FA/h |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for entry in report["models"]:
        for row in entry["rows"]:
            c, t = row["chosen"], row["test"]
            lines.append(f"| {entry['name']} (`{entry['model']}`) | {row['stride_ms']} ms "
                         f"| {c['threshold']} | {c['window_ms']} ms | {c['min_count']} "
                         f"| {_pct(c['hit_rate'])} | {c['false_alarms_per_hour']:.1f} "
                         f"| **{_pct(t['hit_rate'])}** | **{t['false_alarms_per_hour']:.1f}** |")
    if det_png:
        lines += ["", f"![DET curves]({det_png})", ""]
    return "\n".join(lines + [""])


def write(report: dict, out: str | os.PathLike, run_dir: str | os.PathLike | None) -> dict:
    """``out``.json/.md/.png (the report, the table, the DET curves of the model at the board's
    stride) and, for a run directory, its ``detector.json`` at the board's stride."""
    from tinyspeech_tf.io import write_atomic, write_report

    out = Path(out)
    png = out.with_suffix(".png")
    entry = report["models"][0]
    row = next(r for r in entry["rows"] if r["stride_ms"] == report["board_stride_ms"])
    tune.plot(row["tuning_sweep"], row["chosen"], png,
              f"{entry['model']} at {row['stride_ms']} ms: tuning-stream sweep")
    # The full tuning sweep is kept for the board's stride only (the curves of the PNG).
    slim = {**report, "models": [{**e, "rows": [
        {k: v for k, v in r.items()
         if k != "tuning_sweep" or r["stride_ms"] == report["board_stride_ms"]}
        for r in e["rows"]]} for e in report["models"]]}
    write_report(out, slim, markdown(report, png.name))
    settings = settings_for(report, report["board_stride_ms"])
    if run_dir is not None and Path(run_dir).is_dir():
        write_atomic(Path(run_dir) / tune.DETECTOR_FILE, settings.to_json())
    return {"settings": settings, "json": out.with_suffix(".json"), "png": png}
