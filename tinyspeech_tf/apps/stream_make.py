"""``tinyspeech stream-make OUT.wav --data VAL_DIR``: a long test recording with a label track.

The work is :func:`tinyspeech_tf.stream.make.write_stream`; this module parses the options and
prints what was written.
"""

from __future__ import annotations

import argparse

from tinyspeech_tf.stream.make import (
    DEFAULT_GAP_S,
    DEFAULT_MINUTES,
    DEFAULT_SNR_DB,
    SPEAKER_HALVES,
    write_stream,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT.wav",
                        help="stream to write; the label track goes beside it as OUT.csv")
    parser.add_argument("--data", required=True,
                        help="folder of held-out clips: a 12-class folder (e.g. "
                             "speech_commands_v0.02_real/val) or a dataset with a validation "
                             "split")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES,
                        help=f"stream length (default {DEFAULT_MINUTES:g})")
    parser.add_argument("--seed", type=int, default=0, help="clip order, gaps, noise (default 0)")
    parser.add_argument("--noise-dir", default=None,
                        help="background-noise wavs (default: the dataset's _background_noise_, "
                             "else ../shared's official Speech Commands noise files)")
    parser.add_argument("--snr-db", type=float, default=DEFAULT_SNR_DB,
                        help="median speech level over the background noise level "
                             f"(default {DEFAULT_SNR_DB:g} dB)")
    parser.add_argument("--gap-s", type=float, nargs=2, default=list(DEFAULT_GAP_S),
                        metavar=("MIN", "MAX"),
                        help="random gap before each clip, uniform in [MIN, MAX] seconds "
                             f"(default {DEFAULT_GAP_S[0]:g} {DEFAULT_GAP_S[1]:g})")
    parser.add_argument("--speakers", default="all", choices=SPEAKER_HALVES,
                        help="use one fixed half of the speakers (a or b: a stream to tune the "
                             "detector on and another, of other speakers, to test it) or all")


def run(args: argparse.Namespace) -> int:
    done = write_stream(args.out, args.data, minutes=args.minutes, seed=args.seed,
                        noise_dir=args.noise_dir, snr_db=args.snr_db, gap_s=args.gap_s,
                        speakers=args.speakers)
    print(f"wrote {done['wav']} ({done['seconds']:.1f} s) and {done['csv']}: "
          f"{done['keywords']} keyword utterances, {done['unknown']} unknown words, "
          f"{done['silence']} silence clips from {done['source_clips']} clips; "
          f"{done['noise_files']} noise files at {args.snr_db:g} dB SNR")
    return 0
