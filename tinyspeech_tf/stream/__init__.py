"""Keyword spotting on a long recording, as a board does it (``tinyspeech stream``).

Why: per-clip accuracy on 1 s validation clips says little about a device that listens all
day. On the board the front-end emits one MFCC frame every 20 ms, the model runs on the last
49 frames every stride, and the posterior smoother (:mod:`tinyspeech_tf.stream.smoother`, the
twin of ``firmware/common/recognize_commands.c``) turns the stream of int8 score vectors into
discrete detections. This package does exactly that on a wav file, in the TFLM interpreter, so
the detections (and against a label track, hits, misses and false alarms per hour) are what the
firmware would report for the same audio and settings.

* :mod:`~tinyspeech_tf.stream.detect`: the model, framing, TFLM inference and the smoother.
* :mod:`~tinyspeech_tf.stream.score`: the label track, scoring, the reports, the whole analysis.
* :mod:`~tinyspeech_tf.stream.smoother`: the posterior smoother (bit-identical to the C code).
* :mod:`~tinyspeech_tf.stream.make`: long test streams with their label track (``stream-make``).

The names of ``detect`` and ``score`` are re-exported here for callers of the old module.
"""

from __future__ import annotations

from tinyspeech_tf.stream.detect import (
    DEFAULT_STRIDE_MS,
    SILENCE,
    UNKNOWN,
    Detection,
    StreamModel,
    detections_from_scores,
    is_keyword,
    load_model,
    run_stream,
    silence_index,
    smoother_config,
    stream_frames,
    stride_frames,
    window_inputs,
    window_starts,
    window_times_ms,
)
from tinyspeech_tf.stream.score import (
    DEFAULT_TOLERANCE_S,
    TRACK_COLUMNS,
    Utterance,
    build_report,
    markdown_report,
    percent,
    read_track,
    score_detections,
    stream_audio,
)

__all__ = [
    "DEFAULT_STRIDE_MS", "DEFAULT_TOLERANCE_S", "SILENCE", "TRACK_COLUMNS", "UNKNOWN", "Detection",
    "StreamModel", "Utterance", "build_report", "detections_from_scores", "is_keyword",
    "load_model", "markdown_report", "percent", "read_track", "run_stream", "score_detections",
    "silence_index", "smoother_config", "stream_audio", "stream_frames", "stride_frames",
    "window_inputs", "window_starts", "window_times_ms",
]
