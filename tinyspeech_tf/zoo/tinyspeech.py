"""TinySpeech-X, -Y, -Z and -M (Wong et al., 2020): conv, attention condensers, conv, GAP, dense.

The paper gives each network's layer widths in its figure but not every detail; what is fixed
here and why:

- Stem: stride 1 for X/Y/Z (full 49x10 resolution, still below the paper's MACs) and stride 2
  in time and frequency for M, which keeps M's activations (25x5) small enough for its
  Cortex-M arena goal of 8 KB. X/Y/Z use a 10x4 stem kernel (MLPerf DS-CNN's first layer), M
  keeps the 3x3: between stem and head the main path has no conv (a condenser only gates V),
  so what a feature sees of the spectrogram is mostly the stem's kernel. At stride 1 a 3x3
  stem and a 3x3 head see 5 frames (110 ms) before the global average; 10x4 sees 12 frames.
- Condensers use the depthwise + pointwise embedding: with the paper's per-condenser widths it
  lands each network within 10% of the paper's parameter count, which 3x3 full convolutions
  would exceed several times over.
- Selective attention defaults to the residual form V + V*A*S: trained by the same recipe on
  real Speech Commands it beat the paper's V*A*S (``make ablation``), which also starts slowly
  without batch norm because three stacked V*A*S with A near 0.5 shrink the signal eightfold.
- No network uses batch norm (the builder still offers ``use_batch_norm``). The paper gives
  it to X/Y/Z, and with it they underfit: trained by the real recipe they stayed near 40%
  *training* accuracy. Batch norm puts every activation at unit scale, so the classifier sees
  a global average over 490 positions whose differences between clips are a small fraction of
  a unit; without it the activations keep the MFCC's scale (the first coefficient's standard
  deviation is tens of units), which acts as a larger step for the same lr.
  ``reports/xyz_batchnorm.md`` (``tinyspeech seeds``, its command inside) trains X with and
  without batch norm and with both stems for the same 12 epochs at the paper's lr: batch norm
  costs about twenty points, the 10x4 stem gains about ten. At 10x the lr batch norm trained faster
  but validation swung from epoch to epoch, its moving averages (momentum 0.99, 42 steps an
  epoch) trailing the weights. M uses no batch norm in the paper either.
- Weight sharing and low-rank factorisation (``share``, ``low_rank``, ``low_rank_share``) are
  off by default; they trade accuracy for flash (``tinyspeech_tf.compress`` measures what the
  int8 flatbuffer then stores).
- Global average pooling: TinySpeech-M (and the designs searched for M's limits) pool with two
  depthwise convs of constant weights, the mean over time then over frequency
  (``global_pool="depthwise"``, :mod:`tinyspeech_tf.layers.pooling`): CMSIS-NN has a kernel for
  them and none for MEAN, which on a Cortex-M4 build was a fifth of M's instructions. X/Y/Z keep
  the MEAN. Not an AVERAGE_POOL_2D over the whole map: int8 AVERAGE_POOL_2D must keep its
  input's scale, and without batch norm the head's output range is set by rare large
  activations (hundreds) while the averages are a few units, so they would be left with a
  handful of int8 levels; both MEAN and the depthwise convs requantize to a range of their own.
- M also computes its residual condensers as V * (1 + A*S) (``fuse_residual``), the 1 added at
  the condensed resolution: the same function as V + V*A*S with one element-wise op per
  condenser at V's resolution instead of two; A*S + 1 is one 1x1 depthwise conv
  (``scale_op="depthwise"``), so a condenser's only ops besides convolutions are its max-pool,
  sigmoid, resize and one MUL. ``gate="hard_sigmoid"`` would drop the sigmoid too (fused into
  the projection conv), at a cost in accuracy measured in ``reports/m_graph.md``.
- M's head conv (3x3, 12 to 28 channels at 25x5) is most of its MACs and, by the Cortex-M4
  estimate of :mod:`tinyspeech_tf.board_cost`, most of its instructions. At stride 2 it would
  cost well under half, but the measured accuracy fell by two points at stride 2 in time and
  by four in both axes (``reports/m_graph.md``): M keeps it at stride 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyspeech_tf._compat import keras
from tinyspeech_tf.layers import apply_condenser, condenser_layers, global_average_depthwise
from tinyspeech_tf.layers import low_rank as lr
from tinyspeech_tf.layers.attention_condenser import EMBEDDING_STEPS, WEIGHTED

SHARE_MODES = ("none", "block", "embedding")
GLOBAL_POOLS = ("mean", "depthwise")
LOW_RANK_LAYERS = ("pointwise", "head", "dense")
# How TinySpeech-M and the designs made for its limits are laid out for TFLM: the residual
# fused, A * S + 1 and the global pool as depthwise convs; the same function with fewer and
# smaller element-wise ops and no MEAN, which CMSIS-NN cannot accelerate. The gate stays the
# sigmoid: the hard sigmoid (``gate="hard_sigmoid"``, no LOGISTIC op) is another function and
# scored lower over three seeds (reports/m_graph.md).
M_DEPLOYMENT = {"fuse_residual": True, "global_pool": "depthwise", "scale_op": "depthwise"}


def tinyspeech(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12, *,
               stem_channels: int = 12, stem_kernel: Sequence[int] = (3, 3),
               stem_strides: Sequence[int] = (2, 2),
               embed_widths: Sequence[int] = (8, 12, 10), depth_multiplier: int = 1,
               head_channels: int = 28, head_kernel: Sequence[int] = (3, 3),
               head_strides: Sequence[int] = (1, 1), embedding: str = "depthwise",
               pool_size: int = 2, f_mode: str = "residual", scale_init: float = 1.0,
               use_batch_norm: bool = False, share: str = "none", low_rank: int = 0,
               low_rank_share: bool = False,
               low_rank_layers: Sequence[str] = LOW_RANK_LAYERS,
               dropout: float = 0.0, fuse_residual: bool = False,
               global_pool: str = "mean", scale_op: str = "mul", gate: str = "sigmoid",
               name: str = "tinyspeech") -> keras.Model:
    """Build a TinySpeech network.

    Args:
        input_shape: (frames, coefficients, 1) of the MFCC input.
        num_classes: softmax outputs.
        stem_channels: channels C carried through every attention condenser.
        stem_kernel, stem_strides: the first conv's kernel and stride.
        embed_widths: one entry per attention condenser: the width c2 of its pointwise
            embedding (c1 is ``C * depth_multiplier`` for the depthwise embedding, or equal to
            the width for the conv embedding).
        head_channels: channels of the last conv, before global average pooling.
        head_kernel, head_strides: the last conv's kernel and stride. Its output is the
            largest activation of TinySpeech-M (25x5x28) and its weights a third of M's, so a
            1x1 kernel frees flash and a 2x2 stride frees arena for wider condensers.
        embedding: ``"depthwise"`` or ``"conv"`` (see :class:`AttentionCondenser`).
        f_mode: selective attention ``"residual"`` (V + V*A*S, the default, chosen by the
            measured ablation in ``reports/f_mode_ablation.md``) or ``"multiply"`` (V*A*S).
        scale_init: initial S of every condenser.
        use_batch_norm: batch norm after each conv (X/Y/Z) or none (M).
        share: weight sharing across the condenser stack. ``"none"``; ``"block"``: every
            condenser reuses the weights of one condenser of width ``max(embed_widths)``
            (virtual depth at the weight memory of one condenser; with batch norm the BN is
            shared too, so folding keeps one set of weights); ``"embedding"``: condensers of
            equal embedding widths share their embedding convs (and BN), each keeping its own
            projection and scale S.
        low_rank: rank r > 0 factorises the pointwise convs of the condensers, the head conv
            and the dense layer into rank-r pairs wherever that has fewer weights (see
            :mod:`tinyspeech_tf.layers.low_rank`); 0 keeps every layer whole.
        low_rank_share: factors of the same shape are one layer across the network.
        low_rank_layers: which layers ``low_rank`` factorises: ``"pointwise"`` (the
            condensers' 1x1 convs), ``"head"`` (the last conv), ``"dense"``. Each factorised
            layer adds an op and a tensor to the flatbuffer (a few hundred bytes on a small
            model), so on small models only the big layers repay it.
        dropout: dropout rate before the dense layer (training only; not in the TFLite graph).
        fuse_residual: compute the residual V + V*A*S as V * (1 + A*S), the 1 added at the
            condensed resolution before the resize: the same function, with no element-wise
            op but one MUL at V's resolution per condenser (and a smaller arena).
        global_pool: ``"mean"`` (a MEAN op) or ``"depthwise"`` (DEPTHWISE_CONV_2Ds with
            constant weights, see :mod:`tinyspeech_tf.layers.pooling`): the same average,
            but CMSIS-NN accelerates it; the weights of one load into the other.
        scale_op: ``"mul"`` or ``"depthwise"``: A * S (+ 1 when fused) as a MUL (and ADD) or
            as one 1x1 DEPTHWISE_CONV_2D; the same function, the weights load into either.
        gate: the condensers' attention ``"sigmoid"`` or ``"hard_sigmoid"`` (relu6(z + 3) / 6
            fused into the projection conv: no LOGISTIC op; a different function, so weights
            trained with one do not serve the other).
    """
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}")
    if share not in SHARE_MODES:
        raise ValueError(f"share must be one of {SHARE_MODES}, got {share!r}")
    if int(low_rank) < 0:
        raise ValueError(f"low_rank must be >= 0, got {low_rank!r}")
    if isinstance(low_rank_layers, str) or not set(low_rank_layers) <= set(LOW_RANK_LAYERS):
        raise ValueError(f"low_rank_layers must be a list drawn from {LOW_RANK_LAYERS}, "
                         f"got {low_rank_layers!r}")

    def rank_of(layer: str) -> int:
        return int(low_rank) if layer in low_rank_layers else 0

    bias = not use_batch_norm
    bank = lr.FactorBank(share=low_rank_share)

    def conv_block(x, filters, kernel, strides, block_name, rank=0):
        # conv -> BN -> ReLU, or conv with its own ReLU: the two patterns QAT handles fully.
        x = lr.conv2d(int(x.shape[-1]), filters, kernel, rank=rank, bank=bank, strides=strides,
                      use_bias=bias, activation=None if use_batch_norm else "relu",
                      name=block_name)(x)
        if not use_batch_norm:
            return x
        x = keras.layers.BatchNormalization(name=f"{block_name}_bn")(x)
        return keras.layers.ReLU(name=f"{block_name}_relu")(x)

    def condenser(width, i):
        c1 = stem_channels * depth_multiplier if embedding == "depthwise" else width
        return condenser_layers(stem_channels, (c1, width), pool_size, embedding=embedding,
                                f_mode=f_mode, scale_init=scale_init,
                                use_batch_norm=use_batch_norm, low_rank=rank_of("pointwise"),
                                factor_bank=bank, fuse_residual=fuse_residual,
                                gate=gate, scale_op=scale_op,
                                name=f"condenser{i}")

    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    x = conv_block(inputs, stem_channels, tuple(stem_kernel), tuple(stem_strides), "stem")
    widths = [int(w) for w in embed_widths]
    first_of_width: dict[int, dict] = {}
    for i, width in enumerate(widths, start=1):
        if share == "block":
            width = max(widths)
        layers = condenser(width, i)
        owner = first_of_width.setdefault(width, layers)
        if share != "none" and owner is not layers:
            steps = WEIGHTED if share == "block" else EMBEDDING_STEPS
            layers.update({step: owner[step] for step in steps})
        x = apply_condenser(layers, x)
    x = conv_block(x, head_channels, tuple(head_kernel), tuple(head_strides), "head",
                   rank=rank_of("head"))
    x = (global_average_depthwise(x, name="gap") if global_pool == "depthwise"
         else keras.layers.GlobalAveragePooling2D(name="gap")(x))
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = lr.dense(head_channels, num_classes, rank=rank_of("dense"), bank=bank,
                       activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


# The paper's four networks as arguments of :func:`tinyspeech` (what their builders pass).
PRESETS: dict[str, dict] = {
    "tinyspeech_x": dict(stem_channels=15, stem_kernel=(10, 4), stem_strides=(1, 1),
                         embed_widths=(6, 6, 6, 19, 26, 18), head_channels=44),
    "tinyspeech_y": dict(stem_channels=10, stem_kernel=(10, 4), stem_strides=(1, 1),
                         embed_widths=(6, 6, 6, 18, 26, 18), head_channels=28),
    "tinyspeech_z": dict(stem_channels=7, stem_kernel=(10, 4), stem_strides=(1, 1),
                         embed_widths=(3, 3, 2, 11, 14, 10), head_channels=17),
    "tinyspeech_m": dict(stem_channels=12, stem_strides=(2, 2), embed_widths=(8, 12, 10),
                         head_channels=28, use_batch_norm=False, **M_DEPLOYMENT),
    # Found by `tinyspeech explore` under M's limits (spec reports/specs/stem_m.json): M's
    # condensers behind MLPerf DS-CNN's 10x4 stem, a narrower head.
    "tinyspeech_m_explored": dict(stem_channels=12, stem_kernel=(10, 4), stem_strides=(2, 2),
                                  embed_widths=(8, 12, 10), head_channels=24,
                                  use_batch_norm=False, **M_DEPLOYMENT),
    # For boards with about 8 KB of arena: the best design of `make explore-arena8k` (two
    # condensers on 8 channels, a head of stride 2; spec reports/specs/arena8k_two.json) with
    # the room left under the limit spent on width (depth multiplier 2, embeddings 12 and 16, a
    # 32-channel head; reports/specs/arena8k_wide.json), which scored higher over three seeds
    # of the real recipe (reports/m_graph.md has this one beside M).
    "tinyspeech_m_arena8k": dict(stem_channels=8, stem_kernel=(10, 4), stem_strides=(2, 2),
                                 depth_multiplier=2, embed_widths=(12, 16), head_channels=32,
                                 head_strides=(2, 2), use_batch_norm=False, **M_DEPLOYMENT),
}


def _preset(name: str, input_shape, num_classes: int, kwargs: dict) -> keras.Model:
    return tinyspeech(input_shape, num_classes, **{**PRESETS[name], "name": name, **kwargs})


def tinyspeech_x(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                 **kwargs) -> keras.Model:
    """TinySpeech-X: the largest and most accurate (paper: 94.6%, 10.8K params, 10.9M MACs)."""
    return _preset("tinyspeech_x", input_shape, num_classes, kwargs)


def tinyspeech_y(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                 **kwargs) -> keras.Model:
    """TinySpeech-Y (paper: 93.6%, 6.1K params, 6.5M MACs)."""
    return _preset("tinyspeech_y", input_shape, num_classes, kwargs)


def tinyspeech_z(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                 **kwargs) -> keras.Model:
    """TinySpeech-Z: the smallest (paper: 92.4%, 2.7K params, 2.6M MACs)."""
    return _preset("tinyspeech_z", input_shape, num_classes, kwargs)


def tinyspeech_m(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                 **kwargs) -> keras.Model:
    """TinySpeech-M: TFLM builtin ops only, no batch norm (paper: 91.9%, 4.7K, 4.4M MACs)."""
    return _preset("tinyspeech_m", input_shape, num_classes, kwargs)


def tinyspeech_m_explored(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                          **kwargs) -> keras.Model:
    """The best design ``tinyspeech explore`` found within TinySpeech-M's limits (params,
    flatbuffer bytes, arena, TFLM ops): M with a 10x4 stem and a 24-channel head. Why it is in
    the zoo: it beat M over three seeds of the same recipe (``reports/seeds.md``, as
    ``stem_m``), so it ships with weights beside M."""
    return _preset("tinyspeech_m_explored", input_shape, num_classes, kwargs)


def tinyspeech_m_arena8k(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                         **kwargs) -> keras.Model:
    """TinySpeech-M for about 8 KB of arena on a 32-bit board (10 KB on this 64-bit host,
    where TFLM's bookkeeping is larger): the best design ``tinyspeech explore`` found under
    that limit, widened within it. Why it is smaller: the arena of a model this size is mostly
    TFLM's per-op bookkeeping plus the three full-resolution tensors of a condenser's MUL, so
    it has one condenser fewer than M, 8 channels instead of 12, and a head of stride 2."""
    return _preset("tinyspeech_m_arena8k", input_shape, num_classes, kwargs)
