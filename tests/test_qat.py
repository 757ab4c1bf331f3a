"""Quantization-aware training: every condenser tensor gets a range, conversion stays compact."""

import numpy as np
import pytest

from tinyspeech_tf import quantize, tflm, zoo
from tinyspeech_tf._compat import keras
from tinyspeech_tf.features import quantize as quantize_features
from tinyspeech_tf.quantize import qat


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, 49, 10, 1)) * 8).astype(np.float32)
    y = rng.integers(0, 12, n)
    return x, y


def _fit(model, x, y, lr):
    model.compile(keras.optimizers.SGD(lr, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)


@pytest.fixture(scope="module", params=[
    ("tinyspeech_m", {}, False),
    ("tinyspeech_m", {"f_mode": "multiply"}, False),
    ("tinyspeech_m", {"gate": "hard_sigmoid"}, False),
    ("tinyspeech_z", {"use_batch_norm": True}, True),
], ids=["m", "m-multiply", "m-hard-gate", "z-batchnorm"])
def qat_case(request):
    name, kwargs, per_channel = request.param
    keras.utils.set_random_seed(1)
    x, y = _data()
    model = zoo.get(name, **kwargs)
    _fit(model, x, y, 0.01)
    q = qat.quantize_model(model, per_channel=per_channel)
    assert qat.init_ranges(q, model, x) >= 3 * 4 + 4  # input, stem, head, logits, condensers
    _fit(q, x, y, 0.001)
    ptq = quantize.convert_int8(model, x[:32], per_channel=per_channel)
    tflite_bytes = quantize.convert_int8(q, x[:32], per_channel=per_channel)
    return name, q, ptq, tflite_bytes, x


def test_every_condenser_output_has_a_trained_range(qat_case):
    _, q, *_ = qat_case
    names = {v.name.split("/")[0] for v in q.variables if v.name.endswith("_max:0")}
    for i in (1, 2, 3):
        for step in ("scale", "attend", "embed1", "embed2"):
            assert f"quant_condenser{i}_{step}" in names, (step, sorted(names))


def test_qat_model_converts_without_requantize_ops(qat_case):
    name, _, ptq, tflite_bytes, _ = qat_case
    ops = quantize.op_set(tflite_bytes)
    assert set(ops) <= quantize.TINYSPEECH_OPS, ops
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops
    # The graph of post-training quantization: QAT adds no tensors or quantization params.
    assert len(tflite_bytes) <= len(ptq) + 64, (len(tflite_bytes), len(ptq))


def test_int8_agrees_with_the_fake_quant_model(qat_case):
    """The int8 model computes what QAT trained: scores within a few LSB of the Keras model
    (a missing or wrong range, such as tfmot's default [-6, 6], puts them tenths apart)."""
    _, q, _, tflite_bytes, x = qat_case
    io = quantize.io_quantization(tflite_bytes)
    xq = quantize_features(x[:24], io["input_scale"], io["input_zero_point"])
    micro = tflm.run_tflm(tflite_bytes, xq).astype(np.float32)
    scores = (micro - io["output_zero_point"]) * io["output_scale"]
    keras_scores = q.predict(x[:24], verbose=0)
    # Batch norm is folded differently by tfmot and by the converter: allow a few LSB more.
    assert np.abs(scores - keras_scores).max() <= 16 * io["output_scale"]


def test_tflm_matches_reference_kernels(qat_case):
    """TFLM equals tf.lite's reference kernels op by op, except the known 1-LSB roundings."""
    _, _, _, tflite_bytes, _ = qat_case
    x = np.random.default_rng(7).integers(-128, 128, (12, 49, 10, 1)).astype(np.int8)
    for divergence in tflm.first_divergences(tflite_bytes, x):
        assert divergence["op"] in tflm.KNOWN_DIVERGENCES and divergence["max_lsb"] == 1, \
            divergence


def test_initial_ranges_are_the_float_model_ranges():
    """tfmot starts ranges at [-6, 6] (input [0, 0]); TinySpeech-M's activations and MFCC input
    are far larger, so QAT must start from the float model's measured ranges instead."""
    keras.utils.set_random_seed(2)
    x, y = _data(seed=3)
    x = x * 4  # MFCC-like magnitudes, well beyond [-6, 6]
    model = zoo.get("tinyspeech_m")
    _fit(model, x, y, 0.001)
    expected = model.predict(x, verbose=0)
    q = qat.quantize_model(model, per_channel=False)
    clipped = np.abs(q.predict(x, verbose=0) - expected).mean()
    assert qat.init_ranges(q, model, x) >= 16
    ranges = {v.name.split(":")[0]: float(v.numpy()) for v in q.non_trainable_variables}
    # Keras numbers the input quantizer quantize_layer_N when other QAT models exist.
    input_range = {k.rsplit("_", 1)[-1]: v for k, v in ranges.items()
                   if k.startswith("quantize_layer")}
    assert input_range["min"] == pytest.approx(min(0, x.min()))
    assert input_range["max"] == pytest.approx(max(0, x.max()))
    probe = keras.Model(model.inputs, [model.get_layer(n).output
                                       for n in ("stem", "condenser2_attend", "head")])
    for name, out in zip(("stem", "condenser2_attend", "head"), probe.predict(x, verbose=0),
                         strict=True):
        key = "post_activation" if name in ("stem", "head") else "output"
        assert ranges[f"quant_{name}/{key}_max"] == pytest.approx(float(out.max()), rel=1e-5)
        assert out.max() > 6  # the default range would have clipped it
    calibrated = np.abs(q.predict(x, verbose=0) - expected).mean()
    assert calibrated < clipped, (calibrated, clipped)


def test_single_layer_condenser_is_refused():
    from tinyspeech_tf.layers import AttentionCondenser

    inputs = keras.Input((25, 5, 4))
    model = keras.Model(inputs, AttentionCondenser((4, 4))(inputs))
    with pytest.raises(ValueError, match="attention_condenser"):
        qat.quantize_model(model)
