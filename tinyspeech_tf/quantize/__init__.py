"""Full-integer int8 conversion and the TFLM op check.

A model is only deployable if every op in its flatbuffer has a TFLM kernel; finding that out
on the board ("Didn't find op for builtin opcode") costs a flash cycle, so conversion checks
the op set against TFLM's builtin list and names any op outside it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from tinyspeech_tf.errors import UserError

# Builtin ops with a kernel in TensorFlow Lite for Microcontrollers (MicroMutableOpResolver).
TFLM_OPS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND
BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM DEPTH_TO_SPACE
DEPTHWISE_CONV_2D DEQUANTIZE DIV ELU EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV
FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION
L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX
MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE
READ_VARIABLE REDUCE_MAX RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2
ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT
SQUARE SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split())

# The ops an attention condenser may lower to, and the classifier around it: the contract of
# the layer (see tinyspeech_tf.layers.attention_condenser).
CONDENSER_OPS = frozenset({"MAX_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                           "RESIZE_NEAREST_NEIGHBOR", "LOGISTIC", "MUL", "ADD",
                           "STRIDED_SLICE", "PAD"})
TINYSPEECH_OPS = CONDENSER_OPS | {"MEAN", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"}

_RESOLVER_PARTS = {"2D": "2D", "ND": "Nd", "V2": "V2", "N": "N", "CUMSUM": "CumSum",
                   "MATMUL": "MatMul", "LSTM": "LSTM", "PADV2": "PadV2"}


def resolver_method(op: str) -> str:
    """Name of the ``MicroMutableOpResolver`` method that registers builtin ``op``.

    E.g. CONV_2D -> AddConv2D, SPACE_TO_BATCH_ND -> AddSpaceToBatchNd.
    """
    parts = [_RESOLVER_PARTS.get(p, p.capitalize()) for p in op.split("_")]
    return "Add" + "".join(parts)


def _builtin_names() -> dict[int, str]:
    from tensorflow.lite.python import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def op_set(tflite_bytes: bytes) -> list[str]:
    """Builtin op names used by a .tflite flatbuffer, sorted (custom ops as ``CUSTOM:<name>``)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0)
    names = _builtin_names()
    used = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Schema v3a: codes above 127 live in builtin_code, older ones in the deprecated byte.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{code.CustomCode().decode()}"
        used.add(name)
    return sorted(used)


def op_count(tflite_bytes: bytes) -> int:
    """Operators in the main subgraph: what TFLM allocates a node (and its bookkeeping) for
    and invokes one by one."""
    from tensorflow.lite.python import schema_py_generated as schema

    return int(schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0).Subgraphs(0)
               .OperatorsLength())


def check_ops(tflite_bytes: bytes, allowed: Iterable[str] = TFLM_OPS,
              what: str = "model") -> list[str]:
    """Return the op set, or raise UserError naming every op outside ``allowed``."""
    ops = op_set(tflite_bytes)
    allowed = set(allowed)
    bad = [op for op in ops if op not in allowed]
    if bad:
        raise UserError(f"{what} uses ops outside the allowed set: {', '.join(bad)}; change "
                        "the layers that produce them (e.g. use a resize instead of "
                        "UpSampling2D) or register them in your TFLM build")
    return ops


RepresentativeData = np.ndarray | Callable[[], Iterable[Sequence[np.ndarray]]]


def random_representative(input_shape: Sequence[int], count: int = 64, scale: float = 10.0,
                          seed: int = 0) -> np.ndarray:
    """Random inputs for calibration when no data is at hand (tests, op-set and size reports).

    The scale roughly matches MFCC values so ranges are plausible; real deployments calibrate
    on real features instead.
    """
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((count, *input_shape)) * scale).astype(np.float32)


def strip_for_microcontrollers(tflite_bytes: bytes) -> bytes:
    """Drop what TFLM never reads: tensor and subgraph names, signatures, metadata buffers.

    On a 4.7K-parameter model these strings are about 15% of the flatbuffer, i.e. flash
    spent on debugging aids; ``op_set`` and the interpreters work the same without them.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    flatbuffer_utils.strip_strings(model)
    model.metadata = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def convert_int8(model, representative: RepresentativeData, *,
                 allowed_ops: Iterable[str] | None = TFLM_OPS, strip: bool = True,
                 per_channel: bool | None = None) -> bytes:
    """Convert a Keras model to full-integer int8 TFLite (int8 input and output).

    Args:
        model: a Keras model (float, or QAT-annotated from tensorflow-model-optimization).
        representative: calibration inputs, an array [N, ...] (one example per row) or a
            generator function yielding ``[batch_of_one]`` lists as TFLite expects.
        allowed_ops: op allow-list checked after conversion (None to skip the check).
        strip: remove names, signatures and metadata (see ``strip_for_microcontrollers``).
        per_channel: per-channel weight scales (TFLite's default) or one scale per tensor;
            None takes the zoo's choice for the model's name (``zoo.PER_CHANNEL``).
    """
    from tinyspeech_tf._compat import tf

    if isinstance(representative, np.ndarray):
        samples = representative.astype(np.float32)

        def representative_fn():
            for row in samples:
                yield [row[None, ...]]
    else:
        representative_fn = representative

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_fn
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if per_channel is None:
        from tinyspeech_tf.zoo import PER_CHANNEL

        per_channel = PER_CHANNEL.get(model.name, True)
    if not per_channel:
        converter._experimental_disable_per_channel = True
    with warnings.catch_warnings():
        # TFLite warns that int8 inputs come without statistics: they are quantized with the
        # model's own input scale by design, and the notice would garble one-line CLI errors.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        tflite_bytes = bytes(converter.convert())
    if strip:
        tflite_bytes = strip_for_microcontrollers(tflite_bytes)
    if allowed_ops is not None:
        check_ops(tflite_bytes, allowed_ops, what=model.name)
    return tflite_bytes


def io_quantization(tflite_bytes: bytes) -> dict:
    """Input/output shapes and (scale, zero point) of an int8 model, for feeding and headers.

    Read from the flatbuffer itself, not through an interpreter, so it also works for models
    only TFLM can run (e.g. LUT-compressed ones with TFLM_DECODE ops).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    sub = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0).Subgraphs(0)

    def describe(index: int) -> tuple[list[int], float, int]:
        t = sub.Tensors(index)
        q = t.Quantization()
        scale = float(q.Scale(0)) if q is not None and q.ScaleLength() else 0.0
        zero = int(q.ZeroPoint(0)) if q is not None and q.ZeroPointLength() else 0
        return [int(d) for d in t.ShapeAsNumpy()], scale, zero

    in_shape, in_scale, in_zero = describe(int(sub.Inputs(0)))
    out_shape, out_scale, out_zero = describe(int(sub.Outputs(0)))
    return {
        "input_shape": in_shape, "input_scale": in_scale, "input_zero_point": in_zero,
        "output_shape": out_shape, "output_scale": out_scale, "output_zero_point": out_zero,
    }
