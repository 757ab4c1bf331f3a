"""Magnitude pruning during training (tensorflow-model-optimization), kept through QAT.

Why: a pruned weight is an exact zero in the int8 model, so after clustering
(:func:`tinyspeech_tf.compress.cluster`, which keeps zero as one of its values) the filters
need fewer distinct values and TFLM's look-up-table compression packs them into fewer bits.

How: the float phase wraps every conv, depthwise conv and dense layer in tfmot's
``prune_low_magnitude`` with a polynomial schedule from 0 to the target sparsity over the
first 60% of the float steps (the rest of the epochs recover accuracy at the final mask).
The best float model is stripped of the wrappers; QAT then fine-tunes it with
:class:`KeepMasks` re-applying the pruning masks after every step, because QAT's own updates
would otherwise regrow the pruned weights.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from tinyspeech_tf._compat import keras

# Layers tfmot prunes here (their kernels); custom layers (ChannelScale, ResizeNearest) and
# pooling have nothing worth pruning and are left unwrapped.
PRUNABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
SCHEDULE_FRACTION = 0.6


def _sparsity():
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras


def _kernel(layer):
    return layer.depthwise_kernel if isinstance(layer, keras.layers.DepthwiseConv2D) \
        else layer.kernel


def wrap(model: keras.Model, sparsity: float, total_steps: int) -> keras.Model:
    """``model`` with its convs and dense layers wrapped for magnitude pruning."""
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    sk = _sparsity()
    schedule = sk.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity),
                                  begin_step=0,
                                  end_step=max(1, int(total_steps * SCHEDULE_FRACTION)),
                                  frequency=max(1, total_steps // 100))

    def clone(layer):
        if isinstance(layer, PRUNABLE):
            return sk.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


@contextmanager
def scope():
    """Where pruning-wrapped models can be loaded (``keras.models.load_model``)."""
    with _sparsity().prune_scope():
        yield


def callbacks() -> list:
    """What ``fit`` needs while the model is wrapped (advances the pruning step)."""
    return [_sparsity().UpdatePruningStep()]


def strip(model: keras.Model) -> keras.Model:
    """The plain model (pruned weights as zeros), without tfmot's wrappers."""
    return _sparsity().strip_pruning(model)


def masks(model: keras.Model) -> dict[str, np.ndarray]:
    """Per prunable layer name: 1 where its (stripped) kernel is non-zero, 0 where pruned."""
    return {layer.name: (np.asarray(_kernel(layer)) != 0).astype(np.float32)
            for layer in model.layers if isinstance(layer, PRUNABLE)}


def sparsity_of(model: keras.Model) -> float:
    """Fraction of zero weights over all prunable kernels."""
    kernels = [np.asarray(_kernel(la)) for la in model.layers if isinstance(la, PRUNABLE)]
    total = sum(k.size for k in kernels)
    return float(sum(int((k == 0).sum()) for k in kernels) / max(1, total))


class KeepMasks(keras.callbacks.Callback):
    """Re-apply pruning masks to a QAT model's kernels after every training step."""

    def __init__(self, layer_masks: dict[str, np.ndarray]):
        super().__init__()
        self.layer_masks = layer_masks
        self._pairs: list | None = None

    def _resolve(self):
        from tinyspeech_tf.quantize import qat

        pairs = []
        for layer in self.model.layers:
            inner = getattr(layer, "layer", layer)  # tfmot QuantizeWrapper holds the layer
            if inner.name in self.layer_masks and isinstance(inner, PRUNABLE):
                pairs.append((qat.kernel_variable(layer, inner), self.layer_masks[inner.name]))
        if len(pairs) != len(self.layer_masks):
            raise RuntimeError(f"pruning masks for {len(self.layer_masks)} layers but "
                               f"{len(pairs)} found in the QAT model")
        return pairs

    def apply(self) -> None:
        if self._pairs is None:
            self._pairs = self._resolve()
        for variable, mask in self._pairs:
            variable.assign(variable * mask)

    def on_train_begin(self, logs=None):
        self.apply()

    def on_train_batch_end(self, batch, logs=None):
        self.apply()
