"""What an architecture costs on a microcontroller once trained: the one measurement that
``tinyspeech zoo``, ``tinyspeech explore`` and ``tinyspeech bench`` share.

An architecture's int8 cost (flatbuffer bytes, TFLM arena, op set) is measured *before*
training, to choose a model or prune a search, so it must be what the trained model will
convert to. Converting the freshly built model gets that wrong:

- The converter stores identical constant tensors once. A fresh model's biases are all zero
  and its attention scales S all one, so equal-length ones share a buffer; training makes them
  all different, so fresh weights under-count both flash and arena. A few training steps are
  not enough either: S vectors a few steps away from one still quantize to identical int8.
- Training ships the quantization-aware (QAT) copy with the zoo's weight granularity
  (``zoo.PER_CHANNEL``), and tfmot's graph converts to a different flatbuffer than the float
  model's.

So :func:`int8_flatbuffer` converts what ``tinyspeech_tf.train`` converts: the QAT copy of the
model with distinct random weights (batch-norm variances positive), its weight ranges set by a
training-mode pass as a QAT step sets them, converted with the same settings. Calibration and
weights are random: their values change no size, op set or arena, only which constants are
equal.

One combination is avoided in the zoo because its cost depends on training itself: after a
per-tensor convolution followed by batch norm the converter quantizes the folded weights
afresh and, unless the input range QAT learnt lands where calibration puts it, adds a
requantization (DEQUANTIZE + QUANTIZE, float work on the board) on the model input. Every zoo
model with batch norm is quantized per channel. ``tests/test_zoo.py`` checks the figures
against models trained by ``train.train``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CALIBRATION_EXAMPLES = 32


def per_channel(name: str, spec: dict | None = None) -> bool:
    """The weight granularity training uses for zoo model ``name`` or for ``spec``."""
    from tinyspeech_tf import zoo

    if spec is not None and spec.get("per_channel") is not None:
        return bool(spec["per_channel"])
    return zoo.PER_CHANNEL.get(name, True)


def trained_like(model, seed: int = 0) -> None:
    """Overwrite ``model``'s weights with distinct random values, as a trained model's are.

    No two constant tensors are then equal (fresh zero biases and unit scales would be stored
    once), and batch-norm moving variances are positive, as batch norm needs them to be.
    """
    rng = np.random.default_rng(seed)
    model.set_weights([
        (np.abs(rng.standard_normal(w.shape)) + 0.5 if "moving_variance" in v.name
         else 0.1 * rng.standard_normal(w.shape)).astype(w.dtype)
        for v, w in zip(model.weights, model.get_weights(), strict=True)])


def int8_flatbuffer(model, per_channel: bool, *, qat: bool = True, seed: int = 0,
                    allowed_ops: Iterable[str] | None = None) -> bytes:
    """The int8 flatbuffer a trained model of ``model``'s architecture converts to.

    ``qat``: training has QAT epochs (the default recipe); without them training ships the
    post-training conversion of the float model, and so does this. ``model``'s weights are
    overwritten (:func:`trained_like`). ``allowed_ops`` is checked as
    ``quantize.convert_int8`` checks it (None: not checked).
    """
    from tinyspeech_tf import quantize

    trained_like(model, seed)
    calib = quantize.random_representative(tuple(model.input_shape[1:]),
                                           count=CALIBRATION_EXAMPLES, seed=seed)
    if qat:
        from tinyspeech_tf.quantize import qat as qat_mod

        qat_model = qat_mod.quantize_model(model, per_channel=per_channel)
        qat_model(calib, training=True)  # weight ranges from the weights (tfmot starts at +-6)
        qat_mod.init_ranges(qat_model, model, calib)
        model = qat_model
    return quantize.convert_int8(model, calib, allowed_ops=allowed_ops, per_channel=per_channel)


def measure(model, per_channel: bool, *, qat: bool = True, seed: int = 0,
            allowed_ops: Iterable[str] | None = None) -> tuple[dict, bytes]:
    """Costs of ``model``'s architecture once trained, and the flatbuffer they were read from.

    The costs are ``params`` (Keras count, batch norm included), ``macs``, ``tflite_bytes``,
    ``arena_bytes`` (minimum TFLM arena on this host), ``ops`` and ``cmsis_nn_instructions``
    (estimated per inference on a Cortex-M4, :mod:`tinyspeech_tf.board_cost`). Overwrites
    ``model``'s weights.
    """
    from tinyspeech_tf import board_cost, quantize, tflm
    from tinyspeech_tf.zoo import profile

    costs = {"params": int(model.count_params()), "macs": int(profile.total_macs(model))}
    tflite = int8_flatbuffer(model, per_channel, qat=qat, seed=seed, allowed_ops=allowed_ops)
    costs.update(tflite_bytes=len(tflite), arena_bytes=tflm.arena_bytes(tflite),
                 ops=quantize.op_set(tflite),
                 cmsis_nn_instructions=board_cost.estimate(tflite)["instructions"])
    return costs, tflite


def measure_zoo(name: str, **kwargs) -> tuple[dict, bytes]:
    """:func:`measure` of zoo model ``name`` (``kwargs`` go to its builder) as the default
    recipe ships it: QAT, the zoo's weight granularity, TFLM's op set checked."""
    from tinyspeech_tf import quantize, zoo

    return measure(zoo.get(name, **kwargs), per_channel(name), allowed_ops=quantize.TFLM_OPS)


__all__ = ["int8_flatbuffer", "measure", "measure_zoo", "per_channel", "trained_like"]
