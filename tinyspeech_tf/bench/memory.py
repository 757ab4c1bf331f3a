"""Where a model's bytes and arena go: activation liveness, a TFLM-style memory plan, and
TFLM's own allocation report, so bench can explain an arena size rather than only state it."""

from __future__ import annotations

import numpy as np

from tinyspeech_tf.board_arena import greedy_plan, parse_allocation_report, planned_head
from tinyspeech_tf.quantize.flatbuffer import parse_flatbuffer

__all__ = ["activation_peak", "arena_breakdown", "greedy_plan", "parse_allocation_report"]


def activation_peak(tflite_bytes: bytes) -> dict:
    """Activation memory along the op order: which tensors are live at the peak.

    A non-constant tensor is live from the op that produces it (the graph input: from the
    start) to the last op that reads it (a graph output: to the end). The peak sum is the
    lower bound any memory plan needs for the arena head; ``greedy_plan_bytes`` is TFLM's
    greedy plan of the same tensors (:func:`tinyspeech_tf.board_arena.planned_head`), which
    can exceed the bound by fragmentation and alignment.
    """
    fb = parse_flatbuffer(tflite_bytes)
    n_ops = len(fb["ops"])
    first: dict[int, int] = {i: -1 for i in fb["inputs"]}
    last: dict[int, int] = {}
    producer: dict[int, int] = {}
    for k, op in enumerate(fb["ops"]):
        for i in op["inputs"]:
            if i >= 0:
                last[i] = k
        for o in op["outputs"]:
            first.setdefault(o, k)
            producer[o] = k
    for o in fb["outputs"]:
        last[o] = n_ops
    acts = [t for t in fb["tensors"]
            if not t["constant"] and not t["variable"] and t["index"] in first]
    per_op = []
    for k in range(n_ops):
        live = [t for t in acts if first[t["index"]] <= k <= last.get(t["index"], k)]
        per_op.append((sum(t["bytes"] for t in live), live))
    peak_k = int(np.argmax([b for b, _ in per_op]))
    peak_bytes, live = per_op[peak_k]
    op = fb["ops"][peak_k]

    def role(t: dict) -> str:
        i = t["index"]
        if i in op["outputs"]:
            return "output of the peak op"
        if i in op["inputs"]:
            return "input of the peak op"
        if i in fb["inputs"]:
            return "graph input (kept for the whole invoke)"
        return f"held for op {last[i]} ({fb['ops'][last[i]]['op']})" if last[i] < n_ops \
            else "graph output"

    return {
        "peak_bytes": int(peak_bytes), "peak_op_index": peak_k, "peak_op": op["op"],
        "greedy_plan_bytes": planned_head(tflite_bytes),
        "live": [{"tensor": t["index"], "shape": t["shape"], "type": t["type"],
                  "bytes": t["bytes"],
                  "produced_by": ("graph input" if t["index"] in fb["inputs"] else
                                  f"op {producer[t['index']]} "
                                  f"({fb['ops'][producer[t['index']]]['op']})"),
                  "role": role(t)} for t in sorted(live, key=lambda t: -t["bytes"])],
        "largest_activation_bytes": max((t["bytes"] for t in acts), default=0),
    }


def arena_breakdown(tflite_bytes: bytes, arena: int) -> dict:
    """Arena head (planned activations) vs tail (persistent bookkeeping), with the peak."""
    from tinyspeech_tf import tflm

    parts = parse_allocation_report(tflm.allocation_report(tflite_bytes, arena))
    parts["activation_peak"] = activation_peak(tflite_bytes)
    return parts
