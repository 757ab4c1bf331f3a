"""tiny_conv, the model of TFLM's micro_speech example: one strided conv and a dense layer.

The smallest sensible baseline: on micro_speech's 49x40 spectrogram it is about 16 KB int8;
here it takes the same 49x10 MFCC as the rest of the zoo by default.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyspeech_tf._compat import keras


def tiny_conv(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12, *,
              filters: int = 8, kernel: Sequence[int] = (10, 8), strides: Sequence[int] = (2, 2),
              dropout: float = 0.5, name: str = "tiny_conv") -> keras.Model:
    """Build micro_speech's tiny_conv: conv 8 filters 10x8 stride 2, ReLU, dropout, dense."""
    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    x = keras.layers.Conv2D(filters, tuple(kernel), strides=tuple(strides), padding="same",
                            activation="relu", name="conv")(inputs)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)
