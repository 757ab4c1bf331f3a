"""``tinyspeech evaluate``: int8 accuracy of any 49x10-MFCC model in the TFLM interpreter.

Works for our run directories' models and for foreign ones (the MLPerf Tiny and MicroNet
models), given their label order: data labels are mapped to the model's by name, with
``silence``/``unknown`` accepted for ``_silence_``/``_unknown_``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from tinyspeech_tf.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="int8 .tflite file with a [1, 49, 10, 1] input")
    parser.add_argument("--data", required=True,
                        help="dataset folder or source (see `tinyspeech dataset info`)")
    parser.add_argument("--split", default="validation",
                        help="split to score when the source has several (default validation)")
    parser.add_argument("--labels", default=None,
                        help="the model's label order: a labels.txt path or a comma-separated "
                             "list (default: labels.txt beside the model)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the report here")


def model_labels(model_path: Path, labels: str | None) -> tuple[str, ...]:
    """The model's output label order from --labels or the run directory's labels.txt."""
    from tinyspeech_tf.data import read_labels
    from tinyspeech_tf.data.protocol import canonical_label

    if labels is None:
        beside = model_path.with_name("labels.txt")
        if not beside.exists():
            raise UserError(f"{model_path}: no labels.txt beside it; give the model's label "
                            "order with --labels (a file or a comma-separated list)")
        names = read_labels(beside)
    elif os.path.exists(labels):
        names = read_labels(labels)
    else:
        names = tuple(n.strip() for n in labels.split(",") if n.strip())
    return tuple(canonical_label(n) for n in names)


def evaluate(model_path: str | os.PathLike, data: str, split: str = "validation",
             labels: str | None = None) -> dict:
    """Score an int8 model on a dataset split in TFLM; returns accuracy, per class, confusion."""
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf import quantize
    from tinyspeech_tf.features import DEFAULT_CONFIG
    from tinyspeech_tf.train import evaluate_int8, features_of

    path = Path(model_path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    tflite_bytes = path.read_bytes()
    try:
        io = quantize.io_quantization(tflite_bytes)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"{path}: not a readable .tflite model ({err})") from None
    expected = [1, *DEFAULT_CONFIG.feature_shape, 1]
    if io["input_shape"] != expected:
        raise UserError(f"{path}: input shape {io['input_shape']}, expected {expected} "
                        "(49x10 MFCC)")
    names = model_labels(path, labels)
    if len(names) != io["output_shape"][-1]:
        raise UserError(f"{path}: {io['output_shape'][-1]} outputs but {len(names)} labels "
                        "given; fix --labels")
    source = data_mod.load(data)
    chosen = source.split(split)
    missing = [n for n in chosen.label_names if n not in names]
    if missing:
        raise UserError(f"data labels {missing} are not among the model's labels {names}")
    mapped = data_mod.remap_labels(chosen, names)
    features = features_of(mapped.waveforms, DEFAULT_CONFIG)
    report = evaluate_int8(tflite_bytes, features, mapped.labels, names)
    report.update(model=str(path), data=str(data), split=split, labels=list(names))
    return report


def run(args: argparse.Namespace) -> int:
    report = evaluate(args.model, args.data, args.split, args.labels)
    print(f"{report['model']}: int8 (TFLM) accuracy {report['accuracy']:.2%} on "
          f"{report['examples']} {report['split']} examples")
    for name, acc in report["per_class"].items():
        print(f"  {name:<10} {'-' if acc is None else f'{acc:.1%}'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
