"""Shared and low-rank TinySpeech-M: stored once in the int8 flatbuffer, TFLM ops, bit-exact.

Each variant trains one float step and one QAT step (the path `tinyspeech train` ships),
converts to int8, and the flatbuffer is read back: how many distinct weight buffers it stores
and which weight tensors several ops read.
"""

import functools
import json

import numpy as np
import pytest

from tinyspeech_tf import quantize, tflm, zoo
from tinyspeech_tf._compat import keras
from tinyspeech_tf.quantize import lut as compress
from tinyspeech_tf.quantize import qat

# kwargs -> (distinct weight buffers, sorted consumer counts of the shared weight tensors).
# M stores 12 learnt filters: stem, 3 x (depthwise, pointwise, projection), head, dense; its 3
# scales S (each the kernel of a 1x1 depthwise conv, SCALES); and the 2 constant kernels of its
# depthwise global pool (POOL), in every variant.
POOL = 2
SCALES = 3
VARIANTS = {
    "none": ({}, 12 + SCALES + POOL, []),
    # one condenser's depthwise, pointwise, projection and scale, each read by 3 ops
    "block": ({"share": "block"}, 6 + 1 + POOL, [3, 3, 3, 3]),
    # equal widths: depthwise and pointwise shared by 3 condensers, 3 own projections and S
    "embedding": ({"share": "embedding", "embed_widths": (10, 10, 10)}, 8 + SCALES + POOL,
                  [3, 3]),
    # 20 factors; 12->4 (3 pointwise downs and the width-12 projection's down) and 4->12
    # (3 projection ups) are one tensor each
    "low_rank_shared": ({"low_rank": 4, "low_rank_share": True}, 15 + SCALES + POOL, [3, 4]),
    "low_rank_head": ({"low_rank": 8, "low_rank_layers": ["head", "dense"]},
                      14 + SCALES + POOL, []),
}


def _trained_int8(kwargs: dict) -> tuple[keras.Model, bytes]:
    return _trained_int8_cached(json.dumps(kwargs, sort_keys=True))


@functools.cache
def _trained_int8_cached(key: str) -> tuple[keras.Model, bytes]:
    kwargs = json.loads(key)
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 20, (16, 49, 10, 1)).astype(np.float32)
    y = rng.integers(0, 12, 16)
    model = zoo.get("tinyspeech_m", **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    q = qat.quantize_model(model, per_channel=False)
    qat.init_ranges(q, model, x)
    q.compile(optimizer=keras.optimizers.SGD(0.001), loss="sparse_categorical_crossentropy")
    q.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return model, quantize.convert_int8(q, x, per_channel=False)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_stores_shared_weights_once_and_runs_bit_exact(variant):
    kwargs, buffers, shared = VARIANTS[variant]
    model, tflite_bytes = _trained_int8(kwargs)
    storage = compress.weight_storage(tflite_bytes)
    assert storage["weight_buffers"] == buffers, storage
    assert sorted(len(t["consumers"]) for t in storage["shared"]) == shared
    # Every use of a shared weight is a conv reading the one tensor.
    for t in storage["shared"]:
        assert {c["kind"] for c in t["consumers"]} <= {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert set(quantize.op_set(tflite_bytes)) <= quantize.TINYSPEECH_OPS
    x = np.random.default_rng(7).integers(-128, 128, (12, 49, 10, 1)).astype(np.int8)
    np.testing.assert_array_equal(tflm.run_tflm(tflite_bytes, x),
                                  tflm.run_tflite_reference(tflite_bytes, x))


def test_shared_buffers_hold_fewer_weight_bytes_than_the_plain_model():
    _, plain = _trained_int8({})
    _, block = _trained_int8({"share": "block"})
    plain_bytes = compress.weight_storage(plain)["weight_bytes"]
    block_bytes = compress.weight_storage(block)["weight_bytes"]
    # Two of three condensers' filters are gone (one width-12 condenser remains).
    # Plain: 3 depthwise (108 B) + pointwise and projection 12 x (8 + 12 + 10) each + 3 scales
    # (12 B); block: one width-12 condenser.
    assert plain_bytes - block_bytes == (3 * 108 + 2 * 12 * 30 + 3 * 12) - (108 + 2 * 12 * 12
                                                                            + 12)
