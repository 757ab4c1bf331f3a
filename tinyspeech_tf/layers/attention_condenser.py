"""The attention condenser of TinySpeech (Wong et al., 2020), built from TFLM builtin ops only.

An attention condenser computes selective attention cheaply by working on a condensed copy of
its input:

    Q = C(V)            condensation: max-pool keeps the strongest activations
    K = E(Q)            embedding: two small convs (or depthwise + pointwise) with ReLU
    A = X(K)            expansion: 1x1 projection back to V's channels, sigmoid, nearest resize
    V' = F(V, A, S)     selective attention with a learned per-channel scale S

Two readings of F appear in the literature: ``"multiply"`` (V' = V * A * S, the paper's
formula, where V' -> A-weighted V as S varies) and ``"residual"`` (V' = V + V * A * S, which
starts as identity and is easier to train deep). Both are supported.

Deployment choices (why the layer looks the way it does):

- S is applied to A at the condensed resolution, *before* the resize. Nearest-neighbour resize
  only copies values and S is per channel, so ``resize(A) * S == resize(A * S)``; doing it first
  costs (H/2)(W/2)C instead of HWC multiplies and one fewer full-size tensor in the arena.
- ``fuse_residual``: the residual form V + V*A*S is the same function as V * (1 + A*S), so
  the 1 can be added at the condensed resolution too (``ChannelScale``'s ``offset``), leaving
  one MUL at V's resolution instead of a MUL and an ADD, and one full-size tensor fewer.
- S is a per-channel weight vector multiplied in, which converts to one MUL by a 12-byte int8
  constant; a bias-free 1x1 depthwise conv would cost a zero int32 bias and per-channel
  quantization parameters in the flatbuffer for the same arithmetic.
- ``scale_op="depthwise"``: A * S (+ 1) as a 1x1 depthwise conv whose kernel is S and bias
  the 1 (:class:`ChannelScale`): one DEPTHWISE_CONV_2D, which CMSIS-NN accelerates, instead
  of a MUL and an ADD, which it runs element by element. Same function.
- ``gate="hard_sigmoid"``: A = relu6(z + 3) / 6 instead of sigmoid(z), a different function
  (MobileNetV3's). The relu6 is fused into the projection conv and the 1/6 folded into S, so
  the gate costs no op; int8 LOGISTIC has no CMSIS-NN kernel, and TFLM's fixed-point one
  costs hundreds of instructions per value on a Cortex-M4.
- Expansion resizes straight to V's exact size with ``tf.image.resize(..., "nearest")``, which
  converts to one RESIZE_NEAREST_NEIGHBOR; odd sizes (49 frames, 5 coefficients) need no crop.
  Keras ``UpSampling2D`` can instead lower to SHAPE/TILE/EXPAND_DIMS chains that TFLM lacks.
- Condensation pads ("same") so an odd dimension keeps its last row instead of dropping it.
- Every step is its own stock Keras layer (plus two tiny custom ones, :class:`ChannelScale` and
  :class:`ResizeNearest`). Quantization-aware training (tensorflow-model-optimization) puts a
  fake-quant range on each layer's output, so built this way every inner tensor of the
  condenser gets a trained int8 range; a monolithic layer would only get one at its output.
  :func:`attention_condenser` lays these layers out in a functional graph (what the zoo uses,
  and what QAT needs); :class:`AttentionCondenser` wraps the very same layers and maths as one
  layer for users composing their own models in float.
"""

from __future__ import annotations

from tinyspeech_tf._compat import keras, tf
from tinyspeech_tf.layers import low_rank as lr

F_MODES = ("multiply", "residual")
EMBEDDINGS = ("conv", "depthwise")
GATES = ("sigmoid", "hard_sigmoid")
SCALE_OPS = ("mul", "depthwise")
# hard_sigmoid(z) = relu6(z + 3) / 6: the projection's bias starts at 3 (A = 0.5 at z = 0, as
# the sigmoid's) and the 1/6 is carried by S, which starts at scale_init / 6.
HARD_SIGMOID_SHIFT = 3.0
HARD_SIGMOID_RANGE = 6.0


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
class ChannelScale(keras.layers.Layer):
    """``x * S + offset`` with ``S`` a learned per-channel vector: the condenser's scale S
    (``offset`` 1 folds the residual V + V*A*S into V * (1 + A*S) at the condensed
    resolution).

    ``depthwise`` computes the same product as a 1x1 depthwise convolution whose kernel is S:
    the converter folds ``offset`` into its bias, so x * S + 1 is one DEPTHWISE_CONV_2D
    (which CMSIS-NN runs) instead of a MUL and an ADD. S is then quantized as a conv weight
    (symmetric int8) rather than as a MUL's constant operand.
    """

    def __init__(self, scale_init: float = 1.0, offset: float = 0.0, depthwise: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.scale_init = float(scale_init)
        self.offset = float(offset)
        self.depthwise = bool(depthwise)

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale", shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(self.scale_init), trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        if self.depthwise:
            kernel = tf.reshape(self.scale, (1, 1, -1, 1))
            out = tf.nn.depthwise_conv2d(inputs, kernel, strides=(1, 1, 1, 1), padding="VALID")
        else:
            out = inputs * self.scale
        return out + self.offset if self.offset else out

    def get_config(self):
        return {**super().get_config(), "scale_init": self.scale_init, "offset": self.offset,
                "depthwise": self.depthwise}


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
class ResizeNearest(keras.layers.Layer):
    """Nearest-neighbour resize of ``inputs[0]`` to the spatial size of ``inputs[1]``.

    With static shapes this converts to one RESIZE_NEAREST_NEIGHBOR with a constant size; the
    second input only lends its shape, so it adds no op and no arena tensor.
    """

    def call(self, inputs):
        x, like = inputs
        size = like.shape[1:3]
        if None in tuple(size):
            size = tf.shape(like)[1:3]
        return tf.image.resize(x, size, method="nearest")

    def compute_output_shape(self, input_shape):
        x, like = input_shape
        return (x[0], like[1], like[2], x[3])


def _check(embed_channels, pool_size, embedding: str, f_mode: str, gate: str = "sigmoid",
           scale_op: str = "mul"):
    """Validated ``((c1, c2), (ph, pw))``; ValueError names the bad argument."""
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if scale_op not in SCALE_OPS:
        raise ValueError(f"scale_op must be one of {SCALE_OPS}, got {scale_op!r}")
    if f_mode not in F_MODES:
        raise ValueError(f"f_mode must be one of {F_MODES}, got {f_mode!r}")
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    c1, c2 = (int(c) for c in embed_channels)
    if c1 < 1 or c2 < 1:
        raise ValueError(f"embed_channels must be positive, got {embed_channels!r}")
    pool = (tuple(int(p) for p in pool_size) if isinstance(pool_size, (list, tuple))
            else (int(pool_size), int(pool_size)))
    return (c1, c2), pool


def _sublayers(channels: int, embed_channels, pool_size, embedding: str, kernel_size: int,
               f_mode: str, use_batch_norm: bool, scale_init: float, regularizer,
               prefix: str = "", rank: int = 0, bank: lr.FactorBank | None = None,
               fuse_residual: bool = False, gate: str = "sigmoid",
               scale_op: str = "mul") -> dict:
    """The condenser's layers, in order of use; ``None`` marks a step this variant skips.

    ``rank`` > 0 factorises the two pointwise convs (``embed2``, ``project``) where that makes
    them smaller, with factors from ``bank`` (see :mod:`tinyspeech_tf.layers.low_rank`).
    """
    (c1, c2), pool = _check(embed_channels, pool_size, embedding, f_mode, gate, scale_op)
    hard = gate == "hard_sigmoid"
    bias = not use_batch_norm
    # Without batch norm the ReLU is the conv's own activation: tfmot then fake-quantizes the
    # conv's weights and its post-ReLU output (a separate ReLU layer makes tfmot's transforms
    # drop the conv's weight quantizer). With batch norm, conv -> BN -> ReLU is the pattern
    # tfmot folds.
    fused = None if use_batch_norm else "relu"
    # V + V*A*S == V * (1 + A*S): the 1 is added at the condensed resolution, before the
    # resize, so no element-wise op but the one MUL runs at V's resolution.
    fused_residual = f_mode == "residual" and fuse_residual
    if embedding == "conv":
        embed1 = keras.layers.Conv2D(c1, kernel_size, padding="same", use_bias=bias,
                                     activation=fused, kernel_regularizer=regularizer,
                                     name=prefix + "embed1")
    else:
        if c1 % channels:
            raise ValueError(f"depthwise embedding needs c1 ({c1}) to be a multiple of the "
                             f"input channels ({channels})")
        embed1 = keras.layers.DepthwiseConv2D(
            kernel_size, padding="same", depth_multiplier=c1 // channels, use_bias=bias,
            activation=fused, depthwise_regularizer=regularizer, name=prefix + "embed1")

    def bn(name):
        return keras.layers.BatchNormalization(name=prefix + name) if use_batch_norm else None

    def relu(name):
        return keras.layers.ReLU(name=prefix + name) if use_batch_norm else None

    return {
        "condense": keras.layers.MaxPool2D(pool, padding="same", name=prefix + "condense"),
        "embed1": embed1, "bn1": bn("bn1"), "relu1": relu("relu1"),
        "embed2": lr.conv2d(c1, c2, 1, rank=rank, bank=bank, use_bias=bias, activation=fused,
                            kernel_regularizer=regularizer, name=prefix + "embed2"),
        "bn2": bn("bn2"), "relu2": relu("relu2"),
        # The hard sigmoid's relu6 is the projection's own activation: the converter fuses it
        # into the conv, so the gate costs no op at all.
        "project": lr.conv2d(c2, channels, 1, rank=rank, bank=bank,
                             activation="relu6" if hard else None,
                             bias_initializer=keras.initializers.Constant(HARD_SIGMOID_SHIFT)
                             if hard else "zeros",
                             kernel_regularizer=regularizer, name=prefix + "project"),
        "sigmoid": None if hard else keras.layers.Activation("sigmoid", name=prefix + "sigmoid"),
        "scale": ChannelScale(scale_init / HARD_SIGMOID_RANGE if hard else scale_init,
                              1.0 if fused_residual else 0.0, depthwise=scale_op == "depthwise",
                              name=prefix + "scale"),
        "expand": ResizeNearest(name=prefix + "expand"),
        "attend": keras.layers.Multiply(name=prefix + "attend"),
        "residual": keras.layers.Add(name=prefix + "residual")
        if f_mode == "residual" and not fused_residual else None,
    }


def _attention(sub: dict, v, training=None):
    """A * S at the condensed resolution: sigmoid(project(E(C(V)))) * S."""
    k = sub["condense"](v)
    for conv, bn, relu in (("embed1", "bn1", "relu1"), ("embed2", "bn2", "relu2")):
        k = sub[conv](k)
        if sub[bn] is not None:
            k = sub[relu](sub[bn](k, training=training))
    a = sub["project"](k)
    return sub["scale"](a if sub["sigmoid"] is None else sub["sigmoid"](a))


def _select(sub: dict, v, a):
    """V' = V * X(A*S), plus V in the residual mode."""
    weighted = sub["attend"]([v, sub["expand"]([a, v])])
    return weighted if sub["residual"] is None else sub["residual"]([v, weighted])


# The steps that hold weights: what weight sharing reuses between condensers.
WEIGHTED = ("embed1", "bn1", "embed2", "bn2", "project", "scale")
EMBEDDING_STEPS = ("embed1", "bn1", "embed2", "bn2")


def condenser_layers(channels: int, embed_channels: tuple[int, int] = (8, 8), pool_size=2, *,
                     embedding: str = "conv", kernel_size: int = 3,
                     f_mode: str = "multiply", use_batch_norm: bool = False,
                     scale_init: float = 1.0, kernel_regularizer=None, low_rank: int = 0,
                     factor_bank: lr.FactorBank | None = None, fuse_residual: bool = False,
                     gate: str = "sigmoid", scale_op: str = "mul",
                     name: str = "condenser") -> dict:
    """The layers of one attention condenser on ``channels`` channels, by step, unapplied.

    Apply them with :func:`apply_condenser`. Handing steps of one condenser's dict to another
    (e.g. ``{**mine, "embed1": theirs["embed1"]}``) shares those weights between them; the
    zoo's ``share`` option does exactly that. ``low_rank`` > 0 factorises the pointwise convs
    (factors from ``factor_bank``, shared across layers if the bank shares). ``gate`` and
    ``scale_op`` choose how A and A * S are computed (see the module's deployment notes).
    """
    return _sublayers(int(channels), embed_channels, pool_size, embedding, int(kernel_size),
                      f_mode, bool(use_batch_norm), float(scale_init),
                      keras.regularizers.get(kernel_regularizer), prefix=f"{name}_",
                      rank=int(low_rank), bank=factor_bank, fuse_residual=fuse_residual,
                      gate=gate, scale_op=scale_op)


def apply_condenser(layers: dict, v):
    """V' = F(V, X(E(C(V))), S) with the layers of :func:`condenser_layers`."""
    return _select(layers, v, _attention(layers, v))


def attention_condenser(v, embed_channels: tuple[int, int] = (8, 8), pool_size=2, *,
                        embedding: str = "conv", kernel_size: int = 3,
                        f_mode: str = "multiply", use_batch_norm: bool = False,
                        scale_init: float = 1.0, kernel_regularizer=None,
                        low_rank: int = 0, factor_bank: lr.FactorBank | None = None,
                        name: str = "condenser"):
    """Apply an attention condenser to the Keras tensor ``v`` as a graph of stock layers.

    Same arguments and maths as :class:`AttentionCondenser` (plus ``low_rank``, see
    :func:`condenser_layers`); layers are named ``{name}_condense``, ``{name}_embed1``, ...
    ``{name}_attend``.
    """
    return apply_condenser(condenser_layers(
        int(v.shape[-1]), embed_channels, pool_size, embedding=embedding,
        kernel_size=kernel_size, f_mode=f_mode, use_batch_norm=use_batch_norm,
        scale_init=scale_init, kernel_regularizer=kernel_regularizer, low_rank=low_rank,
        factor_bank=factor_bank, name=name), v)


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
class AttentionCondenser(keras.layers.Layer):
    """Attention condenser as a single layer: V' = F(V, X(E(C(V))), S), shape preserved.

    Args:
        embed_channels: ``(c1, c2)``, the widths of the two embedding layers.
        pool_size: condensation max-pool size (and stride), e.g. 2 or ``(2, 2)``.
        embedding: ``"conv"`` (k x k conv to c1, 1x1 conv to c2) or ``"depthwise"``
            (k x k depthwise with multiplier c1 / C, 1x1 conv to c2); c1 must then be a
            multiple of the input channels.
        kernel_size: spatial size of the first embedding layer.
        f_mode: ``"multiply"`` (V * A * S) or ``"residual"`` (V + V * A * S).
        use_batch_norm: batch norm after each embedding conv (folded into the conv when
            converting to TFLite); TinySpeech-M uses none.
        scale_init: initial value of S.

    For quantization-aware training use :func:`attention_condenser` (the zoo does): the same
    layers laid out in the model graph, so each inner tensor gets its own int8 range.
    """

    def __init__(self, embed_channels: tuple[int, int] = (8, 8), pool_size=2,
                 embedding: str = "conv", kernel_size: int = 3, f_mode: str = "multiply",
                 use_batch_norm: bool = False, scale_init: float = 1.0,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.embed_channels, self.pool_size = _check(embed_channels, pool_size, embedding,
                                                     f_mode)
        self.embedding = embedding
        self.kernel_size = int(kernel_size)
        self.f_mode = f_mode
        self.use_batch_norm = bool(use_batch_norm)
        self.scale_init = float(scale_init)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        self._sub = _sublayers(int(input_shape[-1]), self.embed_channels, self.pool_size,
                               self.embedding, self.kernel_size, self.f_mode,
                               self.use_batch_norm, self.scale_init, self.kernel_regularizer)
        shape = self._sub["condense"].compute_output_shape(input_shape)
        for key in ("embed1", "bn1", "embed2", "bn2", "project", "scale"):
            sub = self._sub[key]
            if sub is None:
                continue
            with tf.name_scope(sub.name):  # weights named condenserN/embed1/kernel, not kernel
                sub.build(shape)
            shape = sub.compute_output_shape(shape)
        super().build(input_shape)

    @property
    def scale(self):
        """The learned per-channel S."""
        return self._sub["scale"].scale

    def sublayer(self, key: str):
        """One of the condenser's steps by key: ``embed1``, ``embed2``, ``project``, ..."""
        return self._sub[key]

    def attention(self, v, training=None):
        """A * S at the condensed resolution (before expansion): useful for inspection."""
        return _attention(self._sub, v, training)

    def call(self, inputs, training=None):
        return _select(self._sub, inputs, _attention(self._sub, inputs, training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_channels=list(self.embed_channels),
            pool_size=list(self.pool_size),
            embedding=self.embedding,
            kernel_size=self.kernel_size,
            f_mode=self.f_mode,
            use_batch_norm=self.use_batch_norm,
            scale_init=self.scale_init,
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer)
            if self.kernel_regularizer else None,
        )
        return config
