"""``tinyspeech stream-make OUT.wav --data VAL_DIR``: a long test recording with a label track.

Why: streaming detection (``tinyspeech stream``) needs continuous audio in which every keyword's
position is known, so hits, misses and false alarms per hour can be counted. Recording that by
hand is slow and unrepeatable; this builds it from held-out clips instead: validation clips
(keywords, unknown words and silence clips, in a seeded random order) placed one after another
with random gaps, over continuous background noise cut from the official Speech Commands noise
files, and writes ``OUT.wav`` plus ``OUT.csv`` (``start_s,end_s,label,clip`` for every keyword
utterance; unknown words and silence are in the audio but not in the track).

Each utterance's span is where the clip's speech is, found by energy: 10 ms frames at least
``max(peak - 20 dB, floor + 6 dB)`` (floor: the clip's 20th-percentile frame level), from the
first to the last such frame, offset by where the clip was placed. The noise level is set by
``--snr-db`` against the median RMS of those speech spans. The same arguments and seed always
give the same files, byte for byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError

DEFAULT_MINUTES = 5.0
DEFAULT_SNR_DB = 20.0
DEFAULT_GAP_S = (1.5, 3.0)
MAX_MINUTES = 180.0
LEAD_IN_S = 1.0  # noise only at the start, so the first window the model sees is background
TAIL_S = 2.0  # room after the last clip for its detection (model window + smoother average)
NOISE_SEGMENT_S = (5.0, 20.0)  # background switches noise file every this many seconds
CROSSFADE_S = 0.05
CLIP_FADE_S = 0.005  # clips have their own noise floor; a short fade avoids clicks at the edges
SPEECH_FRAME_S = 0.010
SPEECH_BELOW_PEAK_DB = 20.0
SPEECH_ABOVE_FLOOR_DB = 6.0
PEAK_LIMIT = 0.99


@dataclass(frozen=True)
class Placement:
    """One clip in the stream: where it starts (sample), its label and its speech span."""

    clip_start: int
    label: str
    speech_start: int  # samples, stream time
    speech_end: int
    clip: str  # source clip, relative to the data folder


def speech_span(clip: np.ndarray, rate: int) -> tuple[int, int]:
    """(first, end) sample of the speech in a clip by frame energy (see module docstring).

    Falls back to the whole clip when it is digital silence.
    """
    x = np.asarray(clip, np.float64)
    hop = max(1, int(round(SPEECH_FRAME_S * rate)))
    n = len(x) // hop
    if n == 0:
        return 0, len(x)
    energy = (x[:n * hop].reshape(n, hop) ** 2).mean(axis=1)
    if not np.any(energy > 0):
        return 0, len(x)
    db = 10.0 * np.log10(energy + 1e-12)
    threshold = max(db.max() - SPEECH_BELOW_PEAK_DB,
                    np.percentile(db, 20) + SPEECH_ABOVE_FLOOR_DB)
    active = np.flatnonzero(db >= min(threshold, db.max()))
    return int(active[0] * hop), int((active[-1] + 1) * hop)


def _fade(n: int, length: int) -> np.ndarray:
    """Equal-power fade-in of ``length`` samples padded with ones to ``n``."""
    ramp = np.ones(n, np.float64)
    length = min(length, n)
    if length > 0:
        ramp[:length] = np.sin(0.5 * np.pi * (np.arange(length) + 0.5) / length)
    return ramp


def background(noise: list[np.ndarray], n_samples: int, rng: np.random.Generator,
               rate: int) -> np.ndarray:
    """Continuous noise of unit RMS: random stretches of random noise files, cross-faded.

    Each file is first scaled to unit RMS so switching files does not jump in level; the
    caller then sets the level.
    """
    clips = []
    for c in noise:
        c = np.asarray(c, np.float64)
        rms = float(np.sqrt(np.mean(c ** 2))) if len(c) else 0.0
        if rms > 0:
            clips.append(c / rms)
    if not clips:
        raise UserError("the background-noise files are all silent; give other files with "
                        "--noise-dir")
    out = np.zeros(n_samples, np.float64)
    xfade = int(CROSSFADE_S * rate)
    pos = 0
    while pos < n_samples:
        src = clips[int(rng.integers(len(clips)))]
        seg = int(rng.uniform(*NOISE_SEGMENT_S) * rate)
        seg = max(2 * xfade + 1, min(seg, len(src)))
        offset = int(rng.integers(len(src) - seg + 1))
        piece = src[offset:offset + seg] * _fade(seg, xfade) * _fade(seg, xfade)[::-1]
        take = min(seg, n_samples - pos)
        out[pos:pos + take] += piece[:take]
        pos += seg - xfade
    return out


def schedule(labels: np.ndarray, n_samples: int, clip_samples: int, rng: np.random.Generator,
             gap_s: tuple[float, float], rate: int) -> list[tuple[int, int]]:
    """(clip index, start sample) pairs: clips in seeded random order (every clip once before
    any repeats), each after a random gap, until the stream is full."""
    out = []
    order: list[int] = []
    pos = int(LEAD_IN_S * rate)
    limit = n_samples - int(TAIL_S * rate)
    while True:
        pos += int(round(rng.uniform(*gap_s) * rate))
        if pos + clip_samples > limit:
            return out
        if not order:
            order = list(rng.permutation(len(labels)))
        out.append((int(order.pop(0)), pos))
        pos += clip_samples


def make_stream(waveforms: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...],
                clip_names: list[str], noise: list[np.ndarray], *, seconds: float, seed: int = 0,
                snr_db: float = DEFAULT_SNR_DB, gap_s: tuple[float, float] = DEFAULT_GAP_S,
                rate: int = 16000) -> tuple[np.ndarray, list[Placement], dict]:
    """The stream (float32 samples), every placement, and a summary; pure and seeded."""
    from tinyspeech_tf.data.protocol import SILENCE, UNKNOWN

    rng = np.random.default_rng(seed)
    n_samples = int(round(seconds * rate))
    clip_samples = waveforms.shape[1]
    plan = schedule(labels, n_samples, clip_samples, rng, gap_s, rate)
    if not plan:
        raise UserError(f"{seconds:g} s is too short to place any clip; ask for more minutes")
    stream = np.zeros(n_samples, np.float64)
    edge = _fade(clip_samples, int(CLIP_FADE_S * rate))
    edge = edge * edge[::-1]
    placements, speech_rms = [], []
    for index, start in plan:
        clip = np.asarray(waveforms[index], np.float64)
        name = label_names[int(labels[index])]
        s0, s1 = speech_span(clip, rate)
        stream[start:start + clip_samples] += clip * edge
        if name != SILENCE:
            speech_rms.append(float(np.sqrt(np.mean(clip[s0:s1] ** 2))))
        placements.append(Placement(start, name, start + s0, start + s1, clip_names[index]))
    ref = float(np.median(speech_rms)) if speech_rms else 0.1
    noise_rms = ref / 10.0 ** (snr_db / 20.0)
    stream += background(noise, n_samples, rng, rate) * noise_rms
    peak = float(np.max(np.abs(stream)))
    gain = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
    stream *= gain
    counts: dict[str, int] = {}
    for p in placements:
        counts[p.label] = counts.get(p.label, 0) + 1
    summary = {
        "seconds": n_samples / rate, "clips": len(placements),
        "keywords": sum(p.label not in (SILENCE, UNKNOWN) for p in placements),
        "unknown": counts.get(UNKNOWN, 0), "silence": counts.get(SILENCE, 0),
        "per_label": counts, "speech_rms_median": ref, "noise_rms": noise_rms * gain,
        "gain": gain, "snr_db": snr_db,
    }
    return stream.astype(np.float32), placements, summary


def track_csv(placements: list[Placement], rate: int) -> str:
    """The label track: keyword utterances only, ``start_s,end_s,label,clip``."""
    from tinyspeech_tf.data.protocol import SILENCE, UNKNOWN

    rows = ["start_s,end_s,label,clip"]
    for p in placements:
        if p.label in (SILENCE, UNKNOWN):
            continue
        clip = p.clip.replace(",", "_")
        rows.append(f"{p.speech_start / rate:.3f},{p.speech_end / rate:.3f},{p.label},{clip}")
    return "\n".join(rows) + "\n"


SPEAKER_HALVES = ("all", "a", "b")


def speaker_half(path: str) -> str:
    """``a`` or ``b``: a fixed half of the speakers (Speech Commands names a clip
    ``<speaker>_nohash_<n>.wav``), so one stream can tune a detector and another, of other
    speakers, can test it."""
    import hashlib

    speaker = Path(path.split("@")[0]).name.split("_nohash_")[0]
    return "ab"[hashlib.sha256(speaker.encode()).digest()[0] & 1]


def _load_clips(data: str, seed: int, noise_dir: str | None, speakers: str = "all"):
    """The clips of a dataset folder's validation split (or its only split) plus noise;
    ``speakers`` keeps one half of the speakers (:func:`speaker_half`) or all."""
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf.data.protocol import LABELS, SPLITS

    if data == "tfds" or data.startswith("tfds:"):
        raise UserError("stream-make needs a folder of clips (the 12-class layout or the "
                        "Speech Commands archive), not tfds")
    root = Path(data)
    kind = data_mod.detect(root)
    flat = kind == "12class" and any((root / label).is_dir() for label in LABELS)
    splits = SPLITS if flat else ("validation",)
    source = data_mod.load(data, splits=splits, seed=seed, unknown_fraction=None,
                           noise_dir=noise_dir)
    present = [name for name, split in source.splits.items() if len(split)]
    split = source.split(present[0] if len(present) == 1 else "validation")
    if speakers != "all":
        from tinyspeech_tf.data.sources import Split

        keep = [i for i, p in enumerate(split.paths) if speaker_half(p) == speakers]
        if not keep:
            raise UserError(f"{data}: no clips of speaker half {speakers!r}")
        split = Split(split.waveforms[keep], split.labels[keep], split.label_names,
                      [split.paths[i] for i in keep], split.name)
    if not source.background_noise:
        raise UserError(f"{data}: no background-noise files found (none in the dataset and no "
                        "../shared/data/speech_commands_background_noise); pass --noise-dir DIR "
                        "(16 kHz wavs of at least 1 s)")
    names = []
    for p in split.paths:
        file_part = p.split("@")[0]
        try:
            rel = os.path.relpath(file_part, root)
        except ValueError:
            rel = os.path.basename(file_part)
        names.append(Path(rel).as_posix() if not rel.startswith("..") else Path(p).name)
    return split, names, source


def write_stream(out: str | os.PathLike, data: str, *, minutes: float = DEFAULT_MINUTES,
                 seed: int = 0, noise_dir: str | None = None, snr_db: float = DEFAULT_SNR_DB,
                 gap_s: tuple[float, float] | list[float] = DEFAULT_GAP_S,
                 speakers: str = "all") -> dict:
    """``tinyspeech stream-make``: write ``out`` (.wav) and its label track beside it (.csv).

    Settings are checked before the clips are loaded; returns :func:`make_stream`'s summary
    plus what was written (``wav``, ``csv`` as display paths), the number of clips it drew
    from (``source_clips``) and of noise files (``noise_files``).
    """
    from tinyspeech_tf.audio import SAMPLE_RATE, write_wav
    from tinyspeech_tf.io import display_path, write_atomic

    wav = Path(out)
    if wav.suffix.lower() != ".wav":
        raise UserError(f"{os.fspath(out)}: the output must be a .wav path (the track goes "
                        "beside it as .csv)")
    if not 0 < minutes <= MAX_MINUTES or not np.isfinite(minutes):
        raise UserError(f"--minutes must be in (0, {MAX_MINUTES:g}], got {minutes}")
    if not np.isfinite(snr_db):
        raise UserError(f"--snr-db must be a finite number, got {snr_db}")
    gap = (float(gap_s[0]), float(gap_s[1]))
    if not (np.isfinite(gap[0]) and np.isfinite(gap[1])) or not 0 <= gap[0] <= gap[1]:
        raise UserError(f"--gap-s needs 0 <= MIN <= MAX, got {gap[0]:g} {gap[1]:g}")
    if speakers not in SPEAKER_HALVES:
        raise UserError(f"--speakers {speakers!r}: choose one of {', '.join(SPEAKER_HALVES)}")
    split, names, source = _load_clips(data, seed, noise_dir, speakers)
    stream, placements, summary = make_stream(
        split.waveforms, split.labels, split.label_names, names, source.background_noise,
        seconds=minutes * 60.0, seed=seed, snr_db=snr_db, gap_s=gap, rate=SAMPLE_RATE)
    from tinyspeech_tf.stream.score import TRACK_AUDIO, audio_digest

    wav.parent.mkdir(parents=True, exist_ok=True)
    csv_path = wav.with_suffix(".csv")
    # The pair is replaced track first: a kill in between leaves no track, never a stale one,
    # and the new track names its recording by content, so `stream --track` can check it.
    csv_path.unlink(missing_ok=True)
    write_wav(wav, stream, SAMPLE_RATE)
    write_atomic(csv_path, f"{TRACK_AUDIO}{audio_digest(wav)}\n"
                 + track_csv(placements, SAMPLE_RATE))
    return {**summary, "wav": display_path(wav), "csv": display_path(csv_path),
            "source_clips": len(split), "noise_files": len(source.background_noise)}
