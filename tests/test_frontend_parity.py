"""C front-end (host gcc + ctypes) vs the TensorFlow front-end, on every real clip we have.

Marked ``firmware`` because it compiles C (``make firmware-check``); it runs in ``make test`` too.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from conftest import require_shared, require_tools

from tinyspeech_tf import frontend_bench as B
from tinyspeech_tf import frontend_c as C
from tinyspeech_tf.audio import to_int16
from tinyspeech_tf.features import (
    DEFAULT_CONFIG,
    MLPERF_INPUT_SCALE,
    MLPERF_INPUT_ZERO_POINT,
    FrontendConfig,
    features_from_samples,
    mel_weight_matrix,
    quantize,
)

pytestmark = pytest.mark.firmware
SCALE, ZP = MLPERF_INPUT_SCALE, MLPERF_INPUT_ZERO_POINT


def test_committed_header_is_fresh() -> None:
    """firmware/common/kws_frontend_tables.h must equal a fresh generation from the config."""
    committed = C.HEADER_PATH.read_text()
    assert committed.splitlines()[0].startswith("/* GENERATED FILE")
    assert C.GENERATE_COMMAND in committed.splitlines()[0]
    assert committed == C.generate_header(DEFAULT_CONFIG), (
        f"stale {C.HEADER_PATH.name}: run `{C.GENERATE_COMMAND}`")


def test_header_follows_config_and_sparse_mel_is_lossless() -> None:
    other = C.generate_header(FrontendConfig(num_mfcc=13, fft_length=1024))
    assert "#define KWS_FE_NUM_MFCC 13" in other and "#define KWS_FE_NUM_BINS 513" in other
    starts, counts, offsets, weights = C.sparse_mel()
    dense = np.zeros((257, 40), np.float32)
    for m in range(40):
        dense[starts[m]:starts[m] + counts[m], m] = weights[offsets[m]:offsets[m] + counts[m]]
    np.testing.assert_array_equal(dense, mel_weight_matrix())
    assert len(weights) < 257 * 40 // 8  # the point of storing it sparse


@pytest.fixture(scope="session")
def host(tmp_path_factory) -> C.HostFrontend:
    require_tools("gcc")
    lib, warnings = C.build_host_library(tmp_path_factory.mktemp("host_frontend"))
    assert warnings.strip() == "", f"gcc -Wall -Wextra warnings:\n{warnings}"
    return C.HostFrontend(lib)


def test_streaming_with_frames_three_deep_matches_python(tmp_path) -> None:
    """Honk's front-end (30 ms frames every 10 ms) keeps two frames' worth of overlap: streamed
    in uneven chunks, the C front-end gives its own whole-clip frames exactly and Python's
    within float rounding."""
    require_tools("gcc")
    from tinyspeech_tf.features import features_from_samples, frontend_named

    honk = frontend_named("honk_40x98")
    lib, warnings = C.build_host_library(tmp_path, config=honk)
    assert warnings.strip() == ""
    fe = C.HostFrontend(lib, honk)
    rng = np.random.default_rng(5)
    t = np.arange(honk.clip_samples) / honk.sample_rate
    pcm = to_int16(0.3 * np.sin(2 * np.pi * 440 * t * (1 + t)) + 0.01 * rng.standard_normal(len(t)))
    whole = fe.clip(pcm)
    for chunk in (1, 37, 160, 333):
        streamed, _ = fe.stream(pcm, chunk)
        np.testing.assert_array_equal(streamed, whole)
    python = features_from_samples(pcm.astype(np.float32) / 32768.0, honk)
    np.testing.assert_allclose(whole, python, atol=2e-3, rtol=1e-3)


@pytest.fixture(scope="session")
def clips() -> tuple[np.ndarray, np.ndarray, int]:
    """(float clips of val + micro_speech test clips, val labels, number of val clips)."""
    shared = require_shared(*B.VAL_SUBDIR).parents[2]
    val, labels, _ = B.load_val(shared)
    assert len(val) == 487
    micro = sorted(shared.joinpath(*B.MICRO_SPEECH_SUBDIR).glob("*.wav"))
    assert micro, "micro_speech test clips missing"
    return np.concatenate([val, B.load_clips(micro)]), labels, len(val)


@pytest.fixture(scope="session")
def features(host, clips) -> dict[str, np.ndarray]:
    x, _, _ = clips
    pcm = np.stack([to_int16(c) for c in x])
    # read_wav gives x/32768 of int16 samples, so the round trip to int16 is exact
    np.testing.assert_array_equal(pcm.astype(np.float32) / 32768.0, x)
    py = features_from_samples(x)
    c = np.stack([host.clip(p) for p in pcm])
    return {"pcm": pcm, "py": py, "c": c, "q_py": quantize(py, SCALE, ZP),
            "q_c": host.quantize(c, SCALE, ZP)}


def test_float_parity_on_every_clip(features) -> None:
    py, c = features["py"], features["c"]
    bad = B.float_violations(c, py)
    assert np.all(np.isfinite(c))
    assert not bad.any(), (f"{bad.sum()} entries beyond max(1e-2, 1e-4 rel); "
                           f"max abs diff {np.abs(c - py).max()}")
    # No systematic bias per coefficient (measured ~1e-6): catches subtle drifts the elementwise
    # tolerance alone accepts, e.g. x/32767 instead of x/32768 shifts c0 by 2.7e-4.
    bias = np.abs((c - py).mean(axis=(0, 1)))
    assert bias.max() < 2e-5, bias


def test_int8_parity_on_every_clip(features) -> None:
    q_py, q_c = features["q_py"], features["q_c"]
    diff = np.abs(q_py.astype(np.int16) - q_c.astype(np.int16))
    assert diff.max() <= 1
    assert np.mean(diff == 0) >= 0.999


def test_streaming_equals_whole_clip_exactly(host, features) -> None:
    for pcm, whole in zip(features["pcm"], features["c"], strict=True):
        frames, per_push = host.stream(pcm, 320)
        assert per_push == [0] + [1] * 49
        np.testing.assert_array_equal(frames, whole)


@pytest.mark.parametrize("chunk", [1, 7, 160, 480, 1000, 16000])
def test_streaming_any_chunk_size(host, chunk) -> None:
    rng = np.random.default_rng(chunk)
    pcm = rng.integers(-8000, 8000, 16000).astype(np.int16)
    frames, per_push = host.stream(pcm, chunk)
    assert sum(per_push) == 49
    np.testing.assert_array_equal(frames, host.clip(pcm))


def test_stream_continues_past_one_clip(host) -> None:
    """Frame k of an endless stream covers samples [320k, 320k + 480)."""
    rng = np.random.default_rng(1)
    pcm = rng.integers(-3000, 3000, 32000).astype(np.int16)
    frames, _ = host.stream(pcm, 320)
    assert len(frames) == 1 + (32000 - 480) // 320
    np.testing.assert_array_equal(frames[60], host.clip(pcm[320 * 60:])[0])


def test_quantize_c_equals_python_bit_for_bit(host) -> None:
    rng = np.random.default_rng(0)
    halves = (np.arange(-300, 300) + 0.5).astype(np.float32) * np.float32(SCALE)
    x = np.concatenate([rng.normal(0, 40, 20000).astype(np.float32), halves,
                        np.array([0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, np.nan], np.float32)])
    for scale, zp in ((SCALE, ZP), (1.0, 0), (0.25, -128)):
        np.testing.assert_array_equal(host.quantize(x, scale, zp), quantize(x, scale, zp))


@pytest.mark.parametrize("kind", ["silence", "full_scale", "one_lsb"])
def test_edge_signals_are_finite_and_match(host, kind) -> None:
    n = np.arange(16000)
    pcm = {"silence": np.zeros(16000),
           "full_scale": np.where((n // 20) % 2, 32767, -32768),
           "one_lsb": np.where(n % 3 == 0, 1, 0)}[kind].astype(np.int16)
    c = host.clip(pcm)
    py = features_from_samples(pcm.astype(np.float32) / 32768.0)
    assert np.all(np.isfinite(c)) and np.all(np.isfinite(py))
    assert not B.float_violations(c, py).any(), np.abs(c - py).max()


def test_feature_window_keeps_last_49_frames(host) -> None:
    lib = host.lib
    win = (ctypes.c_float * (49 * 10 + 4))()
    lib.kws_window_init(win)
    lib.kws_window_ready.restype = ctypes.c_int
    for i in range(60):
        frame = (ctypes.c_float * 10)(*([float(i)] * 10))
        lib.kws_window_push(win, frame)
        assert bool(lib.kws_window_ready(win)) == (i >= 48)
    data = np.ctypeslib.as_array(win)[:490].reshape(49, 10)
    np.testing.assert_array_equal(data[:, 0], np.arange(11, 60))


def test_oracle_accuracy_python_and_c(clips, features) -> None:
    model = require_shared(*B.ORACLE_MODEL)
    assert B.oracle_input_quantization(model) == pytest.approx((SCALE, ZP))
    _, labels, n_val = clips
    acc_py = np.mean(B.oracle_predictions(model, features["q_py"][:n_val]) == labels)
    acc_c = np.mean(B.oracle_predictions(model, features["q_c"][:n_val]) == labels)
    assert acc_py >= 0.89, f"Python features give {acc_py:.4f} < 0.89 on the MLPerf oracle"
    assert abs(acc_c - acc_py) <= 0.003, (acc_c, acc_py)
