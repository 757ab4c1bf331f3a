"""Clips read on demand: a split's waveforms as an array-like that holds where each clip is,
not the clip.

Why: the full Speech Commands set is ~105,000 one-second clips, 6.7 GB as float32; held in
memory (and copied again into tensors) it does not fit a laptop, and a GPU box wastes its RAM
on it. A :class:`Clips` holds one small row per clip (a wav file, a cut of a background-noise
clip for silence, a row of an int16 cache for sources without files, or a row of an in-memory
array) and reads rows when they are indexed, so memory grows with the batch, not the dataset.
Reading a row gives exactly what reading the whole split used to give (the same float32
values), so seeded epochs and ``--resume`` are unchanged.

It answers ``len``, ``shape``, ``dtype`` and numpy-style indexing (an int, a slice, an index
or boolean array) with float32 arrays; ``np.asarray(clips)`` reads every row, which is fine for
a validation split but what training must not do: it reads per batch (:meth:`Clips.read`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from tinyspeech_tf.audio import check_wav, fit_length, read_wav
from tinyspeech_tf.data.protocol import CLIP_SAMPLES
from tinyspeech_tf.errors import UserError

# Row kinds.
WAV, NOISE, INT16, ARRAY = 0, 1, 2, 3
# Rows read at once by :meth:`Clips.chunks` (a few MB of float32).
CHUNK = 512


class Clips:
    """``[N, 16000]`` float32 clips, each read when indexed (see the module docstring).

    Rows are ``(kind, a, b, c)``: ``(WAV, path, 0, 0.0)``; ``(NOISE, noise index, start,
    volume)`` cuts ``noise[index][start:start + 16000] * volume`` (float32, as
    :func:`cut_silence` made it); ``(INT16, cache file, row, 0.0)``
    a row of an int16 file written by :func:`write_int16_cache`; ``(ARRAY, array id, row,
    0.0)`` a row of one of ``arrays``.
    """

    __array_priority__ = 10

    def __init__(self, rows: Sequence[tuple], noise: Sequence[np.ndarray] = (),
                 arrays: Sequence[np.ndarray] = ()) -> None:
        self.rows = list(rows)
        self.noise = list(noise)
        self.arrays = list(arrays)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def of_array(cls, waveforms: np.ndarray) -> Clips:
        """Clips backed by an in-memory ``[N, 16000]`` array (tests, generated sets)."""
        waveforms = np.asarray(waveforms, dtype=np.float32).reshape(-1, CLIP_SAMPLES)
        return cls([(ARRAY, 0, i, 0.0) for i in range(len(waveforms))], arrays=[waveforms])

    @classmethod
    def of_files(cls, paths: Sequence[str]) -> Clips:
        return cls([(WAV, p, 0, 0.0) for p in paths])

    def take(self, index) -> Clips:
        """The rows at ``index`` (indices, a slice or a boolean mask), still unread."""
        idx = self._indices(index)
        return Clips([self.rows[i] for i in idx], self.noise, self.arrays)

    @staticmethod
    def concat(parts: Sequence[Clips]) -> Clips:
        """One table of ``parts`` in order (their noise and arrays renumbered)."""
        rows: list[tuple] = []
        noise: list[np.ndarray] = []
        arrays: list[np.ndarray] = []
        for part in parts:
            for kind, a, b, c in part.rows:
                if kind == NOISE:
                    a += len(noise)
                elif kind == ARRAY:
                    a += len(arrays)
                rows.append((kind, a, b, c))
            noise += part.noise
            arrays += part.arrays
        return Clips(rows, noise, arrays)

    # ------------------------------------------------------------------ array protocol

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), CLIP_SAMPLES)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.read(np.arange(len(self.rows)))
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows, rest = key[0], key[1:]
            return self[rows][(slice(None), *rest) if not np.isscalar(rows) else rest]
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -len(self.rows) <= i < len(self.rows):
                raise IndexError(f"clip {i} of {len(self.rows)}")
            return self._row(self.rows[i])
        return self.read(self._indices(key))

    def _indices(self, key) -> np.ndarray:
        if isinstance(key, slice):
            return np.arange(len(self.rows))[key]
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (len(self.rows),):
                raise IndexError(f"boolean index of {idx.shape} for {len(self.rows)} clips")
            return np.nonzero(idx)[0]
        return idx.astype(np.int64).reshape(-1)

    # ------------------------------------------------------------------ reading

    def read(self, indices) -> np.ndarray:
        """``[len(indices), 16000]`` float32: the rows at ``indices``, read now."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), CLIP_SAMPLES), dtype=np.float32)
        for j, i in enumerate(idx):
            out[j] = self._row(self.rows[int(i)])
        return out

    def chunks(self, size: int = CHUNK) -> Iterator[np.ndarray]:
        """Every row in order, ``size`` at a time: how a whole split is scored or featurised
        without holding it."""
        for start in range(0, len(self.rows), size):
            yield self.read(np.arange(start, min(start + size, len(self.rows))))

    def _row(self, row: tuple) -> np.ndarray:
        kind, a, b, c = row
        if kind == WAV:
            return read_clip(a)
        if kind == NOISE:
            return self.noise[a][b:b + CLIP_SAMPLES] * c
        if kind == INT16:
            return _read_int16_row(a, b)
        return self.arrays[a][b]


def read_clip(path: str) -> np.ndarray:
    """Read one clip and fit it to 1 s; read_wav's errors already name the file."""
    samples, _ = read_wav(path, mix_to_mono=False)  # a stereo clip in a dataset is a mistake
    if samples.size == 0:
        raise UserError(f"{path}: empty clip (no audio samples); delete or re-record it")
    return fit_length(samples, CLIP_SAMPLES)


def check_clips(paths: Sequence[str]) -> None:
    """Read every file's header now (a UserError names the first bad one), so a damaged or
    mis-encoded clip stops a command before it starts rather than an epoch in: about 30 us
    a file, seconds for the full Speech Commands set, where reading the audio takes minutes."""
    for path in paths:
        if check_wav(path, mix_to_mono=False) == 0:
            raise UserError(f"{path}: empty clip (no audio samples); delete or re-record it")


def silence_clips(noise: list[np.ndarray], count: int, rng: np.random.Generator,
                  noise_paths: list[str] | None = None,
                  max_volume: float = 1.0) -> tuple[Clips, list[str]]:
    """``count`` 1 s silence examples cut from random places of the noise clips.

    Each gets a random volume uniform in [0, max_volume], so the model sees both near-digital
    silence and loud room noise as "no keyword"; with no noise clips they are all zeros (the TF
    speech_commands example's silence). Only where to cut is drawn here; the cuts are made when
    read.
    """
    rows, names = [], []
    for _ in range(count):
        if not noise:
            rows.append((NOISE, 0, 0, 0.0))
            names.append("zeros")
            continue
        k = int(rng.integers(len(noise)))
        start = int(rng.integers(len(noise[k]) - CLIP_SAMPLES + 1))
        rows.append((NOISE, k, start, rng.uniform(0.0, max_volume)))
        src = noise_paths[k] if noise_paths else f"noise{k}"
        names.append(f"{src}@{start}")
    return Clips(rows, noise or [np.zeros(CLIP_SAMPLES, np.float32)]), names


def cut_silence(noise: list[np.ndarray], count: int, rng: np.random.Generator,
                noise_paths: list[str] | None = None,
                max_volume: float = 1.0) -> tuple[np.ndarray, list[str]]:
    """:func:`silence_clips`, read: ``[count, 16000]`` float32 and their names."""
    clips, names = silence_clips(noise, count, rng, noise_paths, max_volume)
    return np.asarray(clips), names


def as_clips(waveforms) -> Clips:
    """``waveforms`` as :class:`Clips` (an array is wrapped, not copied)."""
    return waveforms if isinstance(waveforms, Clips) else Clips.of_array(waveforms)


# ----------------------------------------------------------------------------- int16 cache

_ROW_BYTES = CLIP_SAMPLES * 2


def _read_int16_row(path: str, row: int) -> np.ndarray:
    """One row of an int16 cache file, read with one positioned read (no mapping: mapped
    pages of a multi-GB file would count as this process's memory as an epoch touches them)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = os.pread(fd, _ROW_BYTES, row * _ROW_BYTES)
    finally:
        os.close(fd)
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def write_int16_cache(path: str | os.PathLike, clips: Iterator[np.ndarray]) -> int:
    """Write 1 s clips (float32 in [-1, 1), as they come) to ``path`` as int16 rows; returns
    the row count. Written beside it and renamed, so a killed run leaves no half cache. For
    sources that have no file per clip (TFDS), whose clips are int16 to begin with."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    rows = 0
    try:
        with open(tmp, "wb") as f:
            for clip in clips:
                pcm = np.clip(np.round(np.asarray(clip, np.float64) * 32768.0), -32768, 32767)
                f.write(pcm.astype("<i2").tobytes())
                rows += 1
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def of_int16_cache(path: str | os.PathLike, rows: int) -> Clips:
    return Clips([(INT16, os.fspath(path), i, 0.0) for i in range(rows)])


def repo_root() -> Path:
    """The repository checkout this package lives in (the editable install's root)."""
    return Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Where caches go: ``$TINYSPEECH_CACHE`` or the checkout's ``.cache/``."""
    return Path(os.environ.get("TINYSPEECH_CACHE") or repo_root() / ".cache")


def cached_rows(pcm: Path, rows: Callable[[], Iterator[tuple[np.ndarray, int]]]
                ) -> tuple[Clips, np.ndarray]:
    """Clips of the int16 cache ``pcm`` and the integer tag (a label) of each row, written
    once from ``rows()`` (clip, tag) when absent: the cache and its tags are each renamed into
    place whole, so a killed run leaves none."""
    tags_path = pcm.with_suffix(".labels.npy")
    if not (pcm.is_file() and tags_path.is_file()):
        pcm.parent.mkdir(parents=True, exist_ok=True)
        tags: list[int] = []

        def clips():
            for clip, tag in rows():
                tags.append(tag)
                yield clip

        write_int16_cache(pcm, clips())
        tmp = tags_path.with_name(f".{tags_path.name}.tmp{os.getpid()}.npy")
        np.save(tmp, np.array(tags, dtype=np.int64))
        os.replace(tmp, tags_path)
    tags_read = np.load(tags_path)
    return of_int16_cache(pcm, len(tags_read)), tags_read
