"""``tinyspeech bench-scale``: peak memory, clips/s and time to first batch of one training
epoch at 10K, 40K and 105K clips (see tinyspeech_tf.bench.scale)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from tinyspeech_tf.data.clips import cache_dir
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.io import replace_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyspeech_tf.bench.scale import SIZES

    parser.add_argument("--real", default="../shared/data/speech_commands_v0.02_real",
                        help="real clips the archive varies (12-class layout; skipped with a "
                             "note when absent)")
    parser.add_argument("--work", default=None,
                        help="where the archive is built once and kept (default scale/ in the "
                             "cache: $TINYSPEECH_CACHE or .cache)")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                        help="comma-separated clip counts, the largest is the archive's size")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="vary only the --real clips (default: the offline synthetic set "
                             "too, generated once if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/scale",
                        help="report path without extension (.json and .md are written)")


def run(args: argparse.Namespace) -> int:
    from tinyspeech_tf.bench import scale
    from tinyspeech_tf.data.sources import default_noise_dir
    from tinyspeech_tf.train.config import load_source

    try:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--sizes {args.sizes}: give comma-separated clip counts, e.g. "
                        "10000,40000,105000") from None
    if len(sizes) < 2 or min(sizes) < 100:
        raise UserError(f"--sizes {args.sizes}: give at least two counts of 100 clips or more")
    splits = [] if args.no_synthetic else [load_source("synthetic", args.seed).split("train")]
    if Path(args.real).is_dir():
        real = load_source(args.real, args.seed)
        splits += [real.split(name) for name in ("train", "validation")]
    elif args.no_synthetic:
        raise UserError(f"{args.real}: no such folder, and --no-synthetic leaves no clips to "
                        "vary; give --real a 12-class dataset folder")
    else:
        print(f"bench-scale: {args.real} absent; the archive varies synthetic clips only")
    noise = default_noise_dir()
    command = "tinyspeech bench-scale " + shlex.join(sys.argv[2:])
    work = Path(args.work) if args.work else cache_dir() / "scale"
    report = scale.run_bench(splits, noise, work, sizes, args.seed, command.strip())
    out = Path(args.out)
    replace_files({out.with_suffix(".json"): json.dumps(report, indent=2) + "\n",
                   out.with_suffix(".md"): scale.to_markdown(report)})
    print(scale.to_markdown(report))
    return 0
