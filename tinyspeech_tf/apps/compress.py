"""``tinyspeech compress``: cluster a run's int8 weights and TFLM LUT-compress them; score and
check."""

from __future__ import annotations

import argparse

from tinyspeech_tf.compress import compress_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run directory of `tinyspeech train` (model_int8.tflite, "
                                    "labels.txt, frontend.json, config.json)")
    parser.add_argument("--bits", type=int, default=4,
                        help="index bits: at most 2**bits values per filter channel (default 4)")
    parser.add_argument("--min-saving", type=int, default=0, metavar="BYTES",
                        help="compress a filter only if it saves at least this many bytes "
                             "after its tables and DECODE op (default 0: any saving)")
    parser.add_argument("--data", default=None,
                        help="dataset scored (its validation split); default: the run's data")


def run(args: argparse.Namespace) -> int:
    report = compress_run(args.run, args.bits, args.min_saving, args.data)
    size, arena, acc = report["bytes"], report["arena_bytes"], report["int8_accuracy"]
    print(f"{args.run}: {size['source']:,} -> {size['compressed']:,} bytes "
          f"({len(report['compressed_tensors'])} filters as {args.bits}-bit LUT), arena "
          f"{arena['source']:,} -> {arena['compressed']:,}; "
          f"int8 accuracy {acc['source']:.2%} -> {acc['compressed']:.2%}; "
          "TFLM outputs equal the clustered model's")
    return 0
