"""The tensor arena a 32-bit Cortex-M build of TFLM needs, from the 64-bit host's measurement.

Why: :func:`tinyspeech_tf.tflm.arena_bytes` measures the arena in the TFLM Python interpreter,
a 64-bit build with reference kernels. A Cortex-M build differs in two ways, in opposite
directions:

- TFLM's bookkeeping holds pointers, which are half the size: one ``TfLiteEvalTensor`` per
  tensor (24 bytes on the host, 12 on a 32-bit target), one node-and-registration struct per
  op (64 and 32) and a ``TfLiteTensor`` per model input and output (64 and 40). A real
  Cortex-M4 build used markedly less than the host figure (its measurement is
  ``tinyspeech_tf/measured/cortex_m4``).
- CMSIS-NN kernels (the Arduino library's, Zephyr's option) ask for scratch buffers: an
  im2col buffer for a convolution, a repacked kernel for a depthwise conv that is not 3x3.
  The planner places them beside the tensors live during their op, so at the arena's peak they
  add to it.

So the estimate is: the host's tail (persistent allocations) less the exact struct savings
above, nothing else (the other persistent data, kernels' op data and TFLM's own objects, also
shrink on a 32-bit target, which leaves the estimate an upper bound), plus the head
(activations) re-planned with the CMSIS-NN scratch buffers by TFLM's greedy planner. The
planner is simulated here (sizes rounded to 16, buffers by decreasing size, ties in reverse
order of request, each at the lowest offset free during its lifetime). Without scratch
buffers it reproduces the head TFLM reports for the zoo's models (tested); head TFLM has beyond the
simulation (scratch its reference kernels requested) is kept, and should a TFLM plan tighter
than the simulation, its head gets the largest scratch buffer on top instead.
"""

from __future__ import annotations

import re
from typing import Any

from tinyspeech_tf import tflm
from tinyspeech_tf.quantize.flatbuffer import parse_flatbuffer

BUFFER_ALIGN = 16
# (LP64 host bytes, ILP32 board bytes) of the bookkeeping structs TFLM's recording allocator
# itemises: a struct of another host size (another TFLM version) is assumed not to shrink.
STRUCT_BYTES = {
    "TfLiteEvalTensor data": (24, 12),
    "NodeAndRegistration struct": (64, 32),
    "Persistent TfLiteTensor data": (64, 40),
}


def _round(n: int) -> int:
    return -(-int(n) // BUFFER_ALIGN) * BUFFER_ALIGN


def greedy_plan(buffers: list[tuple[int, int, int]], align: int = BUFFER_ALIGN) -> int:
    """Arena head of TFLM's GreedyMemoryPlanner for (bytes, first op, last op) buffers given in
    the order TFLM requests them (tensors by index, then scratch buffers).

    Sizes are rounded up to ``align``; the largest buffer goes first, each at the lowest offset
    clear of every placed buffer alive at the same time. Equal sizes are placed in reverse
    order of request, as TFLM's sort array is filled from its end: the order decides how the
    equally sized full-resolution tensors of a condenser pack.
    """
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    rounded = [(-(-b // align) * align, f, la) for b, f, la in buffers]
    for size, first, last in sorted(reversed(rounded), key=lambda x: -x[0]):
        offset = 0
        for o, sz, _, _ in sorted(p for p in placed if not (p[3] < first or p[2] > last)):
            if offset + size <= o:
                break
            offset = max(offset, o + sz)
        placed.append((offset, size, first, last))
    return max((o + sz for o, sz, _, _ in placed), default=0)


def parse_allocation_report(report: str) -> dict:
    """TFLM's RecordingMicroAllocator lines -> total/head/tail and the tail's named parts."""
    out: dict[str, Any] = {"parts": []}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", report)
        out[key] = int(m.group(1)) if m else None
    for m in re.finditer(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested "
                         r"(\d+) bytes for (\d+) ([^)]*)\)", report):
        out["parts"].append({"what": m.group(1), "used": int(m.group(2)),
                             "requested": int(m.group(3)), "count": int(m.group(4))})
    if out["tail"] is not None:
        out["tail_other"] = out["tail"] - sum(p["used"] for p in out["parts"])
    return out


def _same_padding(in_size: int, out_size: int, kernel: int, stride: int) -> int:
    """Total padding along one axis (0 for VALID)."""
    return max(0, (out_size - 1) * stride + kernel - in_size)


def cmsis_nn_scratch(op: dict, tensors: list[dict]) -> int:
    """Bytes of scratch buffer CMSIS-NN's kernel for ``op`` requests on a Cortex-M with the DSP
    extension and no MVE (Cortex-M4/M7/M33), by CMSIS-NN's ``*_get_buffer_size`` rules.

    Convolution: an int16 im2col row pair, 2 * 2 * C_in * kh * kw bytes, except a 1x1 kernel
    of stride 1 on a channel count divisible by 4 (no buffer). Depthwise with channel
    multiplier 1: 2 * C * kh * kw bytes, except 3x3 with padding <= 1 (no buffer); other
    multipliers use a kernel with none. Fully connected: a sum per output (4 bytes each, taken
    whether or not a given CMSIS-NN version asks for it). Average pool: 4 bytes per channel.
    """
    name = op["op"]
    ins = [tensors[i] for i in op["inputs"] if i >= 0]
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        x, w = ins[0], ins[1]
        out = tensors[op["outputs"][0]]
        _, in_h, in_w, in_c = (int(v) for v in x["shape"])
        _, out_h, out_w, out_c = (int(v) for v in out["shape"])
        kh, kw = int(w["shape"][1]), int(w["shape"][2])
        stride_h = max(1, round(in_h / out_h)) if out_h > 1 else 1
        stride_w = max(1, round(in_w / out_w)) if out_w > 1 else 1
        if name == "CONV_2D":
            if kh == kw == 1 and stride_h == stride_w == 1 and in_c % 4 == 0:
                return 0
            return 2 * 2 * in_c * kh * kw
        if out_c != in_c:
            return 0
        pad_h = _same_padding(in_h, out_h, kh, stride_h) // 2
        pad_w = _same_padding(in_w, out_w, kw, stride_w) // 2
        if kh == kw == 3 and pad_h <= 1 and pad_w <= 1:
            return 0
        return 2 * in_c * kh * kw
    if name == "FULLY_CONNECTED":
        return 4 * int(tensors[op["outputs"][0]]["shape"][-1])
    if name == "AVERAGE_POOL_2D":
        return 4 * int(ins[0]["shape"][-1])
    return 0


def planned_head(tflite_bytes: bytes, cmsis_nn: bool = False) -> int:
    """Bytes of the arena's head (activations, and scratch buffers) as TFLM's greedy planner
    lays them out; ``cmsis_nn`` adds each op's CMSIS-NN scratch for the duration of the op."""
    return _planned_head(parse_flatbuffer(tflite_bytes), cmsis_nn)


def _planned_head(fb: dict, cmsis_nn: bool) -> int:
    ops, tensors = fb["ops"], fb["tensors"]
    first: dict[int, int] = {t: 0 for t in fb["inputs"]}
    last: dict[int, int] = {}
    for i, op in enumerate(ops):
        for t in op["outputs"]:
            first.setdefault(t, i)
        for t in op["inputs"]:
            if t >= 0:
                last[t] = i
    for t in fb["outputs"]:
        last[t] = len(ops) - 1
    buffers = [(tensors[t]["bytes"], first[t], last.get(t, first[t])) for t in sorted(first)
               if not tensors[t]["constant"] and not tensors[t]["variable"]]
    if cmsis_nn:
        buffers += [(size, i, i) for i, op in enumerate(ops)
                    if (size := cmsis_nn_scratch(op, tensors))]
    return greedy_plan(buffers)


def board_arena_bytes(tflite_bytes: bytes) -> dict:
    """The arena a 32-bit Cortex-M TFLM build with CMSIS-NN kernels needs, as an upper bound
    (see the module docstring), with the figures it is made of. Reference kernels on the same
    board need no more (they ask for none of the scratch)."""
    host_arena = tflm.arena_bytes(tflite_bytes)
    report = parse_allocation_report(tflm.allocation_report(tflite_bytes, host_arena))
    if report["head"] is None or report["tail"] is None:
        raise RuntimeError("TFLM's allocation report lacks its head or tail")
    fb = parse_flatbuffer(tflite_bytes)
    simulated = _planned_head(fb, cmsis_nn=False)
    if simulated <= report["head"]:
        # Scratch the host's reference kernels requested (the simulation has none) stays too.
        head = _planned_head(fb, cmsis_nn=True) + report["head"] - simulated
    else:
        # This TFLM plans otherwise than the simulation: the largest scratch on top of its head.
        head = report["head"] + max((_round(cmsis_nn_scratch(op, fb["tensors"]))
                                     for op in fb["ops"]), default=0)
    saving = 0
    for part in report["parts"]:
        host_size, board_size = STRUCT_BYTES.get(part["what"], (0, 0))
        if part["count"] and part["used"] == host_size * part["count"]:
            saving += (host_size - board_size) * part["count"]
    tail = report["tail"] - saving
    # Planning itself borrows the room between head and tail (allocation records per buffer);
    # where the host needed more than its head for that, the board is given as much.
    room = max(head, host_arena - report["tail"])
    return {"host_arena": host_arena, "host_head": report["head"], "host_tail": report["tail"],
            "head": head, "bookkeeping_saving": saving, "tail": tail,
            "arena": _round(room + tail)}
