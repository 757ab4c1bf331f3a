"""``tinyspeech export-tflite RUN``: a trained run -> the C/C++ files a TFLM firmware compiles.

The work is :func:`tinyspeech_tf.export.bundle.export`; this module parses the options, picks
the default firmware copies (those present in the working directory) and prints the summary.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tinyspeech_tf.export.bundle import (
    DEFAULT_ARENA_MARGIN,
    DEFAULT_COPY_DIRS,
    default_copy_dirs,
    default_out_dir,
    export,
)
from tinyspeech_tf.export.headers import DEFAULT_GOLDEN_FRAMES
from tinyspeech_tf.io import display_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="training run directory, e.g. "
                        "runs/tinyspeech_m (made by `tinyspeech train`)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: build/<name of RUN>)")
    parser.add_argument("--golden-wav", default=None, metavar="WAV",
                        help="the clip for golden.h (default: the first validation clip of "
                             "the run's dataset labelled with the first keyword)")
    parser.add_argument("--golden-label", default=None, metavar="LABEL",
                        help="the label of --golden-wav (default: its folder's name if that "
                             "is a label, else the model's prediction)")
    parser.add_argument("--golden-frames", type=int, default=DEFAULT_GOLDEN_FRAMES, metavar="N",
                        help="front-end frames of the golden clip's PCM in golden.h, from its "
                             f"loudest (default {DEFAULT_GOLDEN_FRAMES}: about 3 KB of flash; "
                             "49 streams the whole 1 s clip, 32 KB)")
    parser.add_argument("--arena-margin", type=int, default=DEFAULT_ARENA_MARGIN,
                        metavar="BYTES", help="bytes added to the minimum arena (the 64-bit "
                        "host's measured and the 32-bit target's estimated) "
                        f"(default {DEFAULT_ARENA_MARGIN}); each sum is rounded up to 16")
    parser.add_argument("--copy-to", action="append", default=None, metavar="DIR",
                        help="copy the C/C++ files into DIR (repeatable; relative to the "
                             f"working directory; default: {', '.join(DEFAULT_COPY_DIRS)}, "
                             "those that exist in the working directory)")
    parser.add_argument("--no-copy", action="store_true",
                        help="write only the output directory")


def _command_line(args: argparse.Namespace) -> str:
    """The command as banners show it: the options that change the output, no local paths."""
    parts = ["tinyspeech", "export-tflite", display_path(args.run)]
    if args.golden_wav:
        parts += ["--golden-wav", display_path(args.golden_wav)]
    if args.golden_label:
        parts += ["--golden-label", args.golden_label]
    if args.golden_frames != DEFAULT_GOLDEN_FRAMES:
        parts += ["--golden-frames", str(args.golden_frames)]
    if args.arena_margin != DEFAULT_ARENA_MARGIN:
        parts += ["--arena-margin", str(args.arena_margin)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else default_out_dir(args.run)
    absent: tuple[str, ...] = ()
    if args.no_copy:
        copy_to: tuple[str, ...] = ()
    elif args.copy_to:
        copy_to = tuple(args.copy_to)
    else:
        copy_to, absent = default_copy_dirs()
    manifest = export(args.run, out, golden_wav=args.golden_wav,
                      golden_label=args.golden_label, arena_margin=args.arena_margin,
                      copy_to=copy_to, command=_command_line(args),
                      golden_frames=args.golden_frames)
    for warning in manifest["warnings"]:
        print(f"tinyspeech export-tflite: warning: {warning}", file=sys.stderr)
    g = manifest["golden"]
    print(f"{manifest['out']}: {len(manifest['files'])} files from {manifest['run']} "
          f"({manifest['tflite_bytes']} bytes, {manifest['op_count']} ops, arena "
          f"{manifest['arena_32bit_header_bytes']} on 32-bit targets = "
          f"{manifest['arena_32bit_bytes']} estimated + {manifest['arena_margin_bytes']} margin, "
          f"{manifest['arena_header_bytes']} on 64-bit hosts = "
          f"{manifest['arena_measured_bytes']} measured + margin); golden clip {g['clip']} "
          f"({g['label']}, predicted {g['predicted_label']})")
    for target in manifest["copied_to"]:
        print(f"  copied to {target}/")
    if absent:
        print(f"  note: no firmware copy into {', '.join(absent)} (not in the working "
              "directory; run from the repository checkout or pass --copy-to DIR)")
    return 0
