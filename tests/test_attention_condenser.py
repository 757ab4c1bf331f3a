"""AttentionCondenser: shapes, serialisation, both F modes, gradients, TFLM op contract."""

import numpy as np
import pytest

from tinyspeech_tf._compat import keras, tf
from tinyspeech_tf.layers import AttentionCondenser
from tinyspeech_tf.quantize import CONDENSER_OPS, convert_int8, op_set


def _apply(layer, shape, seed=0):
    x = np.random.default_rng(seed).standard_normal((2, *shape)).astype(np.float32)
    return x, layer(x).numpy()


@pytest.mark.parametrize("shape", [(49, 10, 4), (25, 5, 3), (7, 3, 2), (8, 8, 5)])
@pytest.mark.parametrize("f_mode", ["multiply", "residual"])
@pytest.mark.parametrize("embedding", ["conv", "depthwise"])
def test_output_shape_equals_input_shape(shape, f_mode, embedding):
    c = shape[-1]
    layer = AttentionCondenser((2 * c, 3), f_mode=f_mode, embedding=embedding)
    _, y = _apply(layer, shape)
    assert y.shape == (2, *shape)
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("f_mode", ["multiply", "residual"])
def test_f_modes_match_their_formulas(f_mode):
    """V' = V*A*S or V + V*A*S, with A the nearest-resized attention map."""
    layer = AttentionCondenser((4, 4), f_mode=f_mode, scale_init=0.7)
    x, y = _apply(layer, (7, 5, 3))
    a = layer.attention(tf.constant(x)).numpy()  # (2, 4, 3, 3): A * S, condensed
    assert a.shape == (2, 4, 3, 3)
    # Half-pixel nearest neighbour, as tf.image.resize does it.
    rows = np.minimum(((np.arange(7) + 0.5) * 4 / 7).astype(int), 3)
    cols = np.minimum(((np.arange(5) + 0.5) * 3 / 5).astype(int), 2)
    a_full = a[:, rows][:, :, cols]
    expected = x * a_full if f_mode == "multiply" else x + x * a_full
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_scale_to_zero_limits():
    """As S -> 0 the multiply mode silences V and the residual mode passes V through."""
    x = np.random.default_rng(1).standard_normal((1, 9, 5, 2)).astype(np.float32)
    mul = AttentionCondenser((2, 2), f_mode="multiply", scale_init=0.0)
    res = AttentionCondenser((2, 2), f_mode="residual", scale_init=0.0)
    np.testing.assert_allclose(mul(x).numpy(), 0.0, atol=1e-7)
    np.testing.assert_allclose(res(x).numpy(), x, atol=1e-7)


@pytest.mark.parametrize("kwargs", [
    {"embed_channels": (6, 3), "pool_size": 2, "f_mode": "residual"},
    {"embed_channels": (4, 5), "pool_size": (3, 2), "embedding": "depthwise",
     "use_batch_norm": True, "kernel_size": 5},
])
def test_get_config_round_trip(kwargs, tmp_path):
    inputs = keras.Input((49, 10, 2))
    outputs = AttentionCondenser(**kwargs, name="ac")(inputs)
    model = keras.Model(inputs, outputs)
    layer = model.get_layer("ac")
    clone = AttentionCondenser.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(2).standard_normal((3, 49, 10, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert isinstance(loaded.get_layer("ac"), AttentionCondenser)


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="f_mode"):
        AttentionCondenser((2, 2), f_mode="add")
    with pytest.raises(ValueError, match="embedding"):
        AttentionCondenser((2, 2), embedding="dense")
    with pytest.raises(ValueError, match="multiple"):
        AttentionCondenser((5, 2), embedding="depthwise")(np.zeros((1, 4, 4, 2), np.float32))


@pytest.mark.parametrize("f_mode", ["multiply", "residual"])
def test_gradients_reach_scale_and_embedding(f_mode):
    layer = AttentionCondenser((4, 3), f_mode=f_mode, use_batch_norm=True)
    x = tf.constant(np.random.default_rng(3).standard_normal((4, 9, 6, 2)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True) - 1.0))
    watched = {"scale": [layer.scale],
               "embed1": layer.sublayer("embed1").trainable_weights,
               "embed2": layer.sublayer("embed2").trainable_weights,
               "project": layer.sublayer("project").trainable_weights}
    for key, weights in watched.items():
        assert weights, key
        for weight, grad in zip(weights, tape.gradient(loss, weights), strict=True):
            assert grad is not None, weight.name
            assert float(tf.reduce_max(tf.abs(grad))) > 0, weight.name
    names = [w.name for w in layer.trainable_weights]
    assert any("embed1" in n for n in names), names  # sub-layer weights keep their scope


@pytest.mark.parametrize("f_mode", ["multiply", "residual"])
def test_converts_to_condenser_ops_only(f_mode):
    """Odd sizes (49x5) must not bring SHAPE/TILE/EXPAND_DIMS chains into the graph."""
    inputs = keras.Input((49, 5, 4))
    model = keras.Model(inputs, AttentionCondenser((4, 4), f_mode=f_mode)(inputs))
    rep = np.random.default_rng(4).standard_normal((8, 49, 5, 4)).astype(np.float32)
    ops = op_set(convert_int8(model, rep, allowed_ops=CONDENSER_OPS))
    assert "RESIZE_NEAREST_NEIGHBOR" in ops and "LOGISTIC" in ops
    assert ("ADD" in ops) == (f_mode == "residual")


@pytest.mark.parametrize("f_mode", ["multiply", "residual"])
def test_layer_and_functional_forms_compute_the_same(f_mode):
    """The zoo's stock-layer graph and the single layer share weights layout and maths."""
    from tinyspeech_tf.layers import attention_condenser
    from tinyspeech_tf.zoo import profile

    kwargs = dict(embedding="depthwise", f_mode=f_mode, use_batch_norm=True, scale_init=0.6)
    inputs = keras.Input((25, 5, 4))
    graph = keras.Model(inputs, attention_condenser(inputs, (8, 6), name="c", **kwargs))
    single = keras.Model(inputs, AttentionCondenser((8, 6), name="c", **kwargs)(inputs))
    rng = np.random.default_rng(5)
    values = {}
    for w in graph.weights:  # c_embed1/kernel in the graph is c/embed1/kernel in the layer
        value = rng.standard_normal(w.shape).astype(np.float32) * 0.5
        values[w.name.split(":")[0].replace("c_", "c/", 1)] = (
            np.abs(value) if "variance" in w.name else value)
    graph.set_weights([values[w.name.split(":")[0].replace("c_", "c/", 1)]
                       for w in graph.weights])
    assert sorted(w.name.split(":")[0] for w in single.weights) == sorted(values)
    single.set_weights([values[w.name.split(":")[0]] for w in single.weights])
    x = rng.standard_normal((3, 25, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(single(x).numpy(), graph(x).numpy(), rtol=1e-5, atol=1e-6)
    assert profile.total_macs(single) == profile.total_macs(graph) > 0


def _graph_condenser(shape, **kwargs):
    from tinyspeech_tf.layers import apply_condenser, condenser_layers

    inputs = keras.Input(shape)
    layers = condenser_layers(shape[-1], (2 * shape[-1], 4), name="c", **kwargs)
    return keras.Model(inputs, apply_condenser(layers, inputs)), layers


def test_depthwise_scale_is_the_same_function_as_the_mul():
    """A * S + 1 as a 1x1 depthwise conv: same weights, same output; in int8 one
    DEPTHWISE_CONV_2D and no MUL/ADD at the condensed resolution."""
    x = np.random.default_rng(3).standard_normal((4, 25, 5, 3)).astype(np.float32)
    mul, _ = _graph_condenser((25, 5, 3), f_mode="residual", fuse_residual=True,
                              embedding="depthwise")
    dw, _ = _graph_condenser((25, 5, 3), f_mode="residual", fuse_residual=True,
                             embedding="depthwise", scale_op="depthwise")
    weights = [w * 0.5 + 0.3 for w in mul.get_weights()]
    mul.set_weights(weights)
    dw.set_weights(weights)
    np.testing.assert_allclose(dw(x).numpy(), mul(x).numpy(), rtol=1e-5, atol=1e-6)
    ops = op_set(convert_int8(dw, x, allowed_ops=CONDENSER_OPS))
    assert "ADD" not in ops and "DEPTHWISE_CONV_2D" in ops
    assert set(op_set(convert_int8(mul, x, allowed_ops=CONDENSER_OPS))) >= {"ADD", "MUL"}


def test_hard_sigmoid_gate_matches_its_formula_and_converts_without_logistic():
    """A = relu6(z + 3) / 6 with z the projection (its bias starts at 3, S at scale_init / 6),
    V' = V * (1 + A' * S'), A' = relu6(z + 3) and S' = S / 6: no LOGISTIC in the int8 graph."""
    x = np.random.default_rng(4).standard_normal((2, 7, 5, 3)).astype(np.float32) * 3
    model, layers = _graph_condenser((7, 5, 3), f_mode="residual", fuse_residual=True,
                                     gate="hard_sigmoid", scale_init=0.9)
    assert layers["sigmoid"] is None
    np.testing.assert_allclose(layers["project"].bias.numpy(), 3.0)
    np.testing.assert_allclose(layers["scale"].scale.numpy(), 0.9 / 6, rtol=1e-6)
    k = layers["condense"](x)
    for step in ("embed1", "embed2"):
        k = layers[step](k)
    z = tf.nn.bias_add(tf.nn.conv2d(k, layers["project"].kernel, 1, "SAME"),
                       layers["project"].bias).numpy()  # before its activation
    gate = np.clip(z, 0.0, 6.0) * layers["scale"].scale.numpy() + 1.0
    rows = np.minimum(((np.arange(7) + 0.5) * 4 / 7).astype(int), 3)
    cols = np.minimum(((np.arange(5) + 0.5) * 3 / 5).astype(int), 2)
    np.testing.assert_allclose(model(x).numpy(), x * gate[:, rows][:, :, cols], rtol=1e-5,
                               atol=1e-5)
    ops = op_set(convert_int8(model, x, allowed_ops=CONDENSER_OPS))
    assert "LOGISTIC" not in ops and "MUL" in ops
