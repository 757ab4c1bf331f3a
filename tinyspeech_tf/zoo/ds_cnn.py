"""DS-CNN, the MLPerf Tiny keyword-spotting reference (Zhang et al., "Hello Edge", 2017).

Rebuilt here so it trains through exactly the same recipe and front-end as TinySpeech: a 10x4
conv of 64 channels with stride 2, four depthwise-separable blocks of 64, average pool, dense.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyspeech_tf._compat import keras


def ds_cnn(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12, *,
           filters: int = 64, blocks: int = 4, weight_decay: float = 1e-4,
           dropout: tuple[float, float] = (0.2, 0.4), name: str = "ds_cnn") -> keras.Model:
    """Build the MLPerf Tiny DS-CNN (about 25K parameters at 12 classes)."""
    reg = keras.regularizers.l2(weight_decay) if weight_decay else None

    def bn_relu(x, block_name):
        x = keras.layers.BatchNormalization(name=f"{block_name}_bn")(x)
        return keras.layers.ReLU(name=f"{block_name}_relu")(x)

    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    x = keras.layers.Conv2D(filters, (10, 4), strides=(2, 2), padding="same",
                            kernel_regularizer=reg, name="conv1")(inputs)
    x = bn_relu(x, "conv1")
    x = keras.layers.Dropout(dropout[0], name="dropout1")(x)
    for i in range(1, blocks + 1):
        x = keras.layers.DepthwiseConv2D((3, 3), padding="same", depthwise_regularizer=reg,
                                         name=f"dw{i}")(x)
        x = bn_relu(x, f"dw{i}")
        x = keras.layers.Conv2D(filters, (1, 1), padding="same", kernel_regularizer=reg,
                                name=f"pw{i}")(x)
        x = bn_relu(x, f"pw{i}")
    x = keras.layers.Dropout(dropout[1], name="dropout2")(x)
    x = keras.layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="gap")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


# Scaled DS-CNNs as arguments of :func:`ds_cnn` (what their builders pass).
PRESETS: dict[str, dict] = {"ds_cnn_m": {"filters": 27, "blocks": 3}}


def ds_cnn_m(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
             **kwargs) -> keras.Model:
    """DS-CNN scaled to TinySpeech-M's footprint (27 filters, 3 depthwise-separable blocks,
    int8 per channel): its flatbuffer and TFLM arena are no larger than M's (``tinyspeech zoo``
    measures both), so it is the plain-convolution baseline at equal bytes.

    Per channel, not per tensor like M: with batch norm folded into per-tensor weights, QAT's
    learnt input range can make the converter put a DEQUANTIZE + QUANTIZE pair (float work on
    the board, and more bytes and arena) in front of the first conv, depending on the run.
    """
    return ds_cnn(input_shape, num_classes, **{**PRESETS["ds_cnn_m"], "name": "ds_cnn_m",
                                               **kwargs})
