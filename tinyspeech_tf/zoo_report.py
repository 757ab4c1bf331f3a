"""``tinyspeech zoo``: what each zoo model costs on a microcontroller.

For every model: parameters, MACs, the op set after full-int8 conversion, the .tflite size and
the minimum TFLM arena measured in the TFLM Python interpreter. Conversion is calibrated on
random inputs: sizes, op sets and arena do not depend on the calibration data.
"""

from __future__ import annotations

import argparse
import json

from tinyspeech_tf.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object keyed by model name")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only these models (default: the whole zoo)")


def measure(name: str, **kwargs) -> dict:
    """Build, convert and measure one zoo model."""
    from tinyspeech_tf import profile, quantize, tflm, zoo

    model = zoo.get(name, **kwargs)
    tflite_bytes = quantize.convert_int8(
        model, quantize.random_representative(model.input_shape[1:], count=32))
    return {
        "params": int(model.count_params()),
        "macs": profile.total_macs(model),
        "tflite_bytes": len(tflite_bytes),
        "arena_bytes": tflm.arena_bytes(tflite_bytes),
        "ops": quantize.op_set(tflite_bytes),
    }


def table(results: dict[str, dict]) -> str:
    """Markdown table of :func:`measure` results, paper figures beside the TinySpeech rows."""
    from tinyspeech_tf.zoo import PAPER

    def fmt(value) -> str:
        return f"{value:,}" if isinstance(value, int) else "-"

    lines = ["| model | params | paper params | MACs | paper MACs | .tflite bytes "
             "| arena bytes | ops |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in results.items():
        paper = PAPER.get(name, {})
        lines.append(
            f"| {name} | {fmt(r['params'])} | {fmt(paper.get('params'))} | {fmt(r['macs'])} "
            f"| {fmt(paper.get('macs'))} | {fmt(r['tflite_bytes'])} "
            f"| {fmt(r['arena_bytes'])} | {' '.join(r['ops'])} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tinyspeech_tf import zoo

    names = args.models or zoo.names()
    unknown = [n for n in names if n not in zoo.names()]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r} in --models; choose from: "
                        f"{', '.join(zoo.names())}")
    results = {name: measure(name) for name in names}
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0
