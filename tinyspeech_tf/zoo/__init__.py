"""The model zoo: plain builder functions and a registry by name.

Every builder takes ``input_shape`` and ``num_classes`` first, then its own hyper-parameters
as keyword arguments, like ``keras.applications``.
"""

from __future__ import annotations

from collections.abc import Callable

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.zoo.ds_cnn import ds_cnn
from tinyspeech_tf.zoo.tiny_conv import tiny_conv
from tinyspeech_tf.zoo.tinyspeech import (
    tinyspeech,
    tinyspeech_m,
    tinyspeech_x,
    tinyspeech_y,
    tinyspeech_z,
)

_REGISTRY: dict[str, Callable] = {
    "tinyspeech_x": tinyspeech_x,
    "tinyspeech_y": tinyspeech_y,
    "tinyspeech_z": tinyspeech_z,
    "tinyspeech_m": tinyspeech_m,
    "tiny_conv": tiny_conv,
    "ds_cnn": ds_cnn,
}

# Paper Table 1 (Speech Commands, 12 classes, 8-bit): accuracy, params, mult-adds.
PAPER = {
    "tinyspeech_x": {"accuracy": 0.946, "params": 10_800, "macs": 10_900_000},
    "tinyspeech_y": {"accuracy": 0.936, "params": 6_100, "macs": 6_500_000},
    "tinyspeech_z": {"accuracy": 0.924, "params": 2_700, "macs": 2_600_000},
    "tinyspeech_m": {"accuracy": 0.919, "params": 4_700, "macs": 4_400_000},
}

# Weight quantization granularity at int8 conversion, by model name (default: per channel).
# TinySpeech-M is quantized per tensor: on a model this small the per-channel scales and zero
# points are a fifth of the flatbuffer, and measured on `val` per-tensor loses no accuracy.
PER_CHANNEL = {"tinyspeech_m": False}


def names() -> list[str]:
    """Names accepted by :func:`get`, in a stable order."""
    return list(_REGISTRY)


def get(name: str, **kwargs):
    """Build the zoo model ``name``; keyword arguments go to its builder."""
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(names())}") from None
    return builder(**kwargs)


__all__ = ["get", "names", "PAPER", "PER_CHANNEL", "tinyspeech", "tinyspeech_x", "tinyspeech_y",
           "tinyspeech_z", "tinyspeech_m", "tiny_conv", "ds_cnn"]
