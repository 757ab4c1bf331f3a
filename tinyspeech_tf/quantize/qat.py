"""Quantization-aware training (QAT) of zoo models with tensorflow-model-optimization.

Post-training quantization calibrates ranges on a few hundred examples and leaves the weights
as float training left them; on a 4.7K-parameter network the rounding then costs points of
accuracy. QAT fine-tunes with fake-quant ops in the graph, so the weights learn to live with
int8 and each tensor's range is learnt where the int8 model will read it.

tfmot knows stock Keras layers. The attention condenser is laid out as stock layers
(:func:`tinyspeech_tf.layers.attention_condenser`), so only a few layers need a
``QuantizeConfig`` here:

- ``Multiply`` (V * A): tfmot has no default for it; its output gets a moving-average range,
  like ``Add``. So does :class:`AxisMeanDepthwise` (a global average pool; its constant
  kernel carries its own exact fake-quant).
- :class:`ChannelScale` (A * S): S is quantized like a weight, the product gets a range.
- the hard-sigmoid gate (a conv with a relu6 activation): its output range is fixed to
  [0, 6] (see :class:`_HardGate`).
- the 1x1 projection before the sigmoid: its output range is fixed to [-8, 8], where the
  sigmoid saturates (see :class:`_SigmoidInput`).
- :class:`ResizeNearest`: nearest-neighbour resize only copies values, and TFLite requires its
  input and output to share one scale, so it gets no quantizer of its own. The same holds for
  the global ``AveragePooling2D`` (tfmot's default range there makes the converter insert a
  QUANTIZE op).

tfmot starts every activation range at [-6, 6] (the input's at [0, 0]) and moves it with an
exponential moving average of decay 0.999, i.e. over thousands of steps. TinySpeech-M has no
batch norm, so its activations (and the MFCC input, about +-100) lie far outside [-6, 6]: the
first QAT epochs would clip them and wreck a trained model. :func:`init_ranges` therefore
starts each range at the float model's min/max on calibration data, as post-training
calibration would, and QAT refines it from there.

The QAT weight granularity must match the converter's (``zoo.PER_CHANNEL``): a per-channel
fake-quant trained model converted per tensor would see ranges it never trained with.
"""

from __future__ import annotations

import re

import numpy as np

from tinyspeech_tf._compat import keras
from tinyspeech_tf.layers import (
    AttentionCondenser,
    AxisMeanDepthwise,
    ChannelScale,
    ResizeNearest,
)
from tinyspeech_tf.layers.attention_condenser import HARD_SIGMOID_RANGE


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _quantizers():
    return _tfmot().quantization.keras.quantizers


def _config_base():
    return _tfmot().quantization.keras.QuantizeConfig


class _OutputRange(_config_base()):
    """Fake-quantize a layer's output (moving-average min/max, asymmetric int8)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_quantizers().MovingAverageQuantizer(num_bits=8, per_axis=False,
                                                     symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}


class _ScaleAndOutputRange(_OutputRange):
    """ChannelScale: S fake-quantized as a constant tensor, plus the output range. As a MUL's
    operand S may have a zero point; as a depthwise kernel TFLite requires it symmetric."""

    def get_weights_and_quantizers(self, layer):
        symmetric = bool(getattr(layer, "depthwise", False))
        return [(layer.scale, _quantizers().LastValueQuantizer(
            num_bits=8, per_axis=False, symmetric=symmetric, narrow_range=symmetric))]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.scale = quantize_weights[0]


class _PassThrough(_OutputRange):
    """No quantizer: the output keeps the input's int8 scale (ResizeNearest)."""

    def get_output_quantizers(self, layer):
        return []


class _SigmoidInput(_OutputRange):
    """A conv whose output feeds a sigmoid: weights as tfmot's defaults, output range fixed.

    int8 LOGISTIC reads its input with that tensor's scale. A moving-average range follows the
    largest activations (hundreds, in TinySpeech-M's last condenser) and leaves the region
    where the sigmoid actually varies with a few int8 levels. Beyond +-8 the sigmoid is within
    1/2980 of 0 or 1, below half an output LSB (1/256), so clamping the range to [-8, 8] loses
    nothing and gives the sigmoid's input 16 times finer steps.
    """

    SATURATION = 8.0

    def __init__(self, per_channel: bool = True):
        self.per_channel = bool(per_channel)

    def _output_range(self) -> tuple[float, float]:
        return -self.SATURATION, self.SATURATION

    def _weight_quantizer(self):
        if self.per_channel:
            from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
                default_8bit_quantizers,
            )

            return default_8bit_quantizers.Default8BitConvWeightsQuantizer()
        return _quantizers().LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True,
                                                narrow_range=True)

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self._weight_quantizer())]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def get_output_quantizers(self, layer):
        low, high = self._output_range()
        return [_quantizers().FixedQuantizer(num_bits=8, init_min=low, init_max=high,
                                             narrow_range=False)]

    def get_config(self):
        return {"per_channel": self.per_channel}


class _HardGate(_SigmoidInput):
    """A conv with a relu6 activation (the hard-sigmoid gate, relu6(z + 3) / 6 with the 1/6 in
    S): its output range is fixed to the relu6's [0, 6], which the int8 conv's clamp then
    computes exactly; a moving-average range could end below 6 and clip the gate's top."""

    def _output_range(self) -> tuple[float, float]:
        return 0.0, HARD_SIGMOID_RANGE


def custom_objects() -> dict:
    """Everything a QAT model of the zoo needs to be saved, loaded or cloned."""
    return {"ChannelScale": ChannelScale, "ResizeNearest": ResizeNearest,
            "AxisMeanDepthwise": AxisMeanDepthwise,
            "AttentionCondenser": AttentionCondenser, "_OutputRange": _OutputRange,
            "_ScaleAndOutputRange": _ScaleAndOutputRange, "_PassThrough": _PassThrough,
            "_SigmoidInput": _SigmoidInput, "_HardGate": _HardGate}


def _sigmoid_inputs(model: keras.Model) -> set[str]:
    """Names of the Conv2D layers (without activation) whose only consumer is a sigmoid."""
    names = set()
    for layer in model.layers:
        if _is_sigmoid(layer):
            producer = layer._inbound_nodes[0].inbound_layers
            # A conv shared between condensers (zoo ``share``) feeds one sigmoid per use.
            if (isinstance(producer, keras.layers.Conv2D)
                    and producer.get_config()["activation"] == "linear"
                    and all(_is_sigmoid(node.outbound_layer)
                            for node in producer._outbound_nodes)):
                names.add(producer.name)
    return names


def _is_sigmoid(layer) -> bool:
    return (isinstance(layer, keras.layers.Activation)
            and layer.get_config()["activation"] == "sigmoid")


def _is_hard_gate(layer) -> bool:
    """A conv with a relu6 activation: in this zoo only the hard-sigmoid gate has one."""
    return (isinstance(layer, keras.layers.Conv2D)
            and layer.get_config()["activation"] == "relu6")


def _annotate(layer, sigmoid_inputs: set[str] = frozenset(), per_channel: bool = True):
    annotate = _tfmot().quantization.keras.quantize_annotate_layer
    if layer.name in sigmoid_inputs:
        return annotate(layer, _SigmoidInput(per_channel))
    if _is_hard_gate(layer):
        return annotate(layer, _HardGate(per_channel))
    if isinstance(layer, AttentionCondenser):
        raise ValueError(
            f"{layer.name}: QAT needs the condenser as stock layers; build the model with "
            "tinyspeech_tf.layers.attention_condenser(...) instead of AttentionCondenser")
    if isinstance(layer, ChannelScale):
        return annotate(layer, _ScaleAndOutputRange())
    if isinstance(layer, (ResizeNearest, keras.layers.AveragePooling2D)):
        return annotate(layer, _PassThrough())
    if isinstance(layer, (keras.layers.Multiply, AxisMeanDepthwise)):
        return annotate(layer, _OutputRange())
    return layer


def quantize_model(model: keras.Model, per_channel: bool = True) -> keras.Model:
    """A QAT copy of ``model`` (sharing its trained weights as the starting point).

    Compile and fit it like the float model, then convert with
    :func:`tinyspeech_tf.quantize.convert_int8` using the same ``per_channel``.
    """
    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_scheme,
    )

    sigmoid_inputs = _sigmoid_inputs(model)
    annotated = keras.models.clone_model(
        model, clone_function=lambda layer: _annotate(layer, sigmoid_inputs, per_channel))
    with qk.quantize_scope(custom_objects()):
        annotated = qk.quantize_annotate_model(annotated)
        scheme = default_8bit_quantize_scheme.Default8BitQuantizeScheme(
            disable_per_axis=not per_channel)
        qat = qk.quantize_apply(annotated, scheme=scheme)
    return qat


_RANGE = re.compile(r"quant_(?P<layer>.+)/(?P<where>post_activation|pre_activation|output)"
                    r"_(?P<end>min|max)")
_INPUT_RANGE = re.compile(r"quantize_layer(_\d+)?/quantize_layer(_\d+)?_(?P<end>min|max)")


def _pre_activation(layer, inputs: np.ndarray) -> np.ndarray:
    """``layer``'s output before its activation (e.g. the logits under a softmax)."""
    linear = type(layer).from_config({**layer.get_config(), "activation": "linear"})
    linear.build(inputs.shape)
    linear.set_weights(layer.get_weights())
    return np.asarray(linear(inputs))


def init_ranges(qat_model: keras.Model, float_model: keras.Model, inputs: np.ndarray) -> int:
    """Start every activation range of ``qat_model`` at ``float_model``'s min/max on ``inputs``.

    Ranges always include 0, as TFLite's do. A layer used several times (weights shared
    across the network) has one range, so it spans every use. Returns how many ranges were set.
    """
    layers = [la for la in float_model.layers if not isinstance(la, keras.layers.InputLayer)]
    # One (layer, node) pair per use of each layer in this model's graph.
    nodes = _model_nodes(float_model)
    uses = [(la, i) for la in layers for i in range(len(la._inbound_nodes))
            if la._inbound_nodes[i] in nodes]
    probe = keras.Model(float_model.inputs, [la.get_output_at(i) for la, i in uses] +
                        [la.get_input_at(i) for la, i in uses])
    values = probe.predict(inputs, verbose=0)
    outputs: dict[str, list] = {}
    layer_inputs: dict[str, list] = {}
    for (la, _), out, inp in zip(uses, values[:len(uses)], values[len(uses):], strict=True):
        outputs.setdefault(la.name, []).append(out)
        layer_inputs.setdefault(la.name, []).append(inp)
    by_name = {la.name: la for la in layers}

    def bounds(arrays) -> tuple[float, float]:
        return (min(0.0, *(float(np.min(a)) for a in arrays)),
                max(0.0, *(float(np.max(a)) for a in arrays)))

    count = 0
    for var in qat_model.non_trainable_variables:
        name = var.name.split(":")[0]
        match = _INPUT_RANGE.fullmatch(name)
        if match:
            low, high = bounds([inputs])
        else:
            match = _RANGE.fullmatch(name)
            if not match or match["layer"] not in outputs:
                continue
            layer = match["layer"]
            if match["where"] == "pre_activation":
                low, high = bounds([_pre_activation(by_name[layer], x)
                                    for x in layer_inputs[layer]])
            else:
                low, high = bounds(outputs[layer])
        var.assign(low if match["end"] == "min" else high)
        count += 1
    return count


def _model_nodes(model: keras.Model) -> set:
    """The layer call nodes of ``model``'s own graph (a layer may also have nodes elsewhere)."""
    return {node for nodes in model._nodes_by_depth.values() for node in nodes}


def kernel_variable(wrapper, layer):
    """The trained kernel variable of ``layer`` inside a QAT model's ``wrapper``.

    QAT replaces the layer's ``kernel`` attribute by its fake-quantized tensor, so callbacks
    that edit weights during QAT (pruning masks, clusters) must find the variable by name.
    """
    names = (f"{layer.name}/kernel", f"{layer.name}/depthwise_kernel")
    found = [w for w in wrapper.weights if w.name.split(":")[0] in names]
    if len(found) != 1:
        raise RuntimeError(f"{layer.name}: no single kernel variable in the QAT model")
    return found[0]


def load_qat_model(path) -> keras.Model:
    """Load a QAT model saved with ``model.save`` (``.keras``)."""
    with _tfmot().quantization.keras.quantize_scope(custom_objects()):
        return keras.models.load_model(path)
