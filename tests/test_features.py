"""Python/TF front-end: MLPerf defaults, config JSON, tables vs TF, bad input, quantize, caching."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from tinyspeech_tf import features as F
from tinyspeech_tf.audio import read_wav, resample_audio, write_wav
from tinyspeech_tf.errors import UserError


def _tone(n: int = 16000, freq: float = 440.0, amp: float = 0.3, rate: int = 16000) -> np.ndarray:
    t = np.arange(n) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_default_config_is_mlperf_tiny_kws() -> None:
    c = F.DEFAULT_CONFIG
    assert (c.sample_rate, c.clip_samples, c.frame_length, c.frame_step, c.fft_length) == \
        (16000, 16000, 480, 320, 512)
    assert (c.num_mel_bins, c.lower_edge_hertz, c.upper_edge_hertz) == (40, 20.0, 4000.0)
    assert (c.log_offset, c.num_mfcc) == (1e-6, 10)
    assert c.num_frames == 49 and c.num_spectrogram_bins == 257
    assert c.feature_shape == (49, 10)


def test_config_json_round_trip_and_digest() -> None:
    c = F.FrontendConfig(num_mfcc=13, upper_edge_hertz=7600.0)
    again = F.FrontendConfig.from_json(c.to_json())
    assert again == c
    assert again.digest() == c.digest() != F.DEFAULT_CONFIG.digest()
    assert json.loads(F.DEFAULT_CONFIG.to_json())["frame_step"] == 320


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"frame_lenght": 480}', "unknown field(s) frame_lenght"),
    ('{"fft_length": 500}', "power of two"),
    ('{"frame_length": 1024}', "exceeds fft_length"),
    ('{"num_mel_bins": 0}', "positive integer"),
    ('{"upper_edge_hertz": 9000.0}', "upper_edge_hertz"),
    ('{"log_offset": 0.0}', "log_offset"),
    ('{"window": "hamming"}', "not supported"),
    ('{"num_mfcc": "10"}', "positive integer"),
])
def test_config_validation_is_user_error(text: str, needle: str) -> None:
    with pytest.raises(UserError) as info:
        F.FrontendConfig.from_json(text)
    assert needle in str(info.value)


def test_tables_match_tensorflow() -> None:
    from tinyspeech_tf._compat import tf

    c = F.DEFAULT_CONFIG
    tf_mel = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0).numpy()
    np.testing.assert_allclose(F.mel_weight_matrix(c), tf_mel, atol=2e-5)
    tf_win = tf.signal.hann_window(480, periodic=True).numpy()
    np.testing.assert_allclose(F.hann_window(c), tf_win, atol=1e-6)
    # DCT as a matrix: push the identity through TF's mfccs_from_log_mel_spectrograms.
    tf_dct = tf.signal.mfccs_from_log_mel_spectrograms(np.eye(40, dtype=np.float32)).numpy()
    np.testing.assert_allclose(F.dct_matrix(c), tf_dct[:, :10].T, atol=1e-6)
    # not the 'ortho' DCT: coefficient 0 has the same scale as the others
    assert F.dct_matrix(c)[0, 0] == pytest.approx(2 / np.sqrt(80), rel=1e-6)


def test_mfcc_matches_numpy_reference_pipeline() -> None:
    """Independent float64 numpy re-implementation of the MLPerf recipe on a noisy tone."""
    rng = np.random.default_rng(0)
    x = (_tone() + rng.normal(0, 0.05, 16000)).astype(np.float32)
    c = F.DEFAULT_CONFIG
    frames = np.stack([x[320 * k:320 * k + 480] for k in range(49)]).astype(np.float64)
    spec = np.abs(np.fft.rfft(frames * F.hann_window(c), n=512))
    logmel = np.log(spec @ F.mel_weight_matrix(c).astype(np.float64) + 1e-6)
    ref = logmel @ F.dct_matrix(c).T.astype(np.float64)
    # tight enough to catch a symmetric Hann window (1e-2) or x/32767 scaling (3e-4)
    np.testing.assert_allclose(F.features_from_samples(x), ref, atol=1e-4)


def test_batched_and_channel_shapes_and_tf_data() -> None:
    from tinyspeech_tf._compat import tf

    batch = np.stack([_tone(freq=f) for f in (300.0, 1000.0, 2500.0)])
    out = F.mfcc(batch).numpy()
    assert out.shape == (3, 49, 10)
    np.testing.assert_allclose(out[1], F.features_from_samples(batch[1]), atol=1e-5)
    assert F.model_features(batch[:, :12000]).shape == (3, 49, 10, 1)
    ds = tf.data.Dataset.from_tensor_slices((batch, np.arange(3)))
    got = [f.numpy() for f, _ in ds.map(lambda w, y: (F.model_features(w), y))]
    np.testing.assert_allclose(np.stack(got)[..., 0], out, atol=1e-5)


def test_short_empty_and_long_clips_are_padded_or_cropped() -> None:
    x = _tone(8000)
    padded = np.concatenate([x, np.zeros(8000, np.float32)])
    np.testing.assert_array_equal(F.features_from_samples(x), F.features_from_samples(padded))
    empty = F.features_from_samples(np.zeros(0, np.float32))
    assert empty.shape == (49, 10) and np.all(np.isfinite(empty))
    long = _tone(24000)
    np.testing.assert_array_equal(F.features_from_samples(long),
                                  F.features_from_samples(long[:16000]))


def test_silence_hits_log_floor_not_minus_inf() -> None:
    feats = F.features_from_samples(np.zeros(16000, np.float32))
    assert np.all(np.isfinite(feats))
    # log(0 + 1e-6) in every mel bin, so MFCC = log(1e-6) * row sums of the DCT matrix.
    expected = np.log(np.float32(1e-6)) * F.dct_matrix().sum(axis=1)
    np.testing.assert_allclose(feats, np.broadcast_to(expected, (49, 10)), atol=1e-3)


def test_nan_samples_are_rejected() -> None:
    x = _tone()
    x[5] = np.nan
    with pytest.raises(UserError, match="NaN"):
        F.features_from_samples(x)


def test_wrong_rate_is_user_error_unless_resampling(tmp_path) -> None:
    path = tmp_path / "clip44k.wav"
    write_wav(path, _tone(44100, rate=44100), rate=44100)
    with pytest.raises(UserError, match="44100 Hz"):
        F.features_from_wav(path)
    feats = F.features_from_wav(path, resample=True)
    raw, rate = read_wav(path, sample_rate=None)
    assert rate == 44100 and len(raw) == 44100
    ref = F.features_from_samples(resample_audio(raw, 44100, 16000))
    assert feats.shape == (49, 10)
    np.testing.assert_array_equal(feats, ref)


def test_stereo_is_mixed_to_mono(tmp_path) -> None:
    left, right = _tone(freq=500.0), _tone(freq=1500.0, amp=0.1)
    pcm = np.stack([left, right], axis=1)
    pcm16 = np.clip(np.round(pcm * 32768), -32768, 32767).astype("<i2")
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm16.tobytes())
    mono = pcm16.astype(np.float32).mean(axis=1) / 32768.0
    np.testing.assert_allclose(F.features_from_wav(path), F.features_from_samples(mono),
                               atol=1e-5)


def test_quantize_rounds_half_away_from_zero_and_saturates() -> None:
    x = np.array([0.5, -0.5, 1.5, -2.5, np.nextafter(np.float32(0.5), np.float32(0)), 2.49,
                  300.0, -300.0, np.inf, -np.inf, np.nan], np.float32)
    q = F.quantize(x, scale=1.0, zero_point=0)
    np.testing.assert_array_equal(q, [1, -1, 2, -3, 0, 2, 127, -128, 127, -128, 0])
    q83 = F.quantize(np.array([0.0, 0.5847029, -100.0], np.float32))
    np.testing.assert_array_equal(q83, [83, 84, -88])
    assert q83.dtype == np.int8
    np.testing.assert_allclose(F.dequantize(q83)[:2], [0.0, 0.5847029], rtol=1e-6)


def test_feature_cache_files_are_keyed_by_config(tmp_path) -> None:
    from tinyspeech_tf._compat import tf

    ds = tf.data.Dataset.from_tensor_slices((np.stack([_tone(), _tone(freq=900.0)]), [0, 1]))
    cached = F.cache_features(ds, tmp_path / "cache")
    first = [f.numpy() for f, _ in cached]
    assert first[0].shape == (49, 10, 1)
    files = list((tmp_path / "cache").iterdir())
    assert files and all(F.DEFAULT_CONFIG.digest() in p.name for p in files)
    np.testing.assert_array_equal(first[1], [f.numpy() for f, _ in cached][1])


def test_npy_cache_computes_once(tmp_path, monkeypatch) -> None:
    paths = []
    for i, freq in enumerate((400.0, 800.0)):
        paths.append(tmp_path / f"c{i}.wav")
        write_wav(paths[-1], _tone(freq=freq))
    cache = tmp_path / "feats.npy"
    feats = F.features_npy_cache(paths, cache)
    assert feats.shape == (2, 49, 10) and cache.exists()

    def boom(*_a, **_k):
        raise AssertionError("recomputed although the cache matches")

    monkeypatch.setattr(F, "features_from_samples", boom)
    np.testing.assert_array_equal(F.features_npy_cache(paths, cache), feats)
    with pytest.raises(AssertionError, match="recomputed"):  # other config: must recompute
        F.features_npy_cache(paths, cache, F.FrontendConfig(num_mfcc=13))


def test_bench_without_shared_is_one_line_user_error(tmp_path, monkeypatch) -> None:
    import argparse

    from tinyspeech_tf import frontend_c
    from tinyspeech_tf.apps import bench_frontend as frontend_bench

    monkeypatch.setattr(frontend_c, "shared_dir", lambda: tmp_path / "no-shared")
    parser = argparse.ArgumentParser()
    frontend_bench.add_arguments(parser)
    with pytest.raises(UserError, match="../shared data not found") as info:
        frontend_bench.run(parser.parse_args(["--json", str(tmp_path / "out.json")]))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.json").exists()
