"""Weight clustering during quantization-aware training, so LUT compression costs no accuracy.

TFLM's look-up-table compression (``tinyspeech compress``) stores a filter as ``bits``-bit
indices into a table of at most ``2**bits`` values. Snapping a trained int8 filter to that many
values afterwards costs accuracy (measured on TinySpeech-M's head conv: several points at 4
bits). Training with the clusters instead lets the rest of the network adapt to them.

How: at the start of QAT each chosen kernel gets ``2**bits`` centroids (k-means on its values,
zero among them so pruned weights stay zero), per tensor or per output channel as the model is
quantized. After every optimizer step each weight is snapped to its centroid, and each centroid
first moves to the mean of its members' updated values: the centroids learn with the averaged
gradient of their members (what weight clustering in tensorflow-model-optimization does, here
as a callback beside our own QAT configs). The int8 model then holds at most ``2**bits``
distinct values per quantization channel in those filters, and compressing them is lossless.

Only filters that LUT compression would shrink are clustered (the estimate of
:func:`tinyspeech_tf.compress.lut_saving`): clustering the rest would cost accuracy for nothing.
"""

from __future__ import annotations

import numpy as np

from tinyspeech_tf._compat import keras

CLUSTERED = (keras.layers.Conv2D, keras.layers.Dense)  # not depthwise: too small to pay


def _rows(kernel: np.ndarray, per_channel: bool) -> np.ndarray:
    """[channels, -1] view order: output channels (last axis) or one row."""
    return kernel.reshape(-1, kernel.shape[-1]).T if per_channel else kernel.reshape(1, -1)


def _unrows(rows: np.ndarray, shape: tuple, per_channel: bool) -> np.ndarray:
    return rows.T.reshape(shape) if per_channel else rows.reshape(shape)


def _kmeans(values: np.ndarray, k: int, iterations: int = 25) -> np.ndarray:
    """``k`` float centroids of ``values`` (fewer if there are fewer values), 0 included."""
    with_zero = np.unique(np.append(values, 0.0))
    if len(with_zero) <= k:
        return with_zero
    centres = np.append(np.quantile(values, np.linspace(0, 1, k - 1)), 0.0)
    for _ in range(iterations):
        nearest = np.abs(values[:, None] - centres[None, :]).argmin(axis=1)
        moved = np.array([values[nearest == j].mean() if np.any(nearest == j) else centres[j]
                          for j in range(len(centres))])
        moved[-1] = 0.0
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres


def chosen_layers(model: keras.Model, bits: int, per_channel: bool) -> list[str]:
    """Names of the conv / dense layers whose ``bits``-bit LUT form would save bytes."""
    from tinyspeech_tf.quantize.lut import lut_saving

    names = []
    for layer in model.layers:
        if type(layer) not in CLUSTERED:  # exact types: DepthwiseConv2D subclasses Conv2D
            continue
        shape = tuple(layer.kernel.shape)
        channels = shape[-1] if per_channel else 1
        if lut_saving(int(np.prod(shape)), channels, bits) > 0:
            names.append(layer.name)
    return names


class KeepClusters(keras.callbacks.Callback):
    """Hold the chosen kernels of a QAT model on ``2**bits`` learned centroids."""

    def __init__(self, layer_names: list[str], bits: int, per_channel: bool):
        super().__init__()
        self.layer_names, self.k, self.per_channel = list(layer_names), 2 ** int(bits), \
            bool(per_channel)
        self._state: list | None = None  # (variable, centroids per row)

    def _resolve(self) -> list:
        from tinyspeech_tf.quantize import qat

        state = []
        for layer in self.model.layers:
            inner = getattr(layer, "layer", layer)  # tfmot QuantizeWrapper holds the layer
            if inner.name not in self.layer_names:
                continue
            variable = qat.kernel_variable(layer, inner)
            rows = _rows(variable.numpy(), self.per_channel)
            state.append((variable, [_kmeans(r, self.k) for r in rows]))
        if len(state) != len(self.layer_names):
            raise RuntimeError(f"{len(self.layer_names)} layers to cluster but {len(state)} "
                               "found in the QAT model")
        return state

    def snap(self, update_centroids: bool) -> None:
        if self._state is None:
            self._state = self._resolve()
        for variable, centroids in self._state:
            kernel = variable.numpy()
            rows = _rows(kernel, self.per_channel)
            out = np.empty_like(rows)
            for i, (row, centres) in enumerate(zip(rows, centroids, strict=True)):
                nearest = np.abs(row[:, None] - centres[None, :]).argmin(axis=1)
                if update_centroids:
                    for j in range(len(centres)):
                        members = row[nearest == j]
                        if members.size and centres[j] != 0.0:
                            centres[j] = members.mean()
                out[i] = centres[nearest]
            variable.assign(_unrows(out, kernel.shape, self.per_channel))

    def on_train_begin(self, logs=None):
        self.snap(update_centroids=False)

    def on_train_batch_end(self, batch, logs=None):
        self.snap(update_centroids=True)
