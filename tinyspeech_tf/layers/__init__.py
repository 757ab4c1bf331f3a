"""Keras layers of the TinySpeech zoo."""

from tinyspeech_tf.layers.attention_condenser import (
    AttentionCondenser,
    ChannelScale,
    ResizeNearest,
    attention_condenser,
)

__all__ = ["AttentionCondenser", "ChannelScale", "ResizeNearest", "attention_condenser"]
