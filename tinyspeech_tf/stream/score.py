"""Scoring detections against a label track, and the stream report (JSON and Markdown).

Why: per-clip accuracy on 1 s validation clips says little about a device that listens all
day; hits, misses and false alarms per hour on a long recording with known keyword positions
do. :func:`stream_audio` runs the whole ``tinyspeech stream`` analysis on a wav file.

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

import csv
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.io import display_path
from tinyspeech_tf.runs import Run
from tinyspeech_tf.stream.detect import (
    DEFAULT_STRIDE_MS,
    UNKNOWN,
    Detection,
    is_keyword,
    load_model,
    read_settings,
    run_stream,
    smoother_config,
    stride_frames,
)
from tinyspeech_tf.stream.smoother import SmootherConfig

DEFAULT_TOLERANCE_S = 1.0
TRACK_COLUMNS = ("start_s", "end_s", "label")
# Detections listed in the Markdown report's false-alarm table (the JSON has all of them).
_MARKDOWN_LIST_LIMIT = 40
_EPS_S = 1e-6


@dataclass(frozen=True)
class Utterance:
    """One keyword spoken in the stream (a row of the label track)."""

    start_s: float
    end_s: float
    label: str



# ---- the label track and scoring -------------------------------------------------------------
# The comment stream-make puts first in a track: the recording it belongs to, by content.
TRACK_AUDIO = "# audio sha256 "


def audio_digest(path: str | os.PathLike) -> str:
    """sha256 of a recording's file, which its track records."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_track_audio(track: str | os.PathLike, audio: str | os.PathLike) -> None:
    """Refuse a track that names another recording than ``audio`` (e.g. a stale .csv left by
    an interrupted stream-make); a track without the line (written by hand) is taken as is."""
    try:
        with open(track, encoding="utf-8") as f:
            first = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return  # read_track reports it
    if first.startswith(TRACK_AUDIO) and first[len(TRACK_AUDIO):].strip() != audio_digest(audio):
        raise UserError(f"{track}: this track was written for another recording than {audio} "
                        "(a leftover of an interrupted or earlier stream-make?); run "
                        "stream-make again to write both")


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
    first = True
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        header, first = first and tuple(cells[:3]) == TRACK_COLUMNS, False
        if header:
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



# ---- reports ---------------------------------------------------------------------------------
def build_report(*, audio: str, model: Run, duration_s: float, stride_ms: int,
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
        "audio": display_path(audio),
        "model": display_path(model.path),
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
        summary["track"] = display_path(track) if track else None
        summary["missed_utterances"] = [asdict(utterances[ui]) for ui in scoring["missed"]]
        report["scoring"] = summary
    return report


def percent(x: float | None) -> str:
    """A rate as the reports print it: ``12.5%``, or ``-`` when undefined."""
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
            f"| {sc['utterances']} | {sc['hits']} | {sc['misses']} | {percent(sc['hit_rate'])} | "
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
                         f"{percent(c['hit_rate'])} | {c['false_alarms']} |")
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


# ---- the whole analysis ----------------------------------------------------------------------
def stream_audio(audio: str, model: str | os.PathLike, *, labels: str | None = None,
                 stride_ms: int | None = None, threshold: int | None = None,
                 suppression_ms: int | None = None, window_ms: int | None = None,
                 min_count: int | None = None, track: str | None = None,
                 tolerance_s: float = DEFAULT_TOLERANCE_S) -> tuple[dict, float]:
    """``tinyspeech stream``: detections on ``audio`` (and their scoring against ``track``).

    A setting left None is the run's ``detector.json`` (chosen by ``tinyspeech stream-tune``)
    when it has one, else the smoother's micro_speech defaults at a 20 ms stride.

    Every setting is checked before the slow work (features and TFLM on the whole stream), so a
    typo costs no minutes. Returns the report (see :func:`build_report`) and the stream's exact
    length in seconds.
    """
    from tinyspeech_tf.audio import read_wav

    run = load_model(model, labels)
    fe = run.frontend
    chosen = read_settings(run.path) if run.path.is_dir() else None
    if chosen is not None:
        defaults = {"stride_ms": chosen.stride_ms, "threshold": chosen.threshold,
                    "suppression_ms": chosen.suppression_ms, "window_ms": chosen.window_ms,
                    "min_count": chosen.min_count}
    else:
        base = SmootherConfig()
        defaults = {"stride_ms": DEFAULT_STRIDE_MS, "threshold": base.detection_threshold,
                    "suppression_ms": base.suppression_ms, "window_ms": base.average_window_ms,
                    "min_count": base.minimum_count}
    stride_ms = defaults["stride_ms"] if stride_ms is None else stride_ms
    threshold = defaults["threshold"] if threshold is None else threshold
    suppression_ms = defaults["suppression_ms"] if suppression_ms is None else suppression_ms
    window_ms = defaults["window_ms"] if window_ms is None else window_ms
    min_count = defaults["min_count"] if min_count is None else min_count
    stride_frames(stride_ms, fe)  # validate before the slow work
    config = smoother_config(run.labels, threshold=threshold, suppression_ms=suppression_ms,
                             window_ms=window_ms, min_count=min_count)
    if tolerance_s < 0 or not math.isfinite(tolerance_s):
        raise UserError(f"--tolerance-s must be >= 0, got {tolerance_s}")
    utterances: list[Utterance] = []
    keywords = [n for n in run.labels if is_keyword(n)]
    if track:
        utterances = read_track(track)
        check_track_audio(track, audio)
        strange = sorted({u.label for u in utterances} - set(keywords))
        if strange:
            raise UserError(f"{track}: label(s) {', '.join(strange)} are not keywords of "
                            f"the model ({', '.join(keywords)}); the track lists keyword "
                            "utterances only")
    samples, rate = read_wav(audio, sample_rate=fe.sample_rate)
    duration_s = len(samples) / rate
    if len(samples) < fe.clip_samples:
        raise UserError(f"{audio}: {duration_s:.3f} s of audio; the model needs at least "
                        f"{fe.clip_samples / fe.sample_rate:g} s")
    late = [u for u in utterances if u.start_s >= duration_s]
    if late:
        raise UserError(f"{track}: utterance at {late[0].start_s} s starts after the end "
                        f"of the audio ({duration_s:.3f} s); is this the track of this wav?")

    result = run_stream(samples, run, stride_ms=stride_ms, config=config)
    scoring = None
    if track:
        scoring = score_detections(result["detections"], utterances, duration_s=duration_s,
                                   keywords=keywords, tolerance_s=tolerance_s)
    report = build_report(audio=audio, model=run, duration_s=duration_s, stride_ms=stride_ms,
                          config=config, result=result, track=track, scoring=scoring,
                          utterances=utterances)
    return report, duration_s
