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
- S is a per-channel weight vector multiplied in, which converts to one MUL by a 12-byte int8
  constant; a bias-free 1x1 depthwise conv would cost a zero int32 bias and per-channel
  quantization parameters in the flatbuffer for the same arithmetic.
- Expansion resizes straight to V's exact size with ``tf.image.resize(..., "nearest")``, which
  converts to one RESIZE_NEAREST_NEIGHBOR; odd sizes (49 frames, 5 coefficients) need no crop.
  Keras ``UpSampling2D`` can instead lower to SHAPE/TILE/EXPAND_DIMS chains that TFLM lacks.
- Condensation pads ("same") so an odd dimension keeps its last row instead of dropping it.
"""

from __future__ import annotations

from tinyspeech_tf._compat import keras, tf

F_MODES = ("multiply", "residual")
EMBEDDINGS = ("conv", "depthwise")


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
class AttentionCondenser(keras.layers.Layer):
    """Attention condenser: V' = F(V, X(E(C(V))), S), output shape equal to input shape.

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
    """

    def __init__(self, embed_channels: tuple[int, int] = (8, 8), pool_size=2,
                 embedding: str = "conv", kernel_size: int = 3, f_mode: str = "multiply",
                 use_batch_norm: bool = False, scale_init: float = 1.0,
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if f_mode not in F_MODES:
            raise ValueError(f"f_mode must be one of {F_MODES}, got {f_mode!r}")
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
        c1, c2 = (int(c) for c in embed_channels)
        if c1 < 1 or c2 < 1:
            raise ValueError(f"embed_channels must be positive, got {embed_channels!r}")
        self.embed_channels = (c1, c2)
        self.pool_size = tuple(pool_size) if isinstance(pool_size, (list, tuple)) else (
            int(pool_size), int(pool_size))
        self.embedding = embedding
        self.kernel_size = int(kernel_size)
        self.f_mode = f_mode
        self.use_batch_norm = bool(use_batch_norm)
        self.scale_init = float(scale_init)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        c1, c2 = self.embed_channels
        reg = self.kernel_regularizer
        self.pool = keras.layers.MaxPool2D(self.pool_size, padding="same", name="condense")
        if self.embedding == "conv":
            self.embed1 = keras.layers.Conv2D(c1, self.kernel_size, padding="same",
                                              use_bias=not self.use_batch_norm,
                                              kernel_regularizer=reg, name="embed1")
        else:
            if c1 % channels:
                raise ValueError(f"depthwise embedding needs c1 ({c1}) to be a multiple of the "
                                 f"input channels ({channels})")
            self.embed1 = keras.layers.DepthwiseConv2D(
                self.kernel_size, padding="same", depth_multiplier=c1 // channels,
                use_bias=not self.use_batch_norm, depthwise_regularizer=reg, name="embed1")
        self.embed2 = keras.layers.Conv2D(c2, 1, use_bias=not self.use_batch_norm,
                                          kernel_regularizer=reg, name="embed2")
        self.bn1 = keras.layers.BatchNormalization(name="bn1") if self.use_batch_norm else None
        self.bn2 = keras.layers.BatchNormalization(name="bn2") if self.use_batch_norm else None
        self.project = keras.layers.Conv2D(channels, 1, kernel_regularizer=reg, name="project")
        self.scale = self.add_weight(
            name="scale", shape=(channels,),
            initializer=keras.initializers.Constant(self.scale_init), trainable=True)
        shape = self.pool.compute_output_shape(input_shape)
        for sub in (self.embed1, self.bn1, self.embed2, self.bn2, self.project):
            if sub is None:
                continue
            with tf.name_scope(sub.name):  # weights named condenserN/embed1/kernel, not kernel
                sub.build(shape)
            shape = sub.compute_output_shape(shape)
        super().build(input_shape)

    def attention(self, v, training=None):
        """A * S at the condensed resolution (before expansion): useful for inspection."""
        k = self.embed1(self.pool(v))
        if self.bn1 is not None:
            k = self.bn1(k, training=training)
        k = tf.nn.relu(k)
        k = self.embed2(k)
        if self.bn2 is not None:
            k = self.bn2(k, training=training)
        k = tf.nn.relu(k)
        return tf.sigmoid(self.project(k)) * self.scale

    def call(self, inputs, training=None):
        a = self.attention(inputs, training=training)
        size = inputs.shape[1:3]
        if None in tuple(size):
            size = tf.shape(inputs)[1:3]
        a = tf.image.resize(a, size, method="nearest")
        weighted = inputs * a
        return inputs + weighted if self.f_mode == "residual" else weighted

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
