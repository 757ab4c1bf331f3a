"""Global average pooling as depthwise convs: the mean in float, one scale per constant kernel
in int8, no MEAN op, and QAT through it."""

import numpy as np
import pytest

from tinyspeech_tf import quantize, tflm
from tinyspeech_tf._compat import keras
from tinyspeech_tf.layers import AxisMeanDepthwise, global_average_depthwise
from tinyspeech_tf.quantize import qat


def _pool_model(shape=(25, 5, 6)):
    inputs = keras.Input(shape=shape)
    x = keras.layers.Conv2D(shape[-1], 3, padding="same", activation="relu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(global_average_depthwise(x))
    return keras.Model(inputs, outputs)


def test_is_the_global_mean_in_float():
    x = np.random.default_rng(0).normal(size=(3, 25, 5, 7)).astype(np.float32)
    inputs = keras.Input(shape=x.shape[1:])
    pooled = keras.Model(inputs, global_average_depthwise(inputs)).predict(x, verbose=0)
    np.testing.assert_allclose(pooled, x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert AxisMeanDepthwise(2)(x).shape == (3, 25, 1, 7)


def test_adds_no_weights_and_rejects_a_bad_axis():
    inputs = keras.Input(shape=(4, 4, 2))
    assert keras.Model(inputs, global_average_depthwise(inputs)).count_params() == 0
    with pytest.raises(ValueError, match="axis must be 1"):
        AxisMeanDepthwise(3)
    assert AxisMeanDepthwise.from_config(AxisMeanDepthwise(2).get_config()).axis == 2


@pytest.mark.parametrize("use_qat", [False, True])
def test_int8_graph_has_no_mean_and_one_scale_per_kernel(use_qat):
    """Depthwise convs instead of MEAN; each constant kernel quantized per tensor (exact), and
    TFLM agrees with the float model's classes."""
    keras.utils.set_random_seed(3)
    model = _pool_model()
    rep = np.random.default_rng(1).normal(size=(32, 25, 5, 6)).astype(np.float32)
    converted = model
    if use_qat:
        converted = qat.quantize_model(model, per_channel=False)
        qat.init_ranges(converted, model, rep)
    tflite = quantize.convert_int8(converted, rep, per_channel=False)
    ops = quantize.op_set(tflite)
    assert "MEAN" not in ops and "DEPTHWISE_CONV_2D" in ops

    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=tflite)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    filters = [details[op["inputs"][1]] for op in interp._get_ops_details()
               if op["op_name"] == "DEPTHWISE_CONV_2D"]
    assert sorted(tuple(f["shape"][1:3]) for f in filters) == [(1, 5), (25, 1)]
    for f in filters:
        assert f["quantization_parameters"]["scales"].size == 1
        assert np.all(interp.get_tensor(f["index"]) == 127)
    io = quantize.io_quantization(tflite)
    x = rep[:8]
    q = np.clip(np.round(x / io["input_scale"]) + io["input_zero_point"], -128, 127)
    micro = tflm.run_tflm(tflite, q.astype(np.int8))
    agree = np.mean(micro.reshape(8, -1).argmax(1) == model.predict(x, verbose=0).argmax(1))
    assert agree >= 0.75

