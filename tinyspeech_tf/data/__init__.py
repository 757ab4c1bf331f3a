"""Keyword-spotting data: the 12-class protocol, sources, the tf.data pipeline, synthetic set.

Submodules import TensorFlow only inside the functions that need it, so the protocol, loaders
and the synthesiser work (and the CLI starts) without loading TensorFlow.
"""

from tinyspeech_tf.data.augment import AugmentConfig, SpecAugment, make_dataset, mask_features
from tinyspeech_tf.data.protocol import (
    LABELS,
    MLPERF_LABELS,
    SILENCE,
    UNKNOWN,
    UNKNOWN_WORDS,
    WORDS,
    read_labels,
    write_labels,
)
from tinyspeech_tf.data.sources import Source, Split, detect, load, remap_labels

__all__ = [
    "AugmentConfig", "LABELS", "MLPERF_LABELS", "SILENCE", "UNKNOWN", "UNKNOWN_WORDS", "WORDS",
    "Source", "SpecAugment", "Split", "detect", "load", "make_dataset", "mask_features",
    "read_labels", "remap_labels", "write_labels",
]
