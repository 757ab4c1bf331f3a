"""``tinyspeech pretrained``: the trained models shipped with the package (and, with
``--update RUN ...``, bundle finished runs as shipped models)."""

from __future__ import annotations

import argparse

from tinyspeech_tf import bundles
from tinyspeech_tf.zoo import PRETRAINED_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--update", nargs="+", metavar="RUN", default=None,
                        help="bundle these finished runs (zoo models, default arguments) into "
                             "--into, one folder per model")
    parser.add_argument("--into", default=None, metavar="DIR",
                        help="where bundles are (default: the installed package's)")


def run(args: argparse.Namespace) -> int:
    root = args.into or PRETRAINED_DIR
    for run_dir in args.update or ():
        print(f"bundled {run_dir} -> {bundles.write_bundle(run_dir, root).as_posix()}")
    rows = bundles.listing(root)
    if not rows:
        print(f"no pretrained models in {root}")
        return 0
    print("| model | int8 accuracy (TFLM) | val clips | .tflite bytes | arena bytes | detector "
          "| data |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        acc = "-" if r["int8_accuracy"] is None else f"{r['int8_accuracy']:.2%}"
        print(f"| {r['name']} | {acc} | {r['val_examples']} | {r['tflite_bytes']:,} "
              f"| {r['arena_bytes']:,} | {'yes' if r['detector'] else 'no'} | `{r['data']}` |")
    print("zoo.<model>(weights=\"speech_commands\") loads the Keras weights; every folder is a "
          "run directory (export-tflite, stream, evaluate take it).")
    return 0
