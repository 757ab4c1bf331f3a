"""Offline synthetic keyword set made with espeak-ng: the default dataset when nothing else is.

Why: Speech Commands cannot be downloaded everywhere (CI, air-gapped boxes), yet training and
export need a labelled 12-class set. espeak-ng voices (8 English accents x 20 voice variants)
with random rate, pitch, amplitude and intonation give the words; what a formant synthesiser
lacks against people is then added the way speech reaches a
microphone: a random vocal-tract length (resampling moves the formants, which espeak's pitch
setting leaves in place), a room (a synthetic impulse response with a random reverberation
time), a microphone's frequency response (a random smooth equaliser) and recorded noise at a
random signal-to-noise ratio. It is *not* a substitute for real speech: accuracy on it says
little about accuracy on people, so the set is marked synthetic (``SYNTHETIC.txt``,
``dataset.json``) and should be validated on real clips (``../shared``) when available;
``tinyspeech synthetic`` measures how far it carries.

Layout written: ``DIR/{train,val,test}/<label>/*.wav`` (the 12-class layout), split by voice
so validation and test voices never occur in training. Each clip is a deterministic function
of (seed, split, label, index), so an interrupted run resumes where it stopped and produces the
same files; the set is marked complete (``dataset.json``) only at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyspeech_tf.audio import resample_audio, write_wav
from tinyspeech_tf.data.clips import cut_silence
from tinyspeech_tf.data.protocol import (
    CLIP_SAMPLES,
    LABELS,
    SAMPLE_RATE,
    SILENCE,
    UNKNOWN,
    UNKNOWN_WORDS,
    write_labels,
)
from tinyspeech_tf.data.sources import default_noise_dir, load_noise_dir
from tinyspeech_tf.errors import UserError

GENERATOR_VERSION = 2
ACCENTS: tuple[str, ...] = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029",
                            "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
# Voice variants. The engine has about a hundred, but a set made with all of them carried
# worse to real speech when tried (one seed): most add buzz, not human variety.
VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3",
                             "f4", "f5", "klatt", "klatt2", "klatt3", "croak", "whisper",
                             "grandma", "grandpa")
SPLIT_DIRS: tuple[str, ...] = ("train", "val", "test")
VOICE_FRACTIONS = (0.8, 0.1, 0.1)
RATE_WPM = (110, 230)        # espeak-ng -s (default 175)
PITCH = (15, 85)             # espeak-ng -p (default 50)
AMPLITUDE = (40, 140)        # espeak-ng -a (default 100); peaks roughly 0.2 .. 0.8
ENDINGS = ("", ".", "!", "?")  # punctuation changes the intonation contour
NOISE_PROBABILITY = 0.8      # baked-in noise; training adds its own augmentation on top
NOISE_SNR_DB = (5.0, 35.0)   # speech-to-noise ratio of the baked-in noise
WARP = (0.87, 1.15)          # vocal-tract length: formants and pitch x 1/WARP, duration x WARP
REVERB_PROBABILITY = 0.7
RT60_S = (0.1, 0.9)          # reverberation time of the simulated room
DIRECT_TO_REVERB_DB = (-3.0, 12.0)
EQ_PROBABILITY = 0.9
EQ_DB = 6.0                  # random equaliser: +-EQ_DB at log-spaced control points
HIGHPASS_HZ = (50.0, 400.0)  # small microphones and their housings roll off the lows
LOWPASS_HZ = (3000.0, 7800.0)
ESPEAK_RATE = 22050
DEFAULT_PER_WORD = 400
DEFAULT_JOBS = 2
PARTIAL_MARKER = ".synth_partial.json"
COMPLETE_MARKER = "dataset.json"
NOISE_DIR_NAME = "_background_noise_"


@dataclass(frozen=True)
class Job:
    """One clip to generate; everything random about it is drawn from its own seed."""

    split: str
    label: str
    index: int
    seed: int
    voices: tuple[str, ...]

    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLIT_DIRS.index(self.split),
                                      LABELS.index(self.label), self.index])

    def choices(self) -> dict:
        """The generation parameters of this clip (word, voice, rate, ...), deterministic."""
        rng = self.rng()
        if self.label == SILENCE:
            return {"rng": rng}
        word = (UNKNOWN_WORDS[int(rng.integers(len(UNKNOWN_WORDS)))]
                if self.label == UNKNOWN else self.label)
        return {
            "word": word,
            "voice": self.voices[int(rng.integers(len(self.voices)))],
            "rate": int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
            "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
            "amplitude": int(rng.integers(AMPLITUDE[0], AMPLITUDE[1] + 1)),
            "ending": ENDINGS[int(rng.integers(len(ENDINGS)))],
            "rng": rng,
        }

    def filename(self) -> str:
        if self.label == SILENCE:
            return f"silence_{self.index:05d}.wav"
        c = self.choices()
        tag = c["voice"].replace("+", "_")
        return f"{c['word']}_{tag}_{self.index:05d}.wav"


@dataclass
class SynthReport:
    """What :func:`synthesize` did, for the CLI and for tests."""

    out: str
    cached: bool
    clips: int
    written: int
    seconds: float
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    voices: dict[str, int] = field(default_factory=dict)
    noise: str = ""


def espeak_version() -> str:
    """The speech engine and its version (part of the set's parameters), or a UserError
    saying how to install it."""
    from tinyspeech_tf.data.espeak import engine

    return engine().version


def split_voices(seed: int) -> dict[str, tuple[str, ...]]:
    """All accent+variant voices shuffled by ``seed`` and divided 80/10/10 by voice."""
    voices = [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]
    order = np.random.default_rng([seed, 7919]).permutation(len(voices))
    voices = [voices[i] for i in order]
    n_val = max(1, int(round(len(voices) * VOICE_FRACTIONS[1])))
    n_test = max(1, int(round(len(voices) * VOICE_FRACTIONS[2])))
    n_train = len(voices) - n_val - n_test
    return {"train": tuple(voices[:n_train]),
            "val": tuple(voices[n_train:n_train + n_val]),
            "test": tuple(voices[n_train + n_val:])}


def split_sizes(per_word: int) -> dict[str, int]:
    """Clips per label in each split: ``per_word`` for train, an eighth of it for val/test."""
    small = max(1, int(round(per_word / 8)))
    return {"train": per_word, "val": small, "test": small}


def coloured_noise(seed: int, seconds: float = 30.0) -> list[np.ndarray]:
    """White, pink and brown noise (RMS 0.1), used when no recorded noise is available."""
    rng = np.random.default_rng([seed, 104729])
    n = int(seconds * SAMPLE_RATE)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    freqs[0] = freqs[1]
    clips = []
    for exponent in (0.0, 0.5, 1.0):  # amplitude ~ f^-exponent: white, pink, brown
        spectrum = np.fft.rfft(rng.standard_normal(n)) / freqs ** exponent
        x = np.fft.irfft(spectrum, n)
        x = x / (np.sqrt(np.mean(x ** 2)) + 1e-12) * 0.1
        clips.append(np.clip(x, -1, 1).astype(np.float32))
    return clips


def speech_params(job: Job) -> tuple | None:
    """What espeak-ng says for ``job`` (text, voice, rate, pitch, amplitude, random seed), or
    None for a silence clip."""
    if job.label == SILENCE:
        return None
    c = job.choices()
    seed = int(np.random.default_rng([job.seed, 31337, SPLIT_DIRS.index(job.split),
                                      LABELS.index(job.label), job.index]).integers(1 << 30))
    return c["word"] + c["ending"], c["voice"], c["rate"], c["pitch"], c["amplitude"], seed


def _trim(samples: np.ndarray) -> np.ndarray:
    """Cut espeak's leading/trailing silence, keeping 20 ms around the word."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0.0:
        return samples[:0]
    loud = np.nonzero(np.abs(samples) > 0.05 * peak)[0]
    margin = SAMPLE_RATE // 50
    return samples[max(0, loud[0] - margin): loud[-1] + margin + 1]


def room(rng: np.random.Generator, samples: np.ndarray) -> np.ndarray:
    """``samples`` as heard in a random room: convolved with an exponentially decaying noise
    tail (a statistical impulse response) of random reverberation time, mixed with the direct
    sound at a random direct-to-reverberant ratio."""
    rt60 = rng.uniform(*RT60_S)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # -60 dB at rt60
    tail[: SAMPLE_RATE // 400] = 0.0  # the first reflection arrives a few ms after the direct
    size = len(samples) + n - 1
    wet = np.fft.irfft(np.fft.rfft(samples, size) * np.fft.rfft(tail, size), size)
    ratio = 10.0 ** (rng.uniform(*DIRECT_TO_REVERB_DB) / 20.0)
    wet *= np.sqrt(np.sum(samples ** 2) / (np.sum(wet ** 2) + 1e-12)) / ratio
    wet[: len(samples)] += samples
    return wet


def microphone(rng: np.random.Generator, samples: np.ndarray) -> np.ndarray:
    """``samples`` through a random microphone: a smooth random equaliser (gains of +-EQ_DB at
    log-spaced points) between a second-order high-pass and low-pass of random corners."""
    spectrum = np.fft.rfft(samples)
    freqs = np.maximum(np.fft.rfftfreq(len(samples), 1.0 / SAMPLE_RATE), 1.0)
    points = np.geomspace(100.0, SAMPLE_RATE / 2, 8)
    gain_db = np.interp(np.log(freqs), np.log(points), rng.uniform(-EQ_DB, EQ_DB, len(points)))
    high, low = rng.uniform(*HIGHPASS_HZ), rng.uniform(*LOWPASS_HZ)
    gain = 10.0 ** (gain_db / 20.0) / np.sqrt(1.0 + (high / freqs) ** 4) / np.sqrt(
        1.0 + (freqs / low) ** 4)
    return np.fft.irfft(spectrum * gain, len(samples))


def make_clip(job: Job, noise: list[np.ndarray],
              speech: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The 1 s float32 clip for ``job``: ``speech`` (int16 samples and their rate, spoken for
    :func:`speech_params` of the job; spoken here when None) with a random vocal-tract length,
    room and microphone, at a random offset, plus noise at a random SNR."""
    from tinyspeech_tf.data.espeak import speak_isolated

    c = job.choices()
    rng = c["rng"]
    if job.label == SILENCE:
        clip, _ = cut_silence(noise, 1, rng)
        return clip[0]
    pcm, rate = speech if speech is not None else speak_isolated(speech_params(job))
    warp = rng.uniform(*WARP)
    # Resampled to SAMPLE_RATE * warp and played at SAMPLE_RATE: a longer or shorter tract.
    # (to a multiple of 50 Hz: a small resampling ratio keeps the polyphase filter short).
    samples = resample_audio(pcm.astype(np.float64) / 32768.0, rate,
                             50 * int(round(SAMPLE_RATE * warp / 50)))
    word = _trim(samples)
    peak = float(np.max(np.abs(word))) if word.size else 0.0
    if rng.random() < REVERB_PROBABILITY:
        word = room(rng, word)
    if rng.random() < EQ_PROBABILITY:
        word = microphone(rng, word)
    if word.size and peak > 0.0:
        word *= peak / (float(np.max(np.abs(word))) + 1e-12)  # espeak's amplitude kept
    word = word[:CLIP_SAMPLES]
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float64)
    offset = int(rng.integers(CLIP_SAMPLES - len(word) + 1))
    clip[offset:offset + len(word)] = word
    if noise and rng.random() < NOISE_PROBABILITY:
        k = int(rng.integers(len(noise)))
        start = int(rng.integers(len(noise[k]) - CLIP_SAMPLES + 1))
        cut = noise[k][start:start + CLIP_SAMPLES].astype(np.float64)
        snr = 10.0 ** (rng.uniform(*NOISE_SNR_DB) / 20.0)
        speech_rms = np.sqrt(np.mean(word ** 2)) if word.size else 0.0
        clip += cut * speech_rms / (snr * (np.sqrt(np.mean(cut ** 2)) + 1e-12))
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def plan(per_word: int, seed: int) -> list[Job]:
    """Every clip of the set, in a fixed order."""
    voices = split_voices(seed)
    sizes = split_sizes(per_word)
    return [Job(split, label, i, seed, voices[split])
            for split in SPLIT_DIRS for label in LABELS for i in range(sizes[split])]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _clear(out: Path) -> None:
    """Remove a previous (our own) synthetic set's files before regenerating."""
    for name in (*SPLIT_DIRS, NOISE_DIR_NAME):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in (COMPLETE_MARKER, "SYNTHETIC.txt", "labels.txt"):
        (out / name).unlink(missing_ok=True)


def _resolve_noise(noise_dir: str | os.PathLike | None, seed: int
                   ) -> tuple[list[np.ndarray], dict]:
    if noise_dir is None:
        noise_dir = default_noise_dir()
    if noise_dir is not None:
        clips, paths = load_noise_dir(noise_dir)
        if not clips:
            raise UserError(f"{noise_dir}: no 16 kHz wav of at least 1 s to use as noise; "
                            "give another --noise-dir or none (coloured noise is generated)")
        files = [{"name": Path(p).name, "samples": int(len(c))} for p, c in zip(paths, clips,
                                                                                strict=True)]
        return clips, {"kind": "recorded", "files": files}
    return coloured_noise(seed), {"kind": "generated", "colours": ["white", "pink", "brown"]}


def synthesize(out: str | os.PathLike, *, per_word: int = DEFAULT_PER_WORD, seed: int = 0,
               noise_dir: str | os.PathLike | None = None, jobs: int = DEFAULT_JOBS,
               log: Callable[[str], None] = print) -> SynthReport:
    """Generate (or reuse, or resume) the synthetic 12-class set in ``out``.

    ``per_word`` is the number of training clips per label (val/test get an eighth each).
    Reuses a complete set with identical parameters, resumes an interrupted one, and
    regenerates when parameters changed; refuses to write into a folder that is not ours.
    """
    if per_word < 1:
        raise UserError(f"--per-word must be at least 1 (got {per_word})")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (got {jobs})")
    out = Path(out)
    version = espeak_version()
    noise, noise_info = _resolve_noise(noise_dir, seed)
    params = {"generator_version": GENERATOR_VERSION, "per_word": per_word,
              "split_sizes": split_sizes(per_word), "seed": seed, "noise": noise_info,
              "espeak_ng": version, "accents": list(ACCENTS), "variants": list(VARIANTS),
              "sample_rate": SAMPLE_RATE, "rate_wpm": list(RATE_WPM), "pitch": list(PITCH),
              "amplitude": list(AMPLITUDE), "noise_probability": NOISE_PROBABILITY,
              "noise_snr_db": list(NOISE_SNR_DB), "warp": list(WARP),
              "reverb_probability": REVERB_PROBABILITY, "rt60_s": list(RT60_S),
              "direct_to_reverb_db": list(DIRECT_TO_REVERB_DB), "eq_probability": EQ_PROBABILITY,
              "eq_db": EQ_DB, "highpass_hz": list(HIGHPASS_HZ), "lowpass_hz": list(LOWPASS_HZ)}
    all_jobs = plan(per_word, seed)
    voices = split_voices(seed)
    counts = {s: {lab: sum(1 for j in all_jobs if j.split == s and j.label == lab)
                  for lab in LABELS} for s in SPLIT_DIRS}

    done = _read_json(out / COMPLETE_MARKER)
    partial = _read_json(out / PARTIAL_MARKER)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; give a folder for --out")
    complete = done is not None and done.get("complete") and done.get("params") == params
    if complete and all((out / j.split / j.label / j.filename()).exists() for j in all_jobs):
        log(f"{out}: already holds a complete synthetic set with these parameters "
            f"({len(all_jobs)} clips); nothing to do")
        return SynthReport(str(out), True, len(all_jobs), 0, 0.0, counts,
                           {s: len(v) for s, v in voices.items()}, noise_info["kind"])
    if out.is_dir() and any(out.iterdir()) and done is None and partial is None:
        raise UserError(f"{out}: folder is not empty and holds no synthetic set; give a new or "
                        "empty folder for --out")
    if (done is not None and done.get("params") != params) or (
            partial is not None and partial.get("params") != params):
        log(f"{out}: parameters differ from the existing set; regenerating")
        _clear(out)
    elif partial is not None or complete:
        log(f"{out}: resuming an interrupted or damaged set")

    out.mkdir(parents=True, exist_ok=True)
    (out / COMPLETE_MARKER).unlink(missing_ok=True)
    _write_json(out / PARTIAL_MARKER, {"params": params})
    for split in SPLIT_DIRS:
        for label in LABELS:
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*.tmp*"):  # half-written files of a killed run
                stale.unlink()
    todo = [j for j in all_jobs if not (out / j.split / j.label / j.filename()).exists()]
    if noise_info["kind"] == "generated":
        (out / NOISE_DIR_NAME).mkdir(exist_ok=True)
        for name, clip in zip(noise_info["colours"], noise, strict=True):
            if not (out / NOISE_DIR_NAME / f"{name}_noise.wav").exists():
                write_wav(out / NOISE_DIR_NAME / f"{name}_noise.wav", clip)

    log(f"{out}: generating {len(todo)} of {len(all_jobs)} clips with {version}, {jobs} "
        "processes")
    start = time.perf_counter()
    step = max(1, len(todo) // 10)
    # Speech comes from `jobs` worker processes (spawned clean, whatever this process has
    # loaded); clips are mixed and written here, in order. Ctrl-C or an error stops at once:
    # finished clips are whole files and the partial marker stays, so the next run resumes.
    from tinyspeech_tf.data.espeak import speak_isolated, start_worker

    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=start_worker) as pool:
        spoken = pool.imap(speak_isolated, [speech_params(j) for j in todo], chunksize=4)
        for i, (job, speech) in enumerate(zip(todo, spoken, strict=True), 1):
            write_wav(out / job.split / job.label / job.filename(), make_clip(job, noise, speech))
            if i % step == 0 or i == len(todo):
                log(f"  {i}/{len(todo)} clips, {time.perf_counter() - start:.1f} s")
    seconds = time.perf_counter() - start

    write_labels(out / "labels.txt")
    (out / "SYNTHETIC.txt").write_text(
        "This dataset is SYNTHETIC: every keyword was spoken by the espeak-ng text-to-speech\n"
        "engine (see dataset.json for voices and parameters), then resampled to 16 kHz with\n"
        "a random vocal-tract length, given a simulated room and microphone, placed at a\n"
        "random offset in a 1 s clip and mixed with background noise.\n"
        "Accuracy measured on it does not predict accuracy on human speech; validate on\n"
        "real recordings (e.g. Speech Commands) before trusting a model.\n"
        f"Made by `tinyspeech dataset synth --per-word {per_word} --seed {seed}`.\n")
    _write_json(out / COMPLETE_MARKER, {
        "synthetic": True, "complete": True, "generator": "tinyspeech_tf.data.synth",
        "params": params, "labels": list(LABELS), "counts": counts,
        "voices": {s: list(v) for s, v in voices.items()}, "clips": len(all_jobs),
        "last_run": {"written": len(todo), "seconds": round(seconds, 2), "jobs": jobs},
    })
    (out / PARTIAL_MARKER).unlink(missing_ok=True)
    return SynthReport(str(out), False, len(all_jobs), len(todo), seconds, counts,
                       {s: len(v) for s, v in voices.items()}, noise_info["kind"])
