"""``tinyspeech stream AUDIO.wav --model RUN``: keyword spotting on a long recording, as a board.

Why: per-clip accuracy on 1 s validation clips says little about a device that listens all
day. On the board the front-end emits one MFCC frame every 20 ms, the model runs on the last
49 frames every stride, and the posterior smoother (:mod:`tinyspeech_tf.smoother`, the twin of
``firmware/common/recognize_commands.c``) turns the stream of int8 score vectors into discrete
detections. This command does exactly that on a wav file, in the TFLM interpreter, so the
detections (and with ``--track``, hits, misses and false alarms per hour) are what the firmware
would report for the same audio and settings.

Framing (identical to the C streaming front-end, ``firmware/common/kws_frontend.h``): frame k
covers samples ``[step*k, step*k + frame_length)`` of the stream, with no padding; window j
holds frames ``[j*s, j*s + 49)`` (s = stride in frames), i.e. exactly the features of the 1 s
slice starting at sample ``step*j*s``. Its timestamp is the moment its last frame completes,
``(step*(j*s + 48) + frame_length) * 1000 // rate`` ms (990 ms for the first window with the
MLPerf front-end), which is when a board could run the model on it.

Scoring rule (``--track``): a detection of keyword L at time t is a *hit* of an utterance of L
spanning ``[start_s, end_s]`` when ``start_s <= t <= end_s + tolerance`` (default 1 s: the
model sees a word for up to one window after it ends and the smoother averages over the
previous second). Each utterance is hit at most once (matching is maximal: detections in time
order take the open utterance whose window closes first). A keyword detection that hits
nothing is a *false alarm*, classed as ``duplicate`` (inside the window of an utterance of L
already hit), ``wrong_label`` (inside the window of an utterance of another keyword) or
``spurious``. Utterances without a hit are *misses*. ``_unknown_`` detections are listed but
neither hits nor false alarms; ``_silence_`` is never reported (the smoother's silence index).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.io import write_atomic
from tinyspeech_tf.smoother import SmootherConfig

DEFAULT_STRIDE_MS = 20
DEFAULT_TOLERANCE_S = 1.0
TRACK_COLUMNS = ("start_s", "end_s", "label")
# Frames per feature chunk: bounds TensorFlow's STFT memory on hour-long streams.
_CHUNK_FRAMES = 4096
# Detections listed in the Markdown report's false-alarm table (the JSON has all of them).
_MARKDOWN_LIST_LIMIT = 40
_EPS_S = 1e-6

SILENCE = "_silence_"
UNKNOWN = "_unknown_"


# ---- data types ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    """One keyword spoken in the stream (a row of the label track)."""

    start_s: float
    end_s: float
    label: str


@dataclass(frozen=True)
class Detection:
    """One smoother report: ``is_new_command`` at ``time_ms`` for ``label`` (score 0..255)."""

    time_ms: int
    label: str
    score: int

    @property
    def time_s(self) -> float:
        return self.time_ms / 1000.0


@dataclass
class StreamModel:
    """What streaming needs from a run: the int8 model, its labels, its front-end and I/O."""

    path: Path
    tflite: bytes
    labels: tuple[str, ...]
    frontend: object  # FrontendConfig
    io: dict


# ---- the model -------------------------------------------------------------------------------
def load_model(model: str | os.PathLike, labels: str | None = None) -> StreamModel:
    """A run directory (model_int8.tflite + labels.txt + frontend.json) or a .tflite file.

    For a bare .tflite the labels come from ``--labels`` or labels.txt beside it, and the
    front-end from frontend.json beside it if present, else the MLPerf default. Every mismatch
    between model, labels and front-end is a UserError: a silent one would score garbage.
    """
    from tinyspeech_tf.evaluate import model_labels
    from tinyspeech_tf.features import DEFAULT_CONFIG, FrontendConfig

    path = Path(model)
    if path.is_dir():
        tflite_path = path / "model_int8.tflite"
        if not tflite_path.is_file():
            raise UserError(f"{model}: no model_int8.tflite in this run directory; train one "
                            "with `tinyspeech train --out DIR` or give a .tflite file")
    elif path.is_file():
        tflite_path = path
    else:
        raise UserError(f"{model}: no such run directory or .tflite file")
    tflite = tflite_path.read_bytes()
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise UserError(f"{tflite_path}: not a TFLite flatbuffer (no TFL3 identifier)")
    names = model_labels(tflite_path, labels)
    fe_path = tflite_path.with_name("frontend.json")
    if fe_path.is_file():
        frontend = FrontendConfig.from_json(fe_path.read_text(encoding="utf-8"))
    else:
        frontend = DEFAULT_CONFIG
    io = _model_io(tflite, tflite_path)
    shape = io["input_shape"]
    if len(shape) not in (3, 4) or shape[0] != 1 or (len(shape) == 4 and shape[3] != 1) \
            or tuple(shape[1:3]) != tuple(frontend.feature_shape):
        raise UserError(f"{tflite_path}: input shape {shape} does not take "
                        f"{frontend.feature_shape[0]} x {frontend.feature_shape[1]} MFCC "
                        "frames of the front-end; give the matching frontend.json")
    if io["output_shape"] != [1, len(names)]:
        raise UserError(f"{tflite_path}: output shape {io['output_shape']} does not match the "
                        f"{len(names)} labels given; fix labels.txt or --labels")
    return StreamModel(path, tflite, names, frontend, io)


def _model_io(tflite: bytes, where: Path) -> dict:
    import warnings

    from tinyspeech_tf.quantize import io_quantization

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            io = io_quantization(tflite)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"{where}: TFLite cannot load it ({err})") from None
    if io["input_scale"] <= 0 or io["output_scale"] <= 0:
        raise UserError(f"{where}: input and output must be int8 with a quantization scale; "
                        "give the full-integer model `tinyspeech train` writes")
    return io


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
    from tinyspeech_tf.smoother import SmootherError

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
    from tinyspeech_tf.smoother import RecognizeCommands

    smoother = RecognizeCommands(len(labels), config)
    found = []
    for row, t in zip(scores, times_ms, strict=True):
        result = smoother.process(row, int(t))
        if result.is_new_command:
            found.append(Detection(int(t), labels[result.found_command], result.score))
    return found


def is_keyword(label: str) -> bool:
    return label not in (SILENCE, UNKNOWN)


# ---- the label track and scoring -------------------------------------------------------------
def read_track(path: str | os.PathLike) -> list[Utterance]:
    """Read a label track CSV: ``start_s,end_s,label`` per keyword utterance.

    A header row naming the columns is optional, extra columns (e.g. the source clip) are
    ignored, blank lines and ``#`` comments are skipped. Any malformed row is a UserError naming
    the line, so a broken track never yields silently wrong hit rates.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such track file; give the CSV `stream-make` wrote") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read track file ({err})") from None
    utterances = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if lineno == 1 and tuple(cells[:3]) == TRACK_COLUMNS:
            continue
        if len(cells) < 3:
            raise UserError(f"{path}:{lineno}: expected start_s,end_s,label, got {row!r}")
        try:
            start, end = float(cells[0]), float(cells[1])
        except ValueError:
            raise UserError(f"{path}:{lineno}: start_s and end_s must be numbers (seconds), "
                            f"got {cells[0]!r}, {cells[1]!r}") from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise UserError(f"{path}:{lineno}: need 0 <= start_s <= end_s, got {start}, {end}")
        if not cells[2]:
            raise UserError(f"{path}:{lineno}: empty label")
        utterances.append(Utterance(start, end, cells[2]))
    return sorted(utterances, key=lambda u: (u.start_s, u.end_s, u.label))


def score_detections(detections: Sequence[Detection], utterances: Sequence[Utterance], *,
                     duration_s: float, keywords: Sequence[str],
                     tolerance_s: float = DEFAULT_TOLERANCE_S) -> dict:
    """Hits, misses and false alarms of keyword detections against a label track.

    See the module docstring for the rule. Greedy earliest-deadline matching of detections (in
    time order) to utterances is a maximum matching for points against intervals, so no
    utterance is counted as missed while a valid assignment would have hit it.
    """
    if tolerance_s < 0 or not math.isfinite(tolerance_s):
        raise UserError(f"--tolerance-s must be >= 0, got {tolerance_s}")
    deadline = [u.end_s + tolerance_s for u in utterances]
    hit_by: list[int | None] = [None] * len(utterances)
    outcomes = []
    ordered = sorted(range(len(detections)), key=lambda i: detections[i].time_ms)
    for di in ordered:
        det = detections[di]
        if not is_keyword(det.label):
            continue
        t = det.time_s
        # 1 µs slack: track times are decimal seconds, detection times whole milliseconds.
        covering = [ui for ui, u in enumerate(utterances)
                    if u.start_s - _EPS_S <= t <= deadline[ui] + _EPS_S]
        open_same = [ui for ui in covering
                     if utterances[ui].label == det.label and hit_by[ui] is None]
        if open_same:
            ui = min(open_same, key=lambda k: (deadline[k], utterances[k].start_s))
            hit_by[ui] = di
            outcomes.append((di, "hit", ui))
        elif any(utterances[ui].label == det.label for ui in covering):
            outcomes.append((di, "duplicate", None))
        elif covering:
            outcomes.append((di, "wrong_label", None))
        else:
            outcomes.append((di, "spurious", None))

    labels = list(dict.fromkeys([*keywords, *(u.label for u in utterances)]))
    per_label = {name: {"utterances": 0, "hits": 0, "misses": 0, "false_alarms": 0}
                 for name in labels}
    for ui, u in enumerate(utterances):
        per_label[u.label]["utterances"] += 1
        per_label[u.label]["hits" if hit_by[ui] is not None else "misses"] += 1
    kinds = {"duplicate": 0, "wrong_label": 0, "spurious": 0}
    for di, outcome, _ in outcomes:
        if outcome != "hit":
            kinds[outcome] += 1
            per_label[detections[di].label]["false_alarms"] += 1
    for counts in per_label.values():
        counts["hit_rate"] = (counts["hits"] / counts["utterances"]
                              if counts["utterances"] else None)
    hits = sum(h is not None for h in hit_by)
    false_alarms = sum(kinds.values())
    latencies = [detections[hit_by[ui]].time_s - utterances[ui].end_s
                 for ui in range(len(utterances)) if hit_by[ui] is not None]
    return {
        "rule": (f"a detection of keyword L at t hits an utterance of L when start_s <= t <= "
                 f"end_s + {tolerance_s:g} s; each utterance is hit at most once; other keyword "
                 "detections are false alarms; _unknown_ detections are not scored"),
        "tolerance_s": tolerance_s,
        "utterances": len(utterances),
        "hits": hits,
        "misses": len(utterances) - hits,
        "hit_rate": hits / len(utterances) if utterances else None,
        "false_alarms": false_alarms,
        "false_alarms_per_hour": false_alarms * 3600.0 / duration_s if duration_s > 0 else None,
        "false_alarm_kinds": kinds,
        "median_latency_after_end_s": (round(statistics.median(latencies), 3)
                                       if latencies else None),
        "per_label": per_label,
        "detection_outcomes": {di: (outcome, ui) for di, outcome, ui in outcomes},
        "missed": [ui for ui in range(len(utterances)) if hit_by[ui] is None],
    }


# ---- the whole pipeline ----------------------------------------------------------------------
def run_stream(samples: np.ndarray, model: StreamModel, *, stride_ms: int = DEFAULT_STRIDE_MS,
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


# ---- reports ---------------------------------------------------------------------------------
def _display(path: str | os.PathLike) -> str:
    from tinyspeech_tf.export.command import display_path

    return display_path(path)


def build_report(*, audio: str, model: StreamModel, duration_s: float, stride_ms: int,
                 config, result: dict, track: str | None = None,
                 scoring: dict | None = None, utterances: Sequence[Utterance] = ()) -> dict:
    """The JSON-ready report; every number in it is computed here, none typed in."""
    detections = result["detections"]
    outcomes = (scoring or {}).get("detection_outcomes", {})
    listed = []
    for di, det in enumerate(detections):
        entry = {"time_s": round(det.time_s, 3), "label": det.label, "score": det.score,
                 "keyword": is_keyword(det.label)}
        if scoring is not None and is_keyword(det.label):
            outcome, ui = outcomes[di]
            entry["outcome"] = outcome
            if ui is not None:
                entry["utterance_start_s"] = utterances[ui].start_s
        listed.append(entry)
    runtime = {k: round(v, 3) for k, v in result["runtime_s"].items()}
    runtime["realtime_factor"] = (round(duration_s / result["runtime_s"]["total"], 1)
                                  if result["runtime_s"]["total"] > 0 else None)
    report = {
        "audio": _display(audio),
        "model": _display(model.path),
        "labels": list(model.labels),
        "stream_s": round(duration_s, 3),
        "frames": result["frames"],
        "windows": result["windows"],
        "stride_ms": stride_ms,
        "window_time": "end of the window's last frame (when a board can run the model)",
        "smoother": asdict(config),
        "detections": len(detections),
        "keyword_detections": sum(is_keyword(d.label) for d in detections),
        "unknown_detections": sum(d.label == UNKNOWN for d in detections),
        "runtime_s": runtime,
        "detection_list": listed,
    }
    if scoring is not None:
        summary = {k: v for k, v in scoring.items()
                   if k not in ("detection_outcomes", "missed")}
        summary["track"] = _display(track) if track else None
        summary["missed_utterances"] = [asdict(utterances[ui]) for ui in scoring["missed"]]
        report["scoring"] = summary
    return report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def markdown_report(report: dict) -> str:
    """A short human-readable page of the same report (every figure from the JSON)."""
    sm = report["smoother"]
    lines = [
        f"# Streaming keyword spotting: {Path(report['model']).name}",
        "",
        f"- model: `{report['model']}`",
        f"- audio: `{report['audio']}` ({report['stream_s']:.1f} s, {report['frames']} frames, "
        f"{report['windows']} windows)",
        f"- stride: {report['stride_ms']} ms; window time: {report['window_time']}",
        f"- smoother: average window {sm['average_window_ms']} ms, threshold "
        f"{sm['detection_threshold']}/255, suppression {sm['suppression_ms']} ms, minimum count "
        f"{sm['minimum_count']}, silence index {sm['silence_index']}",
        f"- detections: {report['detections']} ({report['keyword_detections']} keyword, "
        f"{report['unknown_detections']} `_unknown_`)",
        f"- runtime: {report['runtime_s']['total']:.1f} s total (features "
        f"{report['runtime_s']['features']:.1f} s, TFLM inference "
        f"{report['runtime_s']['inference']:.1f} s), {report['runtime_s']['realtime_factor']}x "
        "real time",
    ]
    sc = report.get("scoring")
    if sc is not None:
        fa_h = sc["false_alarms_per_hour"]
        latency = sc["median_latency_after_end_s"]
        kinds = sc["false_alarm_kinds"]
        lines += [
            "",
            "## Against the label track",
            "",
            f"Track `{sc['track']}`. Rule: {sc['rule']}.",
            "",
            "| utterances | hits | misses | hit rate | false alarms | false alarms / hour |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {sc['utterances']} | {sc['hits']} | {sc['misses']} | {_pct(sc['hit_rate'])} | "
            f"{sc['false_alarms']} | {'-' if fa_h is None else f'{fa_h:.1f}'} |",
            "",
            f"False alarms by kind: {kinds['spurious']} spurious, {kinds['wrong_label']} wrong "
            f"label, {kinds['duplicate']} duplicate. Median detection time after the end of "
            f"the utterance: {'-' if latency is None else f'{latency:.2f} s'}.",
            "",
            "| label | utterances | hits | misses | hit rate | false alarms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, c in sc["per_label"].items():
            lines.append(f"| {name} | {c['utterances']} | {c['hits']} | {c['misses']} | "
                         f"{_pct(c['hit_rate'])} | {c['false_alarms']} |")
        false = [d for d in report["detection_list"]
                 if d.get("outcome") not in (None, "hit")]
        if false:
            lines += ["", "False alarms" + (f" (first {_MARKDOWN_LIST_LIMIT})"
                                            if len(false) > _MARKDOWN_LIST_LIMIT else "") + ":",
                      "", "| time s | label | score | kind |", "|---:|---|---:|---|"]
            for d in false[:_MARKDOWN_LIST_LIMIT]:
                lines.append(f"| {d['time_s']:.3f} | {d['label']} | {d['score']} | "
                             f"{d['outcome']} |")
    lines.append("")
    return "\n".join(lines)



# ---- command line ----------------------------------------------------------------------------
_SMOOTHER = SmootherConfig()  # the smoother's documented defaults, shared with the C side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", help="16 kHz mono wav of any length (at least 1 s)")
    parser.add_argument("--model", required=True,
                        help="run directory (model_int8.tflite, labels.txt, frontend.json) or an "
                             "int8 .tflite file")
    parser.add_argument("--labels", default=None,
                        help="the model's label order: labels.txt or a comma-separated list "
                             "(default: labels.txt beside the model)")
    parser.add_argument("--stride-ms", type=int, default=DEFAULT_STRIDE_MS,
                        help="run the model every this many ms; a multiple of the 20 ms frame "
                             f"step (default {DEFAULT_STRIDE_MS})")
    parser.add_argument("--threshold", type=int, default=_SMOOTHER.detection_threshold,
                        help="smoother detection threshold on the 0..255 scale of "
                             "score + 128 (default %(default)s)")
    parser.add_argument("--suppression-ms", type=int, default=_SMOOTHER.suppression_ms,
                        help="do not report the same command again within this time "
                             "(default %(default)s)")
    parser.add_argument("--window-ms", type=int, default=_SMOOTHER.average_window_ms,
                        help="smoother averaging window (default %(default)s)")
    parser.add_argument("--min-count", type=int, default=_SMOOTHER.minimum_count,
                        help="results needed in the averaging window before reporting "
                             "(default %(default)s)")
    parser.add_argument("--track", default=None, metavar="TRACK.csv",
                        help="label track (start_s,end_s,label per keyword utterance, as "
                             "`tinyspeech stream-make` writes) to score the detections against")
    parser.add_argument("--tolerance-s", type=float, default=DEFAULT_TOLERANCE_S,
                        help="a detection hits an utterance between its start and its end plus "
                             f"this many seconds (default {DEFAULT_TOLERANCE_S:g})")
    parser.add_argument("--json", default=None, metavar="OUT.json",
                        help="write the full report (settings, detections, scores) here")
    parser.add_argument("--markdown", default=None, metavar="OUT.md",
                        help="write a human-readable report here")


def run(args: argparse.Namespace) -> int:
    from tinyspeech_tf.audio import read_wav

    model = load_model(args.model, args.labels)
    fe = model.frontend
    stride_frames(args.stride_ms, fe)  # validate before the slow work
    config = smoother_config(model.labels, threshold=args.threshold,
                             suppression_ms=args.suppression_ms, window_ms=args.window_ms,
                             min_count=args.min_count)
    if args.tolerance_s < 0 or not math.isfinite(args.tolerance_s):
        raise UserError(f"--tolerance-s must be >= 0, got {args.tolerance_s}")
    utterances: list[Utterance] = []
    keywords = [n for n in model.labels if is_keyword(n)]
    if args.track:
        utterances = read_track(args.track)
        strange = sorted({u.label for u in utterances} - set(keywords))
        if strange:
            raise UserError(f"{args.track}: label(s) {', '.join(strange)} are not keywords of "
                            f"the model ({', '.join(keywords)}); the track lists keyword "
                            "utterances only")
    samples, rate = read_wav(args.audio, sample_rate=fe.sample_rate)
    duration_s = len(samples) / rate
    if len(samples) < fe.clip_samples:
        raise UserError(f"{args.audio}: {duration_s:.3f} s of audio; the model needs at least "
                        f"{fe.clip_samples / fe.sample_rate:g} s")
    late = [u for u in utterances if u.start_s >= duration_s]
    if late:
        raise UserError(f"{args.track}: utterance at {late[0].start_s} s starts after the end "
                        f"of the audio ({duration_s:.3f} s); is this the track of this wav?")

    result = run_stream(samples, model, stride_ms=args.stride_ms, config=config)
    scoring = None
    if args.track:
        scoring = score_detections(result["detections"], utterances, duration_s=duration_s,
                                   keywords=keywords, tolerance_s=args.tolerance_s)
    report = build_report(audio=args.audio, model=model, duration_s=duration_s,
                          stride_ms=args.stride_ms, config=config, result=result,
                          track=args.track, scoring=scoring, utterances=utterances)

    print(f"{report['audio']}: {duration_s:.1f} s, {result['windows']} windows every "
          f"{args.stride_ms} ms, {report['model']} in TFLM "
          f"({report['runtime_s']['total']:.1f} s, {report['runtime_s']['realtime_factor']}x "
          "real time)")
    for entry in report["detection_list"]:
        note = "" if entry["keyword"] else ", not a keyword"
        outcome = f"  [{entry['outcome']}]" if "outcome" in entry else ""
        print(f"{entry['time_s']:8.3f} s  {entry['label']}  (score {entry['score']}{note})"
              f"{outcome}")
    print(f"{report['keyword_detections']} keyword detection(s), "
          f"{report['unknown_detections']} _unknown_")
    if scoring is not None:
        fa_h = scoring["false_alarms_per_hour"]
        print(f"track: {scoring['utterances']} utterances, {scoring['hits']} hits, "
              f"{scoring['misses']} misses (hit rate {_pct(scoring['hit_rate'])}), "
              f"{scoring['false_alarms']} false alarms ({fa_h:.1f} per hour)")
        for name, c in scoring["per_label"].items():
            print(f"  {name:<8} {c['hits']:>3}/{c['utterances']:<3} hit  "
                  f"{c['false_alarms']:>3} false alarm(s)")
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        write_atomic(args.markdown, markdown_report(report))
    return 0
