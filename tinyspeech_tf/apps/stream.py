"""``tinyspeech stream AUDIO.wav --model RUN``: keyword spotting on a long recording, as a board.

The work is :func:`tinyspeech_tf.stream.score.stream_audio`; this module parses the options,
prints the detections (and the scoring against ``--track``) and writes the reports.
"""

from __future__ import annotations

import argparse
import json

from tinyspeech_tf.io import write_atomic
from tinyspeech_tf.stream.detect import DEFAULT_STRIDE_MS
from tinyspeech_tf.stream.score import (
    DEFAULT_TOLERANCE_S,
    markdown_report,
    percent,
    stream_audio,
)
from tinyspeech_tf.stream.smoother import SmootherConfig

_SMOOTHER = SmootherConfig()  # the smoother's documented defaults, shared with the C side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", help="16 kHz mono wav of any length (at least 1 s)")
    parser.add_argument("--model", required=True,
                        help="run directory (model_int8.tflite, labels.txt, frontend.json) or an "
                             "int8 .tflite file")
    parser.add_argument("--labels", default=None,
                        help="the model's label order: labels.txt or a comma-separated list "
                             "(default: labels.txt beside the model)")
    chosen = "the run's detector.json (`tinyspeech stream-tune`) if it has one, else "
    parser.add_argument("--stride-ms", type=int, default=None,
                        help="run the model every this many ms; a multiple of the 20 ms frame "
                             f"step (default: {chosen}{DEFAULT_STRIDE_MS})")
    parser.add_argument("--threshold", type=int, default=None,
                        help="smoother detection threshold on the 0..255 scale of "
                             f"score + 128 (default: {chosen}{_SMOOTHER.detection_threshold})")
    parser.add_argument("--suppression-ms", type=int, default=None,
                        help="do not report the same command again within this time "
                             f"(default: {chosen}{_SMOOTHER.suppression_ms})")
    parser.add_argument("--window-ms", type=int, default=None,
                        help=f"smoother averaging window (default: {chosen}"
                             f"{_SMOOTHER.average_window_ms})")
    parser.add_argument("--min-count", type=int, default=None,
                        help="results needed in the averaging window before reporting "
                             f"(default: {chosen}{_SMOOTHER.minimum_count})")
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
    report, duration_s = stream_audio(
        args.audio, args.model, labels=args.labels, stride_ms=args.stride_ms,
        threshold=args.threshold, suppression_ms=args.suppression_ms, window_ms=args.window_ms,
        min_count=args.min_count, track=args.track, tolerance_s=args.tolerance_s)

    print(f"{report['audio']}: {duration_s:.1f} s, {report['windows']} windows every "
          f"{report['stride_ms']} ms, {report['model']} in TFLM "
          f"({report['runtime_s']['total']:.1f} s, {report['runtime_s']['realtime_factor']}x "
          "real time)")
    for entry in report["detection_list"]:
        note = "" if entry["keyword"] else ", not a keyword"
        outcome = f"  [{entry['outcome']}]" if "outcome" in entry else ""
        print(f"{entry['time_s']:8.3f} s  {entry['label']}  (score {entry['score']}{note})"
              f"{outcome}")
    print(f"{report['keyword_detections']} keyword detection(s), "
          f"{report['unknown_detections']} _unknown_")
    scoring = report.get("scoring")
    if scoring is not None:
        fa_h = scoring["false_alarms_per_hour"]
        print(f"track: {scoring['utterances']} utterances, {scoring['hits']} hits, "
              f"{scoring['misses']} misses (hit rate {percent(scoring['hit_rate'])}), "
              f"{scoring['false_alarms']} false alarms ({fa_h:.1f} per hour)")
        for name, c in scoring["per_label"].items():
            print(f"  {name:<8} {c['hits']:>3}/{c['utterances']:<3} hit  "
                  f"{c['false_alarms']:>3} false alarm(s)")
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        write_atomic(args.markdown, markdown_report(report))
    return 0
