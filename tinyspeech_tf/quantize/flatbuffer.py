"""Reading int8 TFLite flatbuffers: tensors, buffers, operators, and where the bytes go.

One parser (TensorFlow's generated schema, no interpreter) for everything that measures a
flatbuffer: ``tinyspeech bench``'s composition table, the peer models' parameter counts and
``tinyspeech_tf.compress``'s accounting of stored weights.
"""

from __future__ import annotations

import numpy as np

ELEMENT_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "BOOL": 1,
                  "INT16": 2, "INT8": 1, "FLOAT64": 8, "UINT32": 4, "UINT16": 2, "UINT64": 8}
WEIGHT_OPS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2),
              "TRANSPOSE_CONV": (1, 3)}  # op -> (weights input, bias input)


def parse_flatbuffer(tflite_bytes: bytes) -> dict:
    """Tensors, buffers and operators of subgraph 0, via TensorFlow's generated schema."""
    from tensorflow.lite.python import schema_py_generated as schema

    from tinyspeech_tf.quantize import _builtin_names

    model = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0)
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    buffers = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        # Buffers over 2 GB live after the flatbuffer (offset/size); none here, but count them.
        buffers.append(int(buf.Size()) if buf.Offset() > 1 else int(buf.DataLength()))
    sub = model.Subgraphs(0)
    tensors = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        q = t.Quantization()
        qbytes = 0 if q is None else (4 * q.ScaleLength() + 8 * q.ZeroPointLength()
                                      + 4 * q.MinLength() + 4 * q.MaxLength())
        shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
        dtype = types.get(t.Type(), str(t.Type()))
        tensors.append({"index": i, "type": dtype, "shape": shape, "buffer": int(t.Buffer()),
                        "constant": buffers[t.Buffer()] > 0 if t.Buffer() < len(buffers) else False,
                        "variable": bool(t.IsVariable()),
                        "bytes": int(np.prod(shape, dtype=np.int64)) * ELEMENT_BYTES.get(dtype, 1),
                        "quant_bytes": qbytes,
                        "quant_channels": 0 if q is None else int(q.ScaleLength())})
    names = _builtin_names()
    ops = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        ops.append({"op": names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"),
                    "inputs": [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else [],
                    "outputs": [int(x) for x in op.OutputsAsNumpy()]
                    if op.OutputsLength() else []})
    return {"buffers": buffers, "tensors": tensors, "ops": ops,
            "inputs": [int(x) for x in sub.InputsAsNumpy()],
            "outputs": [int(x) for x in sub.OutputsAsNumpy()]}


def bias_buffers(fb: dict) -> set[int]:
    out = set()
    for op in fb["ops"]:
        if op["op"] in WEIGHT_OPS:
            b = WEIGHT_OPS[op["op"]][1]
            if len(op["inputs"]) > b and op["inputs"][b] >= 0:
                out.add(fb["tensors"][op["inputs"][b]]["buffer"])
    return out


def flatbuffer_params(tflite_bytes: bytes) -> int:
    """Weights + biases of CONV/DEPTHWISE/FC/TRANSPOSE_CONV (batch norm folded): peer params."""
    fb = parse_flatbuffer(tflite_bytes)
    seen, total = set(), 0
    for op in fb["ops"]:
        for k in WEIGHT_OPS.get(op["op"], ()):
            if len(op["inputs"]) > k and op["inputs"][k] >= 0:
                t = fb["tensors"][op["inputs"][k]]
                if t["constant"] and t["buffer"] not in seen:
                    seen.add(t["buffer"])
                    total += int(np.prod(t["shape"], dtype=np.int64))
    return total


def composition(tflite_bytes: bytes) -> dict:
    """Where the flatbuffer's bytes go: weights, biases, other constants, quantization, rest.

    Payload bytes of each constant buffer are counted once (buffers shared by tensors once),
    classified by the tensor that uses it: int8 -> weights, int32 bias input of a CONV /
    DEPTHWISE / FC -> biases, anything else (RESHAPE shapes, MEAN axes, resize sizes) ->
    other constants. Quantization = every tensor's scale (float32), zero point (int64) and
    min/max vectors. The rest is graph structure: tensor and operator tables, opcodes, vector
    length prefixes, alignment padding, and any metadata.
    """
    fb = parse_flatbuffer(tflite_bytes)
    biases = bias_buffers(fb)
    kind_of: dict[int, str] = {}
    elements = {"weights": 0, "biases": 0, "other_constants": 0}
    for t in fb["tensors"]:
        if not t["constant"] or t["buffer"] in kind_of:
            continue
        if t["type"] in ("INT8", "UINT8", "INT4"):
            kind = "weights"
        elif t["type"] == "INT32" and t["buffer"] in biases:
            kind = "biases"
        else:
            kind = "other_constants"
        kind_of[t["buffer"]] = kind
        elements[kind] += int(np.prod(t["shape"], dtype=np.int64))
    parts = {"weights": 0, "biases": 0, "other_constants": 0}
    for buf, kind in kind_of.items():
        parts[kind] += fb["buffers"][buf]
    parts["quantization"] = sum(t["quant_bytes"] for t in fb["tensors"])
    parts["rest"] = len(tflite_bytes) - sum(parts.values())
    if parts["rest"] < 0:
        raise RuntimeError("flatbuffer composition exceeds the file size; parsing is wrong")
    return {"total_bytes": len(tflite_bytes), "bytes": parts, "elements": elements,
            "tensors": len(fb["tensors"]), "operators": len(fb["ops"]),
            "quantized_tensors": sum(1 for t in fb["tensors"] if t["quant_channels"]),
            "quant_channels": sum(t["quant_channels"] for t in fb["tensors"])}
