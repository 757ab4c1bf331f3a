"""``tinyspeech stream-tune RUN --tune A.wav --test B.wav``: choose the detector on one stream,
test it on another, at several strides; DET curves and ``RUN/detector.json``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.io import command_line
from tinyspeech_tf.stream import study
from tinyspeech_tf.stream.tune import DEFAULT_MAX_FA_PER_HOUR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run directory whose detector is chosen")
    parser.add_argument("--tune", required=True, metavar="A.wav",
                        help="stream the settings are chosen on (its track beside it as .csv)")
    parser.add_argument("--test", required=True, metavar="B.wav",
                        help="stream of other speakers the chosen settings are scored on")
    parser.add_argument("--strides", default=",".join(map(str, study.STRIDES_MS)),
                        help="comma-separated strides in ms (multiples of the frame step)")
    parser.add_argument("--board-stride-ms", type=int, default=study.BOARD_STRIDE_MS,
                        help="the stride written to detector.json for the firmware "
                             f"(default {study.BOARD_STRIDE_MS})")
    parser.add_argument("--max-fa-per-hour", type=float, default=DEFAULT_MAX_FA_PER_HOUR,
                        help="false-alarm budget of the chosen point (default %(default)s)")
    parser.add_argument("--anchor", action="append", default=[], metavar="NAME=MODEL[@LABELS]",
                        help="another model run through the same procedure (repeatable), e.g. "
                             "mlperf=ref.tflite@down,go,...,silence,unknown")
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="report path without suffix (default reports/stream_<run name>)")


def _anchor(text: str) -> tuple[str, str, str | None]:
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise UserError(f"--anchor {text!r}: expected NAME=MODEL or NAME=MODEL@LABELS")
    model, _, labels = rest.partition("@")
    return name, model, labels or None


def run(args: argparse.Namespace) -> int:
    try:
        strides = [int(s) for s in args.strides.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--strides {args.strides!r}: comma-separated integers (ms)") from None
    tracks = [Path(p).with_suffix(".csv") for p in (args.tune, args.test)]
    for track in tracks:
        if not track.is_file():
            raise UserError(f"{track}: no label track beside the stream; make the stream with "
                            "`tinyspeech stream-make`")
    report = study.study(args.model, tune_audio=args.tune, tune_track=str(tracks[0]),
                         test_audio=args.test, test_track=str(tracks[1]), strides=strides,
                         board_stride_ms=args.board_stride_ms,
                         max_fa_per_hour=args.max_fa_per_hour,
                         anchors=[_anchor(a) for a in args.anchor], command=command_line(args))
    out = args.out or f"reports/stream_{Path(args.model).resolve().name}"
    done = study.write(report, out, args.model)
    print(study.markdown(report))
    s = done["settings"]
    print(f"wrote {done['json']}, its .md and {done['png']}; {args.model}/detector.json: "
          f"stride {s.stride_ms} ms, threshold {s.threshold}, window {s.window_ms} ms, "
          f"count {s.min_count}")
    return 0
