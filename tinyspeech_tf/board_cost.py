"""Instructions per inference on a Cortex-M4 TFLM build with CMSIS-NN kernels, estimated.

Why: whether a model keeps up with the runner's stride on a board depends on the instructions
the board's kernels run, and neither MACs nor the host's TFLM time say that. On a real-TFLM
Cortex-M4 build with CMSIS-NN (``measured/cortex_m4``) TinySpeech-M's element-wise ops, a few
percent of its arithmetic, took 59% of its instructions: CMSIS-NN accelerates convolutions and
has no kernel for MEAN, LOGISTIC or RESIZE_NEAREST_NEIGHBOR. Such a build cannot be made here
(TFLM's sources are in no package registry), so this module prices a flatbuffer's ops by rates
calibrated on that build's per-op measurement:

- convolutions (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) cost a rate per MAC: the
  measurement's total less the ops it itemised, over the measured model's MACs. Everything it
  did not itemise (softmax, reshape, the interpreter's dispatch) is inside that rate;
- every itemised op type costs a rate per element: its measured instructions over the elements
  it processed there (output elements; input elements for the reductions MEAN, MAX_POOL_2D and
  AVERAGE_POOL_2D, which has no figure of its own and is priced as MAX_POOL_2D, CMSIS-NN's
  kernel of the same shape; RESHAPE, at most a copy, is priced as RESIZE_NEAREST_NEIGHBOR's
  copy per element).

Op types the measured model did not have and that have no stand-in are listed as unpriced (the
total is then short of them). Limits: one calibration point; the convolution rate is an average
over M's kernel shapes (its 3x3 head dominates), so small-kernel ops, whose per-output overhead
outweighs their MACs, are under-priced; a MUL's rate mixes the broadcast and same-shape MULs
of the measured model. :func:`check` compares the estimate with the build's figure for another
model (MLPerf's DS-CNN).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

from tinyspeech_tf.quantize.flatbuffer import parse_flatbuffer

MEASURED = Path(__file__).parent / "measured" / "cortex_m4"
CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
PER_INPUT_ELEMENT = ("MEAN", "MAX_POOL_2D", "AVERAGE_POOL_2D")
STAND_INS = {"AVERAGE_POOL_2D": "MAX_POOL_2D", "RESHAPE": "RESIZE_NEAREST_NEIGHBOR"}


def _elements(shape) -> int:
    return math.prod(int(v) for v in shape)


def _work(op: dict, tensors: list[dict]) -> int:
    """MACs of a convolution; else the elements the op processes (see the module docstring)."""
    name = op["op"]
    ins = [tensors[i] for i in op["inputs"] if i >= 0]
    out = _elements(tensors[op["outputs"][0]]["shape"])
    if name == "CONV_2D":
        _, kh, kw, cin = ins[1]["shape"]
        return out * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D":
        return out * ins[1]["shape"][1] * ins[1]["shape"][2]
    if name == "FULLY_CONNECTED":
        return out * ins[1]["shape"][-1]
    if name in PER_INPUT_ELEMENT:
        return _elements(ins[0]["shape"])
    return out


def work_by_op(tflite_bytes: bytes) -> dict[str, int]:
    """Work units (MACs or elements, see :func:`_work`) of each op type in the flatbuffer."""
    fb = parse_flatbuffer(tflite_bytes)
    totals: dict[str, int] = {}
    for op in fb["ops"]:
        totals[op["op"]] = totals.get(op["op"], 0) + _work(op, fb["tensors"])
    return totals


@cache
def measurement() -> dict:
    """The real Cortex-M4 build's figures (``measured/cortex_m4/measured.json``)."""
    return json.loads((MEASURED / "measured.json").read_text())


@cache
def rates() -> dict[str, float]:
    """Instructions per work unit by op type, from the measurement: ``"convolution"`` per MAC
    (with everything unitemised), each itemised op type per element; the measured model's other
    ops at 0 (their cost is inside the convolution rate)."""
    m = measurement()
    work = work_by_op((MEASURED / m["model"]).read_bytes())
    itemised = m["cmsis_nn_instructions_by_op"]
    out = {name: 0.0 for name in work if name not in CONVOLUTIONS}
    out.update({name: count / work[name] for name, count in itemised.items()})
    macs = sum(work.get(name, 0) for name in CONVOLUTIONS)
    out["convolution"] = (m["instructions_per_inference"]["cmsis_nn"]
                          - sum(itemised.values())) / macs
    return out


def estimate(tflite_bytes: bytes) -> dict:
    """Estimated CMSIS-NN instructions per inference of an int8 flatbuffer on a Cortex-M4:
    ``instructions`` (rounded to thousands, the measurement's own precision), ``by_op``
    (instructions by op type) and ``unpriced`` (op types without a rate, not counted)."""
    r = rates()
    by_op: dict[str, float] = {}
    unpriced = []
    for name, units in work_by_op(tflite_bytes).items():
        rate = r["convolution"] if name in CONVOLUTIONS else r.get(STAND_INS.get(name, name))
        if rate is None:
            unpriced.append(name)
            continue
        by_op[name] = rate * units
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1])
    return {"instructions": int(round(sum(by_op.values()), -3)),
            "by_op": {name: int(round(count, -3)) for name, count in ranked},
            "unpriced": sorted(unpriced)}


def check(models_dir: Path) -> list[dict]:
    """The estimate against the build's measured total for each other model it measured that
    ``models_dir`` holds: ``model``, ``measured``, ``estimated``, ``error`` (relative)."""
    out = []
    for name, figures in measurement()["other_models"].items():
        path = Path(models_dir) / name
        if not path.is_file():
            continue
        measured = figures["instructions_per_inference"]["cmsis_nn"]
        est = estimate(path.read_bytes())
        out.append({"model": name, "measured": measured, "estimated": est["instructions"],
                    "error": est["instructions"] / measured - 1, "unpriced": est["unpriced"]})
    return out


__all__ = ["check", "estimate", "measurement", "rates", "work_by_op"]
