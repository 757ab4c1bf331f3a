"""Keras layers of the TinySpeech zoo."""

from tinyspeech_tf.layers.attention_condenser import AttentionCondenser

__all__ = ["AttentionCondenser"]
