"""Low-rank factorisation of convs and dense layers, with factors optionally shared across layers.

A conv with a k x k kernel from Cin to Cout channels is a (k*k*Cin) x Cout weight matrix. Its
rank-r factorisation is a k x k conv from Cin to r channels (no bias, no activation) followed by a
1x1 conv from r to Cout (the original bias and activation): r * (k*k*Cin + Cout) weights instead
of k*k*Cin*Cout. A dense layer factorises the same way into two dense layers. Both halves are
stock Keras layers, so quantization-aware training gives each its own int8 range and TFLite
converts each to a CONV_2D or FULLY_CONNECTED, ops every TFLM build has.

Why offer it: on a microcontroller the flash a model needs is the budget, and small-footprint ASR
work shrinks models by factorising their projections and by sharing weights across layers (the
factors too). :class:`FactorBank` does the sharing: asked twice for a factor of the same shape,
it hands back the same Keras layer, so Keras shares its weights and the int8 flatbuffer stores
them once (see ``tinyspeech_tf.compress.weight_buffers``).

A layer is only factorised when that is a reduction: ``r < min(k*k*Cin, Cout)`` and the pair
has fewer weights than the layer; otherwise the full layer is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tinyspeech_tf._compat import keras


def factorises(rank: int, fan_in: int, fan_out: int) -> bool:
    """Whether a rank-``rank`` pair is smaller than the ``fan_in x fan_out`` weight matrix."""
    return 0 < rank < min(fan_in, fan_out) and rank * (fan_in + fan_out) < fan_in * fan_out


class Factorised:
    """Two layers applied in turn: ``up(down(x))``; a drop-in for one layer in a graph."""

    def __init__(self, down: keras.layers.Layer, up: keras.layers.Layer):
        self.down, self.up = down, up

    def __call__(self, x, **kwargs):
        return self.up(self.down(x))

    @property
    def layers(self) -> tuple[keras.layers.Layer, keras.layers.Layer]:
        return self.down, self.up


class FactorBank:
    """Makes factor layers; with ``share=True`` one layer per factor shape, reused.

    The shape key holds everything that makes two factors interchangeable (kind, kernel,
    strides, widths, bias, activation), so a shared factor is only ever reused where it fits.
    """

    def __init__(self, share: bool = False):
        self.share = bool(share)
        self._layers: dict[tuple, keras.layers.Layer] = {}

    def get(self, key: tuple, make: Callable[[], keras.layers.Layer]) -> keras.layers.Layer:
        if not self.share:
            return make()
        if key not in self._layers:
            self._layers[key] = make()
        return self._layers[key]

    def __len__(self) -> int:
        return len(self._layers)


def conv2d(in_channels: int, filters: int, kernel_size: int | Sequence[int] = 1, *,
           rank: int = 0, bank: FactorBank | None = None, strides=(1, 1),
           padding: str = "same", use_bias: bool = True, activation=None,
           bias_initializer="zeros", kernel_regularizer=None, name: str):
    """A ``Conv2D`` or, when ``rank`` makes it smaller, its rank-``rank`` :class:`Factorised` pair.

    ``in_channels`` is needed up front to decide (the layer is built before it is called).
    """
    kernel = ((int(kernel_size),) * 2 if isinstance(kernel_size, int)
              else tuple(int(k) for k in kernel_size))
    strides = (int(strides),) * 2 if isinstance(strides, int) else tuple(strides)
    fan_in = kernel[0] * kernel[1] * int(in_channels)
    if not factorises(int(rank), fan_in, int(filters)):
        return keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                   use_bias=use_bias, activation=activation,
                                   bias_initializer=bias_initializer,
                                   kernel_regularizer=kernel_regularizer, name=name)
    bank = FactorBank() if bank is None else bank
    act = keras.activations.serialize(keras.activations.get(activation))
    down = bank.get(
        ("conv_down", kernel, strides, padding, int(in_channels), int(rank)),
        lambda: keras.layers.Conv2D(rank, kernel, strides=strides, padding=padding,
                                    use_bias=False, kernel_regularizer=kernel_regularizer,
                                    name=f"{name}_down"))
    up = bank.get(
        ("conv_up", int(rank), int(filters), use_bias, str(act)),
        lambda: keras.layers.Conv2D(filters, 1, use_bias=use_bias, activation=activation,
                                    bias_initializer=bias_initializer,
                                    kernel_regularizer=kernel_regularizer, name=f"{name}_up"))
    return Factorised(down, up)


def dense(in_features: int, units: int, *, rank: int = 0, bank: FactorBank | None = None,
          activation=None, name: str):
    """A ``Dense`` or, when ``rank`` makes it smaller, its rank-``rank`` pair."""
    if not factorises(int(rank), int(in_features), int(units)):
        return keras.layers.Dense(units, activation=activation, name=name)
    bank = FactorBank() if bank is None else bank
    act = keras.activations.serialize(keras.activations.get(activation))
    down = bank.get(("dense_down", int(in_features), int(rank)),
                    lambda: keras.layers.Dense(rank, use_bias=False, name=f"{name}_down"))
    up = bank.get(("dense_up", int(rank), int(units), str(act)),
                  lambda: keras.layers.Dense(units, activation=activation, name=f"{name}_up"))
    return Factorised(down, up)
