"""``tinyspeech evaluate``: int8 accuracy of a model in the TFLM interpreter on a dataset."""

from __future__ import annotations

import argparse
import json

from tinyspeech_tf.evaluate import evaluate
from tinyspeech_tf.io import write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="int8 .tflite file (or a run directory)")
    parser.add_argument("--data", required=True,
                        help="dataset folder or source (see `tinyspeech dataset info`)")
    parser.add_argument("--split", default="validation",
                        help="split to score when the source has several (default validation)")
    parser.add_argument("--labels", default=None,
                        help="the model's label order: a labels.txt path or a comma-separated "
                             "list (default: labels.txt beside the model)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the report here")


def run(args: argparse.Namespace) -> int:
    report = evaluate(args.model, args.data, args.split, args.labels)
    print(f"{report['model']}: int8 (TFLM) accuracy {report['accuracy']:.2%} on "
          f"{report['examples']} {report['split']} examples")
    for name, acc in report["per_class"].items():
        print(f"  {name:<10} {'-' if acc is None else f'{acc:.1%}'}")
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2))
    return 0
