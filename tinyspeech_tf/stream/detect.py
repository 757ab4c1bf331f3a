"""Detection on a long recording, as a board does it: model, framing, TFLM, smoother.

Framing (identical to the C streaming front-end, ``firmware/common/kws_frontend.h``): frame k
covers samples ``[step*k, step*k + frame_length)`` of the stream, with no padding; window j
holds frames ``[j*s, j*s + 49)`` (s = stride in frames), i.e. exactly the features of the 1 s
slice starting at sample ``step*j*s``. Its timestamp is the moment its last frame completes,
``(step*(j*s + 48) + frame_length) * 1000 // rate`` ms (990 ms for the first window with the
MLPerf front-end), which is when a board could run the model on it. The posterior smoother
(:mod:`tinyspeech_tf.stream.smoother`, the twin of ``firmware/common/recognize_commands.c``)
turns the int8 score vectors into discrete detections; ``_silence_`` is never reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.runs import (  # noqa: F401  (DetectorSettings, read_settings re-exported)
    DETECTOR_FILE,
    DetectorSettings,
    Run,
    read_run,
    read_settings,
)
from tinyspeech_tf.stream.smoother import SmootherConfig

DEFAULT_STRIDE_MS = 20
# Frames per feature chunk: bounds TensorFlow's STFT memory on hour-long streams.
_CHUNK_FRAMES = 4096

SILENCE = "_silence_"
UNKNOWN = "_unknown_"

# What streaming needs from a run (the int8 model, its labels, front-end and checked I/O) is
# exactly a checked :class:`~tinyspeech_tf.runs.Run`; the old name stays for callers.
StreamModel = Run


@dataclass(frozen=True)
class Detection:
    """One smoother report: ``is_new_command`` at ``time_ms`` for ``label`` (score 0..255)."""

    time_ms: int
    label: str
    score: int

    @property
    def time_s(self) -> float:
        return self.time_ms / 1000.0


# ---- the model -------------------------------------------------------------------------------
def load_model(model: str | os.PathLike, labels: str | None = None) -> Run:
    """A run directory (model_int8.tflite + labels.txt + frontend.json) or a .tflite file.

    For a bare .tflite the labels come from ``--labels`` or labels.txt beside it, and the
    front-end from frontend.json beside it if present, else the MLPerf default. Read through
    :func:`tinyspeech_tf.runs.read_run` and its I/O checked here, before any audio is read:
    every mismatch between model, labels and front-end is a UserError, since a silent one
    would score garbage.
    """
    run = read_run(model, labels, allow_file=True)
    run.io  # noqa: B018 - checks I/O against labels and front-end, one line if they differ
    return run


# ---- framing ---------------------------------------------------------------------------------
def stride_frames(stride_ms: int, config) -> int:
    """Stride in front-end frames; the stride must be a whole number of frame steps (the board
    can only run the model when a frame completes)."""
    step_ms = config.frame_step * 1000 / config.sample_rate
    if isinstance(stride_ms, bool) or not isinstance(stride_ms, int) or stride_ms <= 0:
        raise UserError(f"--stride-ms must be a positive whole number of ms, got {stride_ms!r}")
    stride_samples = stride_ms * config.sample_rate
    if stride_samples % (1000 * config.frame_step):
        raise UserError(f"--stride-ms {stride_ms} is not a multiple of the {step_ms:g} ms frame "
                        f"step; use {step_ms:g}, {2 * step_ms:g}, {3 * step_ms:g}, ...")
    return stride_samples // (1000 * config.frame_step)


def stream_frames(samples: np.ndarray, config) -> np.ndarray:
    """All MFCC frames of a stream, float32 [F, num_mfcc]: frame k covers samples
    ``[step*k, step*k + frame_length)``, as the C streaming front-end emits them.

    Computed once per stream in chunks of whole frames (each chunk starts on a frame boundary
    and carries the overlap it needs), so a window's features are exactly those of its 1 s
    slice and memory stays bounded on long recordings.
    """
    from tinyspeech_tf.features import mfcc

    x = np.asarray(samples, np.float32)
    step, length = config.frame_step, config.frame_length
    total = 0 if len(x) < length else 1 + (len(x) - length) // step
    out = np.zeros((total, config.num_mfcc), np.float32)
    for first in range(0, total, _CHUNK_FRAMES):
        count = min(_CHUNK_FRAMES, total - first)
        chunk = x[first * step:(first + count - 1) * step + length]
        out[first:first + count] = np.asarray(mfcc(chunk, config).numpy(), np.float32)
    return out


def window_starts(num_frames: int, config, stride: int) -> np.ndarray:
    """First frame of every complete window, one every ``stride`` frames."""
    per_window = config.num_frames
    if num_frames < per_window:
        return np.zeros(0, np.int64)
    return np.arange(0, num_frames - per_window + 1, stride, dtype=np.int64)


def window_times_ms(starts: np.ndarray, config) -> np.ndarray:
    """Timestamp of each window: when its last frame's last sample has arrived (ms)."""
    end = (starts * config.frame_step + (config.num_frames - 1) * config.frame_step
           + config.frame_length)
    return (end * 1000) // config.sample_rate


def window_inputs(frames: np.ndarray, starts: np.ndarray, config, scale: float,
                  zero_point: int) -> np.ndarray:
    """int8 model inputs [W, frames, mfcc, 1] as views of the quantized frames (no copies).

    Quantization is per element, so quantizing frames once equals quantizing every window.
    """
    from tinyspeech_tf.features import quantize

    q = quantize(frames, scale, zero_point)
    if len(starts) == 0:
        return np.zeros((0, *config.feature_shape, 1), np.int8)
    view = np.lib.stride_tricks.sliding_window_view(q, config.num_frames, axis=0)
    return np.swapaxes(view[starts], 1, 2)[..., None]


# ---- detection -------------------------------------------------------------------------------
def silence_index(labels: Sequence[str]) -> int:
    return list(labels).index(SILENCE) if SILENCE in labels else -1


def smoother_config(labels: Sequence[str], *, threshold: int, suppression_ms: int,
                    window_ms: int, min_count: int):
    """The smoother settings for these labels; a bad value is a UserError naming the option."""
    from tinyspeech_tf.stream.smoother import SmootherError

    config = SmootherConfig(average_window_ms=window_ms, detection_threshold=threshold,
                            suppression_ms=suppression_ms, minimum_count=min_count,
                            silence_index=silence_index(labels))
    try:
        config.validate(len(labels))
    except SmootherError as err:
        options = {"average_window_ms": "--window-ms", "detection_threshold": "--threshold",
                   "suppression_ms": "--suppression-ms", "minimum_count": "--min-count"}
        text = str(err).split(":")[0]
        for field, option in options.items():
            text = text.replace(field, option)
        raise UserError(f"smoother: {text}") from None
    return config


def detections_from_scores(scores: np.ndarray, times_ms: np.ndarray, labels: Sequence[str],
                           config) -> list[Detection]:
    """Feed every score vector to the smoother twin; each ``is_new_command`` is a detection."""
    from tinyspeech_tf.stream.smoother import RecognizeCommands

    smoother = RecognizeCommands(len(labels), config)
    found = []
    for row, t in zip(scores, times_ms, strict=True):
        result = smoother.process(row, int(t))
        if result.is_new_command:
            found.append(Detection(int(t), labels[result.found_command], result.score))
    return found


def is_keyword(label: str) -> bool:
    return label not in (SILENCE, UNKNOWN)


# ---- the whole pipeline ----------------------------------------------------------------------
def run_stream(samples: np.ndarray, model: Run, *, stride_ms: int = DEFAULT_STRIDE_MS,
               config=None) -> dict:
    """Features once, the model on every window in TFLM, the smoother on the scores.

    Returns scores [W, C] int8, times_ms [W], detections and the time each stage took.
    """
    from tinyspeech_tf import tflm

    fe = model.frontend
    stride = stride_frames(stride_ms, fe)
    if config is None:
        config = smoother_config(model.labels, threshold=200, suppression_ms=1500,
                                 window_ms=1000, min_count=3)
    t0 = time.perf_counter()
    frames = stream_frames(samples, fe)
    starts = window_starts(len(frames), fe, stride)
    inputs = window_inputs(frames, starts, fe, model.io["input_scale"],
                           model.io["input_zero_point"])
    t1 = time.perf_counter()
    interp = tflm.interpreter(model.tflite)
    scores = (tflm.run_tflm(model.tflite, inputs, interp=interp).astype(np.int8)
              if len(inputs) else np.zeros((0, len(model.labels)), np.int8))
    t2 = time.perf_counter()
    times = window_times_ms(starts, fe)
    detections = detections_from_scores(scores, times, model.labels, config)
    t3 = time.perf_counter()
    return {"scores": scores, "times_ms": times, "detections": detections,
            "frames": len(frames), "windows": len(starts),
            "runtime_s": {"features": t1 - t0, "inference": t2 - t1, "smoothing": t3 - t2,
                          "total": t3 - t0}}
