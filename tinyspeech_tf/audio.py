"""Reading and checking 16-bit PCM wav clips without third-party audio libraries.

Every pipeline stage (features, data, streaming, export) reads audio through here, so bad input
is reported the same way everywhere: one line naming the file and how to fix it.
"""

from __future__ import annotations

import os
import wave

import numpy as np

from tinyspeech_tf.errors import UserError

SAMPLE_RATE = 16000


def _open_error(path: str, err: Exception) -> UserError:
    """The one-line error for a wav the ``wave`` module cannot open."""
    if isinstance(err, FileNotFoundError):
        return UserError(f"{path}: no such file; check the path")
    if isinstance(err, (wave.Error, EOFError)):
        empty = os.path.exists(path) and os.path.getsize(path) == 0
        reason = "an empty file" if empty else (str(err) or "an incomplete header")
        return UserError(f"{path}: not a readable PCM wav file ({reason}); copy it again, or "
                         "re-encode it as 16-bit PCM, e.g. `sox IN -b 16 -e signed OUT.wav`")
    reason = (getattr(err, "strerror", None) or str(err)).lower()
    return UserError(f"{path}: cannot read it ({reason}); check its permissions")


def _check_format(path: str, n: int, held: int, width: int, channels: int, rate: int,
                  sample_rate: int | None, resample: bool, mix_to_mono: bool) -> None:
    """read_wav's refusals of a header (``held``: whole samples the file holds)."""
    if held < n:
        raise UserError(f"{path}: truncated: its header says {n} samples, the file holds "
                        f"{held}; copy it again or re-record it")
    if width not in (1, 2, 4):
        raise UserError(f"{path}: {8 * width}-bit samples are not supported; use 16-bit PCM")
    if channels > 1 and not mix_to_mono:
        raise UserError(f"{path}: {channels} channels; give a mono clip "
                        "(e.g. `sox IN -c 1 OUT.wav`)")
    if sample_rate is not None and rate != sample_rate and not resample:
        raise UserError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz; "
                        f"resample it (e.g. `sox IN -r {sample_rate} OUT.wav`) or ask for "
                        "resampling")


def check_wav(path: str | os.PathLike, *, sample_rate: int | None = SAMPLE_RATE,
              resample: bool = False, mix_to_mono: bool = True) -> int:
    """What :func:`read_wav` would refuse about ``path``, found from its header and size alone
    (no samples read); returns the samples per channel. Why: a dataset of 100,000 clips is
    checked in seconds before a run starts, and its clips are read only when a batch needs
    them."""
    path = os.fspath(path)
    try:
        with wave.open(path, "rb") as w:
            channels, width, rate, n = (w.getnchannels(), w.getsampwidth(),
                                        w.getframerate(), w.getnframes())
            start = getattr(getattr(w, "_data_chunk", None), "offset", None)
        size = os.path.getsize(path)
    except (OSError, wave.Error, EOFError) as err:
        raise _open_error(path, err) from None
    frame = max(1, width * channels)
    held = n if start is None else min(n, max(0, size - start) // frame)
    _check_format(path, n, held, width, channels, rate, sample_rate, resample, mix_to_mono)
    return n


def read_wav(path: str | os.PathLike, *, sample_rate: int | None = SAMPLE_RATE,
             resample: bool = False, mix_to_mono: bool = True) -> tuple[np.ndarray, int]:
    """Read a PCM wav file as float32 samples in [-1, 1) and its rate.

    Why strict: a 44.1 kHz or stereo clip silently fed to a 16 kHz model is the classic
    "works in Python, fails on the board" bug, so a rate mismatch is an error unless the caller
    asks for ``resample``. Stereo is averaged to mono (``mix_to_mono``), or refused.
    """
    path = os.fspath(path)
    try:
        with wave.open(path, "rb") as w:
            channels, width, rate, n = (w.getnchannels(), w.getsampwidth(),
                                        w.getframerate(), w.getnframes())
            raw = w.readframes(n)
    except (OSError, wave.Error, EOFError) as err:
        raise _open_error(path, err) from None
    _check_format(path, n, len(raw) // max(1, width * channels), width, channels, rate,
                  sample_rate, resample, mix_to_mono)
    dtype = {1: np.uint8, 2: "<i2", 4: "<i4"}[width]
    usable = len(raw) // (width * channels) * width * channels
    data = np.frombuffer(raw[:usable], dtype=dtype).astype(np.float32)
    if width == 1:
        data = (data - 128.0) / 128.0
    else:
        data /= float(2 ** (8 * width - 1))
    data = data.reshape(-1, channels)
    if channels > 1:
        data = data.mean(axis=1, keepdims=True)
    samples = data[:, 0]
    if sample_rate is not None and rate != sample_rate:
        samples = resample_audio(samples, rate, sample_rate)
        rate = sample_rate
    return samples, rate


def resample_audio(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy), used only when a caller opts in."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(samples, rate_out // g, rate_in // g).astype(np.float32)


def fit_length(samples: np.ndarray, length: int = SAMPLE_RATE) -> np.ndarray:
    """Zero-pad at the end or crop to ``length`` samples (the 1 s clip protocol)."""
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float [-1, 1) samples to int16 as a microphone driver would deliver them."""
    return np.clip(np.round(np.asarray(samples) * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM atomically (temp file, then rename): never a half-written clip."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    pcm = samples if np.asarray(samples).dtype == np.int16 else to_int16(samples)
    with wave.open(tmp, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    os.replace(tmp, path)
