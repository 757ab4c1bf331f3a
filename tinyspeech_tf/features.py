"""MFCC front-end shared by training (tf.data), evaluation and the C firmware tables.

Why one module: a keyword spotter is only as good as the agreement between the features it was
trained on and the features the board computes. The default :class:`FrontendConfig` is exactly
the MLPerf Tiny KWS MFCC (mlcommons/tiny ``get_dataset.py``), so the MLPerf reference model can
serve as an oracle, and :mod:`tinyspeech_tf.frontend_c` derives the C tables from the same
config so firmware cannot drift from training.

TensorFlow is imported lazily (inside functions) so ``tinyspeech --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyspeech_tf.audio import SAMPLE_RATE, fit_length, read_wav
from tinyspeech_tf.errors import UserError

# HTK mel scale constants used by tf.signal.linear_to_mel_weight_matrix.
_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0

# MLPerf Tiny KWS reference int8 model input quantization (also our default for C parity).
MLPERF_INPUT_SCALE = 0.5847029
MLPERF_INPUT_ZERO_POINT = 83


@dataclass(frozen=True)
class FrontendConfig:
    """Every number that defines the features; the default is the MLPerf Tiny KWS MFCC.

    Frozen and JSON-serialisable so a trained model can carry the exact front-end it needs.
    ``window`` is always the periodic Hann window (``tf.signal.hann_window``), the only one the
    MLPerf recipe and the C code implement.
    """

    sample_rate: int = SAMPLE_RATE
    clip_samples: int = 16000
    frame_length: int = 480
    frame_step: int = 320
    fft_length: int = 512
    num_mel_bins: int = 40
    lower_edge_hertz: float = 20.0
    upper_edge_hertz: float = 4000.0
    log_offset: float = 1e-6
    num_mfcc: int = 10
    window: str = "hann_periodic"

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Frames per clip: tf.signal.stft without end padding."""
        return 1 + (self.clip_samples - self.frame_length) // self.frame_step

    @property
    def num_spectrogram_bins(self) -> int:
        return self.fft_length // 2 + 1

    @property
    def feature_shape(self) -> tuple[int, int]:
        return (self.num_frames, self.num_mfcc)

    # ---- validation and serialisation ----------------------------------------------------
    def validate(self) -> None:
        """Raise UserError naming the bad field; configs often come from user-edited JSON."""
        ints = ("sample_rate", "clip_samples", "frame_length", "frame_step", "fft_length",
                "num_mel_bins", "num_mfcc")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UserError(f"front-end config: {name} must be a positive integer, "
                                f"got {value!r}")
        for name in ("lower_edge_hertz", "upper_edge_hertz", "log_offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise UserError(f"front-end config: {name} must be a finite number, "
                                f"got {value!r}")
        if self.window != "hann_periodic":
            raise UserError(f"front-end config: window {self.window!r} is not supported; "
                            "use 'hann_periodic'")
        if self.fft_length & (self.fft_length - 1) or self.fft_length < 4:
            raise UserError(f"front-end config: fft_length must be a power of two >= 4, "
                            f"got {self.fft_length}")
        if self.frame_length > self.fft_length:
            raise UserError(f"front-end config: frame_length {self.frame_length} exceeds "
                            f"fft_length {self.fft_length}")
        if self.clip_samples < self.frame_length:
            raise UserError(f"front-end config: clip_samples {self.clip_samples} is shorter "
                            f"than one frame ({self.frame_length})")
        if not 0.0 <= self.lower_edge_hertz < self.upper_edge_hertz <= self.sample_rate / 2:
            raise UserError("front-end config: need 0 <= lower_edge_hertz < upper_edge_hertz "
                            f"<= sample_rate/2, got {self.lower_edge_hertz}, "
                            f"{self.upper_edge_hertz}, {self.sample_rate}")
        if self.log_offset <= 0:
            raise UserError(f"front-end config: log_offset must be > 0 (it keeps log finite "
                            f"on silence), got {self.log_offset}")
        if self.num_mfcc > self.num_mel_bins:
            raise UserError(f"front-end config: num_mfcc {self.num_mfcc} exceeds "
                            f"num_mel_bins {self.num_mel_bins}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> FrontendConfig:
        if not isinstance(data, dict):
            raise UserError(f"front-end config: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"front-end config: unknown field(s) {', '.join(unknown)}; "
                            f"known fields are {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> FrontendConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"front-end config: not valid JSON ({err})") from None
        return cls.from_dict(data)

    def digest(self) -> str:
        """Short stable hash; keys feature caches so a changed config never reuses stale data."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


DEFAULT_CONFIG = FrontendConfig()

# Named front-ends a run can train on (``TrainConfig.frontend``); the run's ``frontend.json``
# then carries it to export, the C front-end and streaming, so nothing downstream needs the name.
FRONTENDS: dict[str, FrontendConfig] = {
    # MLPerf Tiny KWS: 40 ms window, 20 ms hop, 10 MFCCs -> 49 x 10 (the zoo's default).
    "mlperf_10x49": DEFAULT_CONFIG,
    # Honk, which the TinySpeech paper followed: 30 ms window, 10 ms hop, 40 MFCCs of 40 mel
    # bands, 20 Hz-4 kHz -> 98 x 40 (Honk's 101 frames come from centre padding we do not do).
    "honk_40x98": FrontendConfig(frame_step=160, num_mfcc=40),
}


def frontend_named(name: str) -> FrontendConfig:
    """The front-end preset ``name``; unknown names fail in one line."""
    try:
        return FRONTENDS[name]
    except KeyError:
        raise UserError(f"unknown front-end {name!r}; choose one of: {', '.join(FRONTENDS)}") \
            from None


# ---- constant tables (numpy, float64 maths rounded once to float32) --------------------------
def _hertz_to_mel(f: np.ndarray | float) -> np.ndarray:
    f = np.asarray(f, np.float64)
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + f / _MEL_BREAK_FREQUENCY_HERTZ)


def hann_window(config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Periodic Hann window as tf.signal.hann_window(frame_length, periodic=True)."""
    n = np.arange(config.frame_length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / config.frame_length)).astype(np.float32)


def mel_weight_matrix(config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """[num_spectrogram_bins, num_mel_bins], the formula of tf.signal.linear_to_mel_weight_matrix.

    Computed in float64 here (not by TensorFlow) so the generated C header is reproducible
    byte for byte on any machine; tests check it equals TF's float32 matrix to ~1e-6.
    """
    bins = config.num_spectrogram_bins
    freqs = np.linspace(0.0, config.sample_rate / 2.0, bins)[1:]
    spec_mel = _hertz_to_mel(freqs)[:, None]
    edges = np.linspace(_hertz_to_mel(config.lower_edge_hertz),
                        _hertz_to_mel(config.upper_edge_hertz), config.num_mel_bins + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    lower_slopes = (spec_mel - lower) / (center - lower)
    upper_slopes = (upper - spec_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)  # DC bin gets no weight


def dct_matrix(config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """[num_mfcc, num_mel_bins] as tf.signal.mfccs_from_log_mel_spectrograms.

    That function is an unnormalised DCT-II (2 * sum x_n cos(pi k (2n+1) / 2N)) times
    rsqrt(2N) for every k, including k = 0 (so not the 'ortho' DCT).
    """
    n_mel = config.num_mel_bins
    k = np.arange(config.num_mfcc, dtype=np.float64)[:, None]
    n = np.arange(n_mel, dtype=np.float64)[None, :]
    return (2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * n_mel))
            / np.sqrt(2.0 * n_mel)).astype(np.float32)


# ---- TensorFlow implementation ---------------------------------------------------------------
def mfcc(waveforms: Any, config: FrontendConfig = DEFAULT_CONFIG) -> Any:
    """float32 waveforms [..., clip_samples] in [-1, 1) -> MFCCs [..., num_frames, num_mfcc].

    Pure TF ops, so it runs batched and inside ``tf.data.Dataset.map``; this is the MLPerf
    Tiny recipe verbatim (stft -> abs -> mel -> log(+offset) -> mfccs[..., :num_mfcc]).
    """
    from tinyspeech_tf._compat import tf

    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    stfts = tf.signal.stft(waveforms, frame_length=config.frame_length,
                           frame_step=config.frame_step, fft_length=config.fft_length,
                           window_fn=tf.signal.hann_window)
    spectrograms = tf.abs(stfts)
    mel = tf.signal.linear_to_mel_weight_matrix(
        config.num_mel_bins, config.num_spectrogram_bins, config.sample_rate,
        config.lower_edge_hertz, config.upper_edge_hertz)
    mel_spec = tf.tensordot(spectrograms, mel, 1)
    log_mel = tf.math.log(mel_spec + config.log_offset)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :config.num_mfcc]


def fit_length_tf(waveforms: Any, config: FrontendConfig = DEFAULT_CONFIG) -> Any:
    """Zero-pad at the end or crop the last axis to clip_samples (the 1 s clip protocol) in TF."""
    from tinyspeech_tf._compat import tf

    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    n = tf.shape(waveforms)[-1]
    pad = tf.maximum(0, config.clip_samples - n)
    rank = tf.rank(waveforms)
    paddings = tf.concat([tf.zeros([rank - 1, 2], tf.int32), [[0, pad]]], axis=0)
    waveforms = tf.pad(waveforms, paddings)
    return waveforms[..., :config.clip_samples]


def model_features(waveforms: Any, config: FrontendConfig = DEFAULT_CONFIG) -> Any:
    """Waveforms of any length -> [..., num_frames, num_mfcc, 1], the layout models take."""
    from tinyspeech_tf._compat import tf

    return tf.expand_dims(mfcc(fit_length_tf(waveforms, config), config), -1)


# ---- numpy conveniences ----------------------------------------------------------------------
def features_from_samples(samples: np.ndarray,
                          config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """One clip or a batch ([..., n]) of float samples in [-1, 1) -> float32 [..., frames, mfcc].

    Short or empty clips are zero-padded and long ones cropped, as in training.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 0:
        raise UserError("features_from_samples: need a 1-D clip or a 2-D batch of clips")
    if x.ndim == 1:
        x = fit_length(x, config.clip_samples)
    else:
        lead = x.shape[:-1]
        rows = x.reshape(-1, x.shape[-1])
        x = np.stack([fit_length(row, config.clip_samples) for row in rows])
        x = x.reshape(*lead, config.clip_samples)
    if not np.all(np.isfinite(x)):
        raise UserError("features_from_samples: samples contain NaN or infinity")
    return np.asarray(mfcc(x, config).numpy(), dtype=np.float32)


def features_from_wav(path: str | os.PathLike, config: FrontendConfig = DEFAULT_CONFIG, *,
                      resample: bool = False) -> np.ndarray:
    """A wav file -> [frames, mfcc]; wrong sample rates are a UserError unless ``resample``."""
    samples, _ = read_wav(path, sample_rate=config.sample_rate, resample=resample)
    return features_from_samples(samples, config)


def quantize(features: np.ndarray, scale: float = MLPERF_INPUT_SCALE,
             zero_point: int = MLPERF_INPUT_ZERO_POINT) -> np.ndarray:
    """float features -> int8, bit-identical to kws_frontend_quantize() in C.

    float32 division, round half away from zero (C roundf), add zero point, clamp; NaN maps to
    the zero point. Identical arithmetic is what makes int8 parity tests meaningful.
    """
    x = np.asarray(features, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        v = x / np.float32(scale)
        # C roundf exactly: v - trunc(v) is exact in float32, so no x.5 - ulp misrounding.
        t = np.trunc(v)
        r = t + np.where(np.abs(v - t) >= np.float32(0.5), np.sign(v), np.float32(0.0))
        r = np.clip(np.nan_to_num(r, nan=0.0), -1000.0, 1000.0)
    q = np.where(np.isnan(x), zero_point, r.astype(np.int64) + zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float = MLPERF_INPUT_SCALE,
               zero_point: int = MLPERF_INPUT_ZERO_POINT) -> np.ndarray:
    return (np.asarray(q, np.float32) - zero_point) * np.float32(scale)


# ---- caching ---------------------------------------------------------------------------------
def cache_features(dataset: Any, cache_dir: str | os.PathLike | None,
                   config: FrontendConfig = DEFAULT_CONFIG) -> Any:
    """Map a tf.data dataset of (waveform, label) to (features [frames, mfcc, 1], label), cached.

    The MFCC is the slowest part of an epoch and never changes, so it is computed once: in
    memory if ``cache_dir`` is None, otherwise into files named by the config digest, so a
    changed front-end never silently reuses features of another config.
    """
    from tinyspeech_tf._compat import tf

    ds = dataset.map(lambda x, y: (model_features(x, config), y),
                     num_parallel_calls=tf.data.AUTOTUNE)
    if cache_dir is None:
        return ds.cache()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return ds.cache(str(cache_dir / f"mfcc-{config.digest()}"))


def features_npy_cache(paths: list[str | os.PathLike], cache_path: str | os.PathLike,
                       config: FrontendConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Features of many wav files, computed once into ``cache_path`` (.npy) and reused.

    A sidecar JSON records the config digest and the file list; any change recomputes.
    """
    cache_path = Path(cache_path)
    meta_path = cache_path.with_suffix(".json")
    meta = {"config": config.digest(), "files": [os.fspath(p) for p in paths]}
    if cache_path.exists() and meta_path.exists():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return np.load(cache_path)
        except (OSError, ValueError):
            pass
    clips = np.stack([fit_length(read_wav(p, sample_rate=config.sample_rate)[0],
                                 config.clip_samples) for p in paths]) if paths else \
        np.zeros((0, config.clip_samples), np.float32)
    feats = (features_from_samples(clips, config) if len(clips)
             else np.zeros((0, *config.feature_shape), np.float32))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_path.with_name(cache_path.name + f".tmp{os.getpid()}.npy")
    np.save(tmp, feats)
    os.replace(tmp, cache_path)
    meta_path.write_text(json.dumps(meta))
    return feats
