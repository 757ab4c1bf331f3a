"""Keras layers of the TinySpeech zoo."""

from tinyspeech_tf.layers.attention_condenser import (
    AttentionCondenser,
    ChannelScale,
    ResizeNearest,
    apply_condenser,
    attention_condenser,
    condenser_layers,
)
from tinyspeech_tf.layers.low_rank import FactorBank, Factorised
from tinyspeech_tf.layers.pooling import AxisMeanDepthwise, global_average_depthwise

__all__ = ["AttentionCondenser", "ChannelScale", "ResizeNearest", "apply_condenser",
           "attention_condenser", "condenser_layers", "FactorBank", "Factorised",
           "AxisMeanDepthwise", "global_average_depthwise"]
