"""Parameter and mult-add (MAC) counts per layer, the paper's two cost measures.

MACs count multiply-accumulates of convolutions and dense layers plus the element-wise
multiplies of selective attention (V * A, A * S). Pooling, resizing, activations and additions
are not mult-adds and count zero; batch norm counts zero because conversion folds it into the
preceding convolution. Counts are for one example (batch 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tinyspeech_tf._compat import keras
from tinyspeech_tf.layers import AttentionCondenser, ChannelScale


@dataclass
class LayerCost:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def _elements(shape) -> int:
    return int(np.prod([int(d) for d in shape if d is not None]))


def _conv_macs(layer, input_shape, output_shape) -> int:
    out = _elements(output_shape[1:])
    kh, kw = layer.kernel_size
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return out * kh * kw
    in_channels = int(input_shape[-1]) // getattr(layer, "groups", 1)
    return out * kh * kw * in_channels


def _layer_macs(layer, input_shape, output_shape) -> int:
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return _conv_macs(layer, input_shape, output_shape)
    if isinstance(layer, keras.layers.Dense):
        return int(input_shape[-1]) * int(layer.units)
    if isinstance(layer, (keras.layers.Multiply, ChannelScale)):  # V * A, A * S
        return _elements(output_shape[1:])
    if isinstance(layer, AttentionCondenser):
        return condenser_macs(layer, input_shape)
    return 0


_CONDENSER_STEPS = ("condense", "embed1", "bn1", "relu1", "embed2", "bn2", "relu2", "project",
                    "sigmoid", "scale")


def condenser_macs(layer: AttentionCondenser, input_shape) -> int:
    """MACs of one single-layer attention condenser on ``input_shape`` (batch included)."""
    shape, macs = input_shape, 0
    for key in _CONDENSER_STEPS:
        sub = layer.sublayer(key)
        if sub is not None:
            out = sub.compute_output_shape(shape)
            macs += _layer_macs(sub, shape, out)
            shape = out
    return macs + _elements(input_shape[1:])  # V * A (the residual addition is not a MAC)


def profile(model: keras.Model) -> list[LayerCost]:
    """Per-layer parameters and MACs of a functional Keras model, in graph order."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        input_shape = layer.input_shape
        if isinstance(input_shape, list):
            input_shape = input_shape[0]
        output_shape = layer.output_shape
        macs = _layer_macs(layer, input_shape, output_shape)
        rows.append(LayerCost(layer.name, type(layer).__name__,
                              tuple(int(d) for d in output_shape[1:]),
                              int(layer.count_params()), int(macs)))
    return rows


def total_macs(model: keras.Model) -> int:
    """Mult-adds of one inference."""
    return sum(row.macs for row in profile(model))


def summary(model: keras.Model) -> str:
    """A printable per-layer table with totals."""
    rows = profile(model)
    lines = [f"{'layer':<24}{'kind':<22}{'output':<16}{'params':>8}{'MACs':>12}"]
    for r in rows:
        lines.append(f"{r.name:<24}{r.kind:<22}{'x'.join(map(str, r.output_shape)):<16}"
                     f"{r.params:>8}{r.macs:>12,}")
    lines.append(f"{'total':<62}{sum(r.params for r in rows):>8}"
                 f"{sum(r.macs for r in rows):>12,}")
    return "\n".join(lines)


def as_dicts(model: keras.Model) -> list[dict]:
    """Per-layer costs as JSON-ready dicts."""
    return [asdict(r) for r in profile(model)]
