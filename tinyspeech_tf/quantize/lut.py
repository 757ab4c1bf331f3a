"""Flash-saving passes on an int8 flatbuffer, and the accounting that shows what they bought.

- :func:`weight_storage` counts how the filter weights are stored: how many weight tensors,
  how many distinct buffers and bytes, and which tensors several ops read (weights shared
  across layers, e.g. by the zoo's ``share`` and ``low_rank_share`` options, are stored once:
  the converter gives every use the same tensor).
- :func:`cluster` snaps each int8 filter to at most ``2**bits`` values per quantization
  channel (1-D k-means on its int8 values, zero kept exact so pruned weights stay zero).
  The result is an ordinary int8 model, scored like any other. Snapping a trained model costs
  accuracy; a model trained with ``tinyspeech train --cluster-bits`` (see
  :mod:`tinyspeech_tf.quantize.clustering`) already has that few values and clustering
  changes nothing.
- :func:`lut_compress` hands such a model to TFLM's look-up-table compression (the
  ``tflite_micro.compression`` package shipped with the ``tflite-micro`` wheel): each chosen
  filter becomes ``bits``-bit indices plus a value table, decoded at run time by a
  ``TFLM_DECODE`` op the compressor inserts before its consumer.

What a board needs to run a compressed model: a TFLM tree that has the DECODE kernel
(``tensorflow/lite/micro/kernels/decode.cc``; the DECODE-based format is recent, so use a
TFLM at least as new as the ``tflite-micro`` wheel that compressed the model: older trees
only know the earlier metadata format and reject these files), ``resolver.AddDecode()`` in
the op resolver (one more op slot), and, for trees that still guard it, building with
``USE_TFLM_COMPRESSION=1``. Decoded weights live in the arena (or in memory given with
``MicroInterpreter::SetDecompressionMemory``), so the arena grows by the largest decoded
tensors. The TFLM Python interpreter runs these models with reference kernels; optimised
kernels (CMSIS-NN) read weights in Prepare and should be checked on the target.
"""

from __future__ import annotations

import math

import numpy as np

from tinyspeech_tf.quantize.flatbuffer import WEIGHT_OPS, parse_flatbuffer

# Measured flatbuffer cost of compressing one tensor beyond its indices and tables: the
# TFLM_DECODE operator, its output and ancillary tensors and their buffers (about 115-165 B
# on TinySpeech-M). Tensors that would save less than this are left alone.
DECODE_OVERHEAD = 165


def weight_tensors(tflite_bytes: bytes) -> list[dict]:
    """The constant filter tensors of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ops.

    One entry per tensor: index, buffer, shape, bytes, quantization channels, and the ops
    that read it (``consumers``).
    """
    fb = parse_flatbuffer(tflite_bytes)
    found: dict[int, dict] = {}
    for i, op in enumerate(fb["ops"]):
        if op["op"] not in WEIGHT_OPS:
            continue
        k = WEIGHT_OPS[op["op"]][0]
        if len(op["inputs"]) <= k or op["inputs"][k] < 0:
            continue
        t = fb["tensors"][op["inputs"][k]]
        if not t["constant"]:
            continue
        entry = found.setdefault(t["index"], {
            "tensor": t["index"], "buffer": t["buffer"], "shape": t["shape"],
            "type": t["type"], "bytes": fb["buffers"][t["buffer"]],
            "channels": t["quant_channels"], "consumers": []})
        entry["consumers"].append({"op": i, "kind": op["op"]})
    return sorted(found.values(), key=lambda e: e["tensor"])


def weight_storage(tflite_bytes: bytes) -> dict:
    """How the filter weights are stored: tensors, distinct buffers and bytes, shared ones."""
    tensors = weight_tensors(tflite_bytes)
    buffers = {t["buffer"]: t["bytes"] for t in tensors}
    return {"weight_tensors": len(tensors), "weight_buffers": len(buffers),
            "weight_bytes": int(sum(buffers.values())),
            "weight_uses": sum(len(t["consumers"]) for t in tensors),
            "shared": [t for t in tensors if len(t["consumers"]) > 1]}


def zero_fraction(tflite_bytes: bytes) -> float:
    """Fraction of exact zeros over the stored int8 filter weights (pruning's footprint).

    Filters holding one value throughout are left out: they are constants of the graph (the
    depthwise global pool's averaging kernels), not weights pruning could have zeroed.
    """
    blob = bytearray(tflite_bytes)
    zeros = total = 0
    for t in weight_tensors(tflite_bytes):
        if t["type"] == "INT8":
            values = _buffer_array(blob, t)
            if values.size > 1 and np.all(values == values.flat[0]):
                continue
            zeros += int((values == 0).sum())
            total += values.size
    return zeros / max(1, total)


def _quantized_dimension(tflite_bytes: bytes) -> dict[int, int]:
    from tensorflow.lite.python import schema_py_generated as schema

    sub = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0).Subgraphs(0)
    out = {}
    for i in range(sub.TensorsLength()):
        q = sub.Tensors(i).Quantization()
        out[i] = int(q.QuantizedDimension()) if q is not None else 0
    return out


def _channels_view(values: np.ndarray, channels: int, axis: int) -> np.ndarray:
    """``values`` as [channels, -1] along the quantized axis (one row for per-tensor)."""
    if channels <= 1:
        return values.reshape(1, -1)
    return np.moveaxis(values, axis, 0).reshape(channels, -1)


def _kmeans_levels(values: np.ndarray, levels: int, iterations: int = 30) -> np.ndarray:
    """At most ``levels`` integer centres for int8 ``values`` (0 always one of them)."""
    unique = np.unique(values)
    if len(unique) <= levels:
        return unique.astype(np.int32)
    x = values.astype(np.float64)
    centres = np.quantile(x, np.linspace(0, 1, levels - 1))
    for _ in range(iterations):
        centres = np.unique(np.append(np.round(centres), 0.0))
        nearest = np.abs(x[:, None] - centres[None, :]).argmin(axis=1)
        moved = np.array([x[nearest == j].mean() if np.any(nearest == j) else centres[j]
                          for j in range(len(centres))])
        moved[centres == 0] = 0.0  # zero stays exact: pruned weights remain zero
        if np.allclose(moved, centres):
            break
        centres = moved
    return np.unique(np.append(np.round(centres), 0.0)).astype(np.int32)[:levels]


def _snap(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    nearest = np.abs(values.astype(np.int32)[:, None] - levels[None, :]).argmin(axis=1)
    return levels[nearest].astype(np.int8)


def distinct_values(tflite_bytes: bytes, tensor: int) -> int:
    """Largest number of distinct values in any quantization channel of ``tensor``."""
    t = next(t for t in weight_tensors(tflite_bytes) if t["tensor"] == tensor)
    return _distinct(bytearray(tflite_bytes), t, _quantized_dimension(tflite_bytes)[tensor])


def _distinct(blob: bytearray, t: dict, axis: int) -> int:
    rows = _channels_view(_buffer_array(blob, t), t["channels"], axis)
    return max(len(np.unique(r)) for r in rows)


def _buffer_array(blob: bytearray, t: dict) -> np.ndarray:
    """A writable int8 view of tensor ``t``'s buffer inside ``blob``, in the tensor's shape."""
    from tensorflow.lite.python import schema_py_generated as schema

    data = schema.Model.GetRootAsModel(blob, 0).Buffers(t["buffer"]).DataAsNumpy()
    return data.view(np.int8).reshape(t["shape"])


def worth_compressing(tflite_bytes: bytes, bits: int, min_saving: int = 0) -> list[int]:
    """Filters whose ``bits``-bit LUT form would save at least ``min_saving`` (and > 0) bytes."""
    return [t["tensor"] for t in weight_tensors(tflite_bytes)
            if t["type"] == "INT8" and _lut_saving(t, bits) >= max(1, min_saving)]


def cluster(tflite_bytes: bytes, bits: int,
            tensors: list[int] | None = None) -> tuple[bytes, list[dict]]:
    """Snap int8 filters (``tensors``, default all) to ``2**bits`` values per channel.

    Per channel when the tensor is quantized per channel (the decoder then keeps one value
    table per channel), else per tensor. Returns the new flatbuffer (same layout, weights
    rewritten in place) and, per tensor, how many distinct values it had and has.
    """
    if not 1 <= int(bits) <= 7:
        raise ValueError(f"bits must be 1..7 (8 would not compress int8), got {bits}")
    blob = bytearray(tflite_bytes)
    axes = _quantized_dimension(tflite_bytes)
    report = []
    for t in weight_tensors(tflite_bytes):
        if t["type"] != "INT8" or (tensors is not None and t["tensor"] not in tensors):
            continue
        values = _buffer_array(blob, t)
        axis = axes[t["tensor"]]
        rows = _channels_view(values.copy(), t["channels"], axis)
        before = max(len(np.unique(r)) for r in rows)
        snapped = np.stack([_snap(r, _kmeans_levels(r, 2 ** int(bits))) for r in rows])
        if t["channels"] > 1:
            moved_shape = (t["channels"], *np.delete(np.array(t["shape"]), axis))
            snapped = np.moveaxis(snapped.reshape(moved_shape), 0, axis)
        values[...] = snapped.reshape(values.shape)
        report.append({"tensor": t["tensor"], "shape": t["shape"], "bytes": t["bytes"],
                       "channels": max(1, t["channels"]), "distinct_before": int(before),
                       "distinct_after": int(max(len(np.unique(r)) for r in
                                                 _channels_view(values, t["channels"],
                                                                axis)))})
    return bytes(blob), report


def lut_saving(values: int, channels: int, bits: int) -> int:
    """Estimated bytes saved by storing an int8 filter of ``values`` weights (``channels``
    quantization channels) as ``bits``-bit indices plus value tables and a DECODE op."""
    table = max(1, channels) * 2 ** bits
    return values - math.ceil(values * bits / 8) - table - DECODE_OVERHEAD


def _lut_saving(t: dict, bits: int) -> int:
    return lut_saving(int(np.prod(t["shape"])), t["channels"], bits)


def lut_compress(tflite_bytes: bytes, bits: int,
                 min_saving: int = 0) -> tuple[bytes, list[dict]]:
    """TFLM look-up-table compression of every filter that fits in ``bits``-bit indices.

    A tensor is compressed when each of its quantization channels has at most ``2**bits``
    distinct values (run :func:`cluster` first) and the estimated saving, after the value
    tables and the DECODE op's own cost, is at least ``min_saving`` bytes. The table mode
    follows the tensor's quantization (per channel along its quantized dimension, or per
    tensor): TFLM's decoder takes the channel count from the quantization scales, so a
    mismatched mode would decode wrong weights silently. Returns the compressed flatbuffer
    and the tensors compressed.
    """
    from tflite_micro import compression
    from tflite_micro.tensorflow.lite.micro.compression import spec as lut_spec

    axes = _quantized_dimension(tflite_bytes)
    blob = bytearray(tflite_bytes)
    builder = compression.SpecBuilder()
    chosen = []
    for t in weight_tensors(tflite_bytes):
        if t["type"] != "INT8":
            continue
        axis = axes[t["tensor"]]
        if _distinct(blob, t, axis) > 2 ** bits:
            continue
        saving = _lut_saving(t, bits)
        if saving < min_saving or saving <= 0:
            continue
        mode = (lut_spec.PerChannel(axis=axis) if t["channels"] > 1 else lut_spec.PerTensor())
        builder.add_tensor(subgraph=0, tensor=t["tensor"]).with_lut(index_bitwidth=int(bits),
                                                                     mode=mode)
        chosen.append({"tensor": t["tensor"], "shape": t["shape"], "bytes": t["bytes"],
                       "mode": "per_channel" if t["channels"] > 1 else "per_tensor",
                       "estimated_saving": int(saving)})
    if not chosen:
        return bytes(tflite_bytes), []
    return bytes(compression.compress(bytes(tflite_bytes), builder.build())), chosen


# ----------------------------------------------------------------------------- command
