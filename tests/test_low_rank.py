"""Low-rank factorisation layers and the zoo's share / low_rank options (float side)."""

import numpy as np
import pytest

from tinyspeech_tf import zoo
from tinyspeech_tf._compat import keras
from tinyspeech_tf.layers import low_rank as lr


def test_factorises_only_when_smaller():
    assert lr.factorises(4, 12, 12)           # 4 * 24 = 96 < 144
    assert not lr.factorises(6, 12, 12)       # 6 * 24 = 144: no saving
    assert not lr.factorises(12, 108, 12)     # rank not below min(fan_in, fan_out)
    assert not lr.factorises(0, 12, 12)


def test_conv2d_pair_shapes_params_and_output():
    inputs = keras.Input((25, 5, 12))
    pair = lr.conv2d(12, 28, 3, rank=4, activation="relu", name="head")
    assert isinstance(pair, lr.Factorised)
    out = pair(inputs)
    assert tuple(out.shape) == (None, 25, 5, 28)
    down, up = pair.layers
    assert down.kernel.shape == (3, 3, 12, 4) and down.bias is None
    assert up.kernel.shape == (1, 1, 4, 28) and up.bias is not None
    assert up.get_config()["activation"] == "relu"
    assert down.get_config()["activation"] == "linear"
    # Too large a rank keeps the plain layer.
    assert isinstance(lr.conv2d(12, 8, 1, rank=6, name="pw"), keras.layers.Conv2D)


def test_dense_pair_computes_the_product_of_its_factors():
    pair = lr.dense(28, 12, rank=3, name="fc")
    x = np.random.default_rng(0).standard_normal((2, 28)).astype(np.float32)
    pair(keras.Input((28,)))  # builds both factors
    y = np.asarray(pair(x))
    w = pair.down.kernel.numpy() @ pair.up.kernel.numpy()  # rank-3 (28, 12) matrix
    np.testing.assert_allclose(y, x @ w + pair.up.bias.numpy(), rtol=1e-5, atol=1e-5)
    assert np.linalg.matrix_rank(w) == 3


def test_factor_bank_shares_by_shape_only_when_asked():
    shared, private = lr.FactorBank(share=True), lr.FactorBank(share=False)
    a = lr.conv2d(12, 8, 1, rank=4, bank=shared, name="a")
    b = lr.conv2d(12, 10, 1, rank=4, bank=shared, name="b")
    assert a.down is b.down and a.up is not b.up  # same 12->4 factor, different 4->8/4->10
    c = lr.conv2d(12, 8, 1, rank=4, bank=private, name="c")
    d = lr.conv2d(12, 8, 1, rank=4, bank=private, name="d")
    assert c.down is not d.down


@pytest.mark.parametrize("kwargs,params", [
    ({}, 4702),
    # A condenser of width w on 12 channels: depthwise 108 + 12, pointwise 12w + w,
    # projection 12w + 12, scale 12 = 144 + 25w. Block sharing keeps one, of width 12.
    ({"share": "block"}, 4702 - sum(144 + 25 * w for w in (8, 12, 10)) + (144 + 25 * 12)),
    # head 3x3x12->28 as rank 8: 108*8 + 8*28 + 28 bias; dense 28->12 as 28*8 + 8*12 + 12
    ({"low_rank": 8, "low_rank_layers": ["head", "dense"]},
     4702 - (3024 + 28) - (336 + 12) + (864 + 224 + 28) + (224 + 96 + 12)),
])
def test_zoo_param_counts(kwargs, params):
    assert zoo.get("tinyspeech_m", **kwargs).count_params() == params


def test_share_block_keeps_only_the_first_condensers_weights():
    model = zoo.get("tinyspeech_m", share="block")
    names = {w.name for w in model.weights}
    assert not any(n.startswith(("condenser2_embed", "condenser3_project")) for n in names)
    assert any(n.startswith("condenser1_embed1") for n in names)


def test_embedding_sharing_needs_equal_widths():
    # M's widths 8/12/10 differ: nothing to share, the same network.
    assert zoo.get("tinyspeech_m", share="embedding").count_params() == 4702
    equal = zoo.get("tinyspeech_m", share="embedding", embed_widths=(10, 10, 10))
    unshared = zoo.get("tinyspeech_m", embed_widths=(10, 10, 10))
    per_condenser = 108 + 12 + 12 * 10 + 10  # depthwise + its bias + pointwise + its bias
    assert unshared.count_params() - equal.count_params() == 2 * per_condenser


@pytest.mark.parametrize("kwargs,message", [
    ({"share": "all"}, "share must be one of"),
    ({"low_rank": -1}, "low_rank must be >= 0"),
    ({"low_rank": 4, "low_rank_layers": ["stem"]}, "low_rank_layers must be"),
])
def test_bad_options_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        zoo.get("tinyspeech_m", **kwargs)
