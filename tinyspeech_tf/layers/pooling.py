"""Global average pooling as depthwise convolutions with constant weights.

Why not the stock layers: Keras ``GlobalAveragePooling2D`` converts to MEAN, which CMSIS-NN has
no kernel for (on a Cortex-M4 build it was a fifth of TinySpeech-M's instructions), and int8
``AVERAGE_POOL_2D`` must keep its input's scale, so averages of a few units under activations
of hundreds keep a handful of int8 levels. A DEPTHWISE_CONV_2D whose kernel spans an axis with
every weight 1/length computes the average along it, runs on CMSIS-NN's depthwise kernel and
requantizes to an output range of its own. Its weight quantizes exactly (one value per tensor:
127 times a scale of 1/(127*length)), so int8 adds nothing but the output's rounding.

Two axis kernels rather than one H x W kernel: the constant kernel is stored in the
flatbuffer once per channel and position, so a whole-map kernel costs H*W*C bytes (3.5 KB for
TinySpeech-M's 25x5x28 head, 21 KB for TinySpeech-X) where two axis kernels cost (H+W)*C; and
CMSIS-NN's depthwise kernel on a Cortex-M4 takes a scratch buffer of 2 bytes per kernel
weight from the arena (7 KB for one 25x5x28 kernel). The mean over width (the few
coefficients) comes first, over time second: the scratch of the first op is planned beside
the whole head map, so it is the short kernel's (1x5: 280 B for M, where 25x1 would take
1.4 KB); the long kernel then runs on a map five times smaller. The
price is a second op: on this host's TFLM about 0.9 KB more arena than a MEAN (each
depthwise op keeps per-channel requantization arrays), measured in reports/m_graph.md.

The kernels are constants of the graph, not Keras weights: a model's parameter count is its
learnt weights, and weights trained with a MEAN pool load into a model with this one.
"""

from __future__ import annotations

from tinyspeech_tf._compat import keras, tf


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
class AxisMeanDepthwise(keras.layers.Layer):
    """The mean over one spatial ``axis`` (1: height, 2: width) of ``(batch, H, W, C)``,
    keeping it as a dimension of size 1, as one DEPTHWISE_CONV_2D with a constant kernel.

    Needs the axis length and channels to be static (a TFLM model has them).
    """

    def __init__(self, axis: int = 1, **kwargs):
        super().__init__(**kwargs)
        if axis not in (1, 2):
            raise ValueError(f"axis must be 1 (height) or 2 (width), got {axis!r}")
        self.axis = int(axis)

    def build(self, input_shape):
        length, channels = input_shape[self.axis], input_shape[3]
        if length is None or channels is None:
            raise ValueError(f"{self.name}: needs a static axis {self.axis} and channels, got "
                             f"{tuple(input_shape)}")
        shape = (int(length), 1) if self.axis == 1 else (1, int(length))
        self._length = int(length)
        self._kernel_shape = (*shape, int(channels), 1)
        super().build(input_shape)

    def call(self, inputs):
        # The kernel passes through a fake-quant whose int8 grid holds 1/length exactly
        # (symmetric, narrow range: 127 steps of 1/(127*length)), so float maths is unchanged
        # and the converter stores one scale for it; left to itself the converter quantizes a
        # constant depthwise kernel per channel, a scale and zero point per channel for one
        # shared value.
        value = 1.0 / self._length
        kernel = tf.quantization.fake_quant_with_min_max_args(
            tf.fill(self._kernel_shape, tf.constant(value, inputs.dtype)), min=-value,
            max=value, num_bits=8, narrow_range=True)
        return tf.nn.depthwise_conv2d(inputs, kernel,
                                      strides=(1, 1, 1, 1), padding="VALID")

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self.axis] = 1
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def global_average_depthwise(x, name: str = "gap"):
    """``(batch, H, W, C) -> (batch, C)``: the mean over W, then H, then a flatten (RESHAPE).

    Layers ``{name}_height`` and ``{name}_width`` each get their own int8 range under QAT.
    """
    x = AxisMeanDepthwise(2, name=f"{name}_width")(x)
    x = AxisMeanDepthwise(1, name=f"{name}_height")(x)
    return keras.layers.Flatten(name=name)(x)
