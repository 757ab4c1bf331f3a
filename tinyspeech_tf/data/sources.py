"""Load keyword-spotting data from tfds or local folders into one form.

Why one form: training, evaluation and export code should not care where clips came from, so
every source becomes :class:`Split` objects (waveforms read on demand, int32 labels, the label
order, the file of each example) plus the background-noise clips used for augmentation and
silence. Loading lists and checks the files but reads no audio (:mod:`.clips`), so memory does
not grow with the dataset.

Three sources, picked by :func:`load`:

* ``tfds`` / ``tfds:<data_dir>``: the TFDS ``speech_commands`` builder (must be prepared
  already; this code never downloads unless asked).
* the full Speech Commands archive layout (v0.01/v0.02): one folder per word,
  ``_background_noise_/``, ``validation_list.txt`` and ``testing_list.txt``.
* the 12-class layout: ``<label>/*.wav`` for the 12 labels (one split), or a parent holding
  ``train/``, ``val/`` (or ``validation/``) and ``test/`` folders of that layout.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyspeech_tf.audio import fit_length, read_wav
from tinyspeech_tf.data.clips import Clips, as_clips, check_clips, repo_root, silence_clips
from tinyspeech_tf.data.protocol import (
    CLIP_SAMPLES,
    LABELS,
    SILENCE,
    SPLIT_DIRS,
    SPLITS,
    UNKNOWN,
    WORDS,
    canonical_label,
    labels_for,
    word_to_label,
)
from tinyspeech_tf.errors import UserError

BACKGROUND_DIR = "_background_noise_"
TFDS_NAME = "speech_commands"
#: Label names of the TFDS builder, used when the builder's info is unavailable.
TFDS_LABELS: tuple[str, ...] = (*sorted(WORDS), SILENCE, UNKNOWN)

KIND_TFDS = "tfds"
KIND_ARCHIVE = "archive"
KIND_12CLASS = "12class"
KIND_DESCRIPTIONS = {
    KIND_TFDS: "TFDS speech_commands",
    KIND_ARCHIVE: "Speech Commands full archive layout (word folders + split lists)",
    KIND_12CLASS: "12-class layout (<label>/*.wav)",
}


@dataclass
class Split:
    """One split: waveforms ``[N, 16000]`` float32 in [-1, 1) (a :class:`~.clips.Clips`, read
    when indexed; an array given here is wrapped), labels ``[N]`` int32.

    ``label_names`` travels with the arrays so a consumer never assumes an order; ``paths``
    names the origin of each example (a file, or ``file@offset`` for silence cut from noise) so
    errors and mistakes can be traced back to a clip.
    """

    waveforms: Clips
    labels: np.ndarray
    label_names: tuple[str, ...] = LABELS
    paths: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        self.waveforms = as_clips(self.waveforms)
        self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if len(self.waveforms) != len(self.labels):
            raise ValueError(f"{len(self.waveforms)} waveforms but {len(self.labels)} labels")
        if not self.paths:
            self.paths = [f"{self.name or 'split'}[{i}]" for i in range(len(self.labels))]

    def __len__(self) -> int:
        return int(len(self.labels))

    def counts(self) -> dict[str, int]:
        """Examples per label, in label order (zero counts included)."""
        hist = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(hist[i]) for i, name in enumerate(self.label_names)}


@dataclass
class Source:
    """Everything a loader found: the splits, the noise clips, and what kind of source it was."""

    kind: str
    root: str
    splits: dict[str, Split]
    background_noise: list[np.ndarray]
    noise_paths: list[str]
    label_names: tuple[str, ...] = LABELS

    def split(self, name: str) -> Split:
        """The named split ('train', 'validation'/'val', 'test'); UserError if absent or empty."""
        name = canonical_split(name)
        split = self.splits.get(name)
        if split is None:
            have = ", ".join(self.splits) or "none"
            raise UserError(f"{self.root}: has no {name} split (found: {have})")
        if len(split) == 0:
            raise UserError(f"{self.root}: the {name} split is empty; it has no clips")
        return split


def canonical_split(name: str) -> str:
    for canon, aliases in SPLIT_DIRS.items():
        if name == canon or name in aliases:
            return canon
    raise UserError(f"unknown split {name!r}; use one of train, validation (val), test")


def shared_dir() -> Path:
    """``../shared`` beside the repository: read-only data every checkout and CI has."""
    return repo_root().parent / "shared"


def default_noise_dir() -> Path | None:
    """The official background-noise clips in ``../shared`` if present, else None."""
    path = shared_dir() / "data" / "speech_commands_background_noise"
    return path if path.is_dir() else None


def _is_wav(name: str) -> bool:
    return name.lower().endswith(".wav") and not name.startswith(".")


def _clips_of_files(paths: list[str]) -> Clips:
    """The files as unread clips, each header checked now."""
    check_clips(paths)
    return Clips.of_files(paths)


def load_noise_dir(folder: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """Read every wav in a folder as a background-noise clip (any length >= 1 s kept)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: noise folder does not exist; give a folder of 16 kHz wavs")
    clips, paths = [], []
    for name in sorted(os.listdir(folder)):
        if not _is_wav(name):
            continue
        path = str(folder / name)
        samples, _ = read_wav(path, mix_to_mono=False)
        if len(samples) >= CLIP_SAMPLES:
            clips.append(samples.astype(np.float32))
            paths.append(path)
    return clips, paths


def cap_unknown(labels: np.ndarray, fraction: float | None, rng: np.random.Generator,
                unknown_index: int = 1) -> np.ndarray:
    """Indices to keep so ``_unknown_`` is at most ``fraction`` of the result.

    Why: the archive holds far more non-keyword clips than keyword clips; left as is, a model
    learns to answer "unknown". Subsampling is random but seeded, and keeps the original order.
    """
    idx = np.arange(len(labels))
    if fraction is None:
        return idx
    unknown = idx[labels == unknown_index]
    rest = len(labels) - len(unknown)
    limit = int(math.ceil(fraction * rest / (1.0 - fraction))) if fraction < 1 else len(unknown)
    if len(unknown) <= limit:
        return idx
    keep_unknown = rng.choice(unknown, size=limit, replace=False)
    keep = np.concatenate([idx[labels != unknown_index], keep_unknown])
    return np.sort(keep)


def _subset(split: Split, idx: np.ndarray) -> Split:
    return Split(split.waveforms.take(idx), split.labels[idx], split.label_names,
                 [split.paths[i] for i in idx], split.name)


def remap_labels(split: Split, label_names: tuple[str, ...]) -> Split:
    """The same examples with labels renumbered for another label order (e.g. MLPERF_LABELS).

    Names are matched after mapping aliases (``silence`` == ``_silence_``), so a model with a
    different order can be scored without retraining.
    """
    target = [canonical_label(n) for n in label_names]
    lut = np.zeros(len(split.label_names), dtype=np.int32)
    for i, name in enumerate(split.label_names):
        name = canonical_label(name)
        if name not in target:
            raise UserError(f"label {name!r} has no place in the order {', '.join(label_names)}")
        lut[i] = target.index(name)
    return Split(split.waveforms, lut[split.labels], tuple(label_names), split.paths, split.name)


# ----------------------------------------------------------------------------- detection

def detect(path: str | os.PathLike) -> str:
    """The kind of a local folder (archive or 12-class), or a UserError saying what is wrong."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{root}: no such dataset folder; give a folder, `tfds` or "
                        "`tfds:DATA_DIR` (make one with `tinyspeech dataset synth --out DIR`)")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder; a dataset source is a folder, `tfds` or "
                        "`tfds:DATA_DIR`")
    subdirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    has_lists = (root / "validation_list.txt").is_file() or (root / "testing_list.txt").is_file()
    has_12 = bool(subdirs & {SILENCE, UNKNOWN})
    split_dirs = {d for aliases in SPLIT_DIRS.values() for d in aliases}
    words = subdirs - {BACKGROUND_DIR}
    if has_lists or (BACKGROUND_DIR in subdirs and words and not has_12
                     and not subdirs & split_dirs):
        return KIND_ARCHIVE
    if subdirs & split_dirs or subdirs & set(LABELS):
        return KIND_12CLASS
    raise UserError(
        f"{root}: not a Speech Commands dataset folder: expected the full archive layout (word "
        "folders + validation_list.txt/testing_list.txt) or the 12-class layout (_silence_/, "
        "_unknown_/, yes/, ... or train/, val/, test/ holding them)")


# ----------------------------------------------------------------------------- loaders

def _resolve_noise(candidates: list[Path], noise_dir: str | os.PathLike | None
                   ) -> tuple[list[np.ndarray], list[str]]:
    if noise_dir is not None:
        return load_noise_dir(noise_dir)
    for cand in candidates:
        if cand.is_dir():
            return load_noise_dir(cand)
    default = default_noise_dir()
    return load_noise_dir(default) if default is not None else ([], [])


def _split_seed(seed: int, split: str) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split)])


def load_archive(root: str | os.PathLike, *, splits: tuple[str, ...] = SPLITS, seed: int = 0,
                 unknown_fraction: float | None = 0.1, silence_fraction: float = 0.1,
                 noise_dir: str | os.PathLike | None = None,
                 words: tuple[str, ...] | None = None) -> Source:
    """Full archive layout: split by the official lists, other words become ``_unknown_``.

    ``words`` chooses the keywords (default the ten of the protocol); labels are
    ``_silence_, _unknown_`` and the words, every other word folder is unknown.

    Each split gets the 12-class protocol: unknown subsampled and silence cut from the
    background noise so each is about ``unknown_fraction`` / ``silence_fraction`` of the split
    (seeded by ``seed`` and the split name, so validation/test are stable across runs).
    """
    root = Path(root)
    labels_order = labels_for(words)
    keywords = labels_order[2:]
    # Custom words must exist; the ten protocol words may be missing (an empty class).
    absent = [w for w in keywords if words is not None and not (root / w).is_dir()]
    if absent:
        raise UserError(f"{root}: no folder for word(s) {', '.join(absent)}; the words of this "
                        "archive are its folder names")
    lists = {}
    for split, fname in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        p = root / fname
        lists[split] = set(p.read_text().split()) if p.is_file() else set()
    noise, noise_paths = _resolve_noise([root / BACKGROUND_DIR], noise_dir)
    by_split: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for word in sorted(os.listdir(root)):
        wdir = root / word
        if not wdir.is_dir() or word == BACKGROUND_DIR or word.startswith("."):
            continue
        label = labels_order.index(word_to_label(word, keywords))
        for name in sorted(os.listdir(wdir)):
            if not _is_wav(name):
                continue
            rel = f"{word}/{name}"
            split = ("validation" if rel in lists["validation"] else
                     "test" if rel in lists["test"] else "train")
            by_split[split].append((str(wdir / name), label))
    if not any(by_split.values()):
        raise UserError(f"{root}: no .wav clips in any word folder; the dataset is empty")
    out = {}
    for split in splits:
        split = canonical_split(split)
        rng = _split_seed(seed, split)
        items = by_split[split]
        labels = np.array([lab for _, lab in items], dtype=np.int32)
        n_known = int(np.sum(labels >= 2))
        keep = np.arange(len(items))
        if unknown_fraction is not None:
            extra = int(round(n_known * unknown_fraction / (1 - unknown_fraction
                                                            - silence_fraction)))
            unknown = keep[labels == labels_order.index(UNKNOWN)]
            if len(unknown) > extra:
                chosen = rng.choice(unknown, size=extra, replace=False)
                keep = np.sort(np.concatenate([keep[labels != labels_order.index(UNKNOWN)],
                                               chosen]))
        paths = [items[i][0] for i in keep]
        waves = _clips_of_files(paths)
        labels = labels[keep]
        n_sil = int(round(n_known * silence_fraction / max(1e-9, 1 - (unknown_fraction or 0)
                                                            - silence_fraction)))
        if n_known and n_sil:
            sil, sil_names = silence_clips(noise, n_sil, rng, noise_paths)
            waves = Clips.concat([waves, sil])
            labels = np.concatenate([labels, np.full(n_sil, labels_order.index(SILENCE),
                                                     np.int32)])
            paths += sil_names
        out[split] = Split(waves, labels, labels_order, paths, split)
    return Source(KIND_ARCHIVE, str(root), out, noise, noise_paths)


def _load_12class_folder(folder: Path, split: str) -> Split:
    subdirs = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    extra = sorted(subdirs - set(LABELS) - {BACKGROUND_DIR})
    if extra:
        raise UserError(
            f"{folder}: unexpected folder {extra[0]}/ in the 12-class layout; move other words "
            "into _unknown_/ (or, for the full archive layout, add validation_list.txt and "
            "testing_list.txt)")
    missing = [lab for lab in LABELS if lab not in subdirs]
    if missing:
        raise UserError(
            f"{folder}: 12-class layout folder has no {missing[0]}/ subfolder (missing: "
            f"{', '.join(missing)}); create one folder per label: {', '.join(LABELS)}")
    paths, labels = [], []
    for index, label in enumerate(LABELS):
        for name in sorted(os.listdir(folder / label)):
            if _is_wav(name):
                paths.append(str(folder / label / name))
                labels.append(index)
    return Split(_clips_of_files(paths), np.array(labels, dtype=np.int32), LABELS, paths, split)


def load_12class(root: str | os.PathLike, *, splits: tuple[str, ...] = SPLITS, seed: int = 0,
                 unknown_fraction: float | None = 0.1,
                 noise_dir: str | os.PathLike | None = None,
                 single_split: str | None = None) -> Source:
    """12-class layout: one split folder, or a parent with train/, val/ (validation/), test/.

    A single folder becomes the split its name says (``train``, ``val``...), else
    ``single_split`` or 'train'. ``_unknown_`` is capped at ``unknown_fraction`` (a no-op for
    sets that already follow the protocol).
    """
    root = Path(root)
    subdirs = {p.name for p in root.iterdir() if p.is_dir()}
    split_folders: dict[str, Path] = {}
    if subdirs & set(LABELS):
        name = single_split or next(
            (s for s, aliases in SPLIT_DIRS.items() if root.name in aliases), "train")
        split_folders[canonical_split(name)] = root
    else:
        for split, aliases in SPLIT_DIRS.items():
            for alias in aliases:
                if (root / alias).is_dir():
                    split_folders[split] = root / alias
                    break
    wanted = [canonical_split(s) for s in splits]
    out = {}
    for split, folder in split_folders.items():
        if split not in wanted:
            continue
        loaded = _load_12class_folder(folder, split)
        keep = cap_unknown(loaded.labels, unknown_fraction, _split_seed(seed, split))
        out[split] = _subset(loaded, keep) if len(keep) != len(loaded) else loaded
    if split_folders and not any(len(s) for s in out.values()) and out:
        raise UserError(f"{root}: no .wav clips in the label folders; the dataset is empty")
    candidates = [root / BACKGROUND_DIR, root.parent / BACKGROUND_DIR]
    noise, noise_paths = _resolve_noise(candidates, noise_dir)
    return Source(KIND_12CLASS, str(root), out, noise, noise_paths)


def _tfds_cache(ds, info, data_dir: str | None, split: str, lut: np.ndarray
                ) -> tuple[Clips, np.ndarray]:
    """A TFDS split as clips of a one-time int16 cache (rows in TFDS order) and its labels,
    keyed by the data folder, the builder's version and the split's size."""
    import hashlib
    import json

    from tinyspeech_tf.data.clips import cache_dir, cached_rows

    version = str(getattr(info, "version", "")) if info is not None else ""
    try:
        examples = int(info.splits[split].num_examples)
    except (AttributeError, KeyError, TypeError, ValueError):
        examples = -1
    key = hashlib.sha256(json.dumps([os.path.abspath(data_dir) if data_dir else "",
                                     version, split, examples]).encode()).hexdigest()[:16]

    def rows():
        import tensorflow_datasets as tfds

        for example in tfds.as_numpy(ds):
            audio = np.asarray(example["audio"])
            if audio.dtype == np.int16:
                audio = audio.astype(np.float32) / 32768.0
            yield fit_length(audio, CLIP_SAMPLES), int(example["label"])

    clips, raw = cached_rows(cache_dir() / "tfds" / f"{split}-{key}.i16", rows)
    return clips, lut[raw].astype(np.int32)


def load_tfds(data_dir: str | None = None, *, splits: tuple[str, ...] = SPLITS, seed: int = 0,
              unknown_fraction: float | None = 0.1,
              noise_dir: str | os.PathLike | None = None, download: bool = False) -> Source:
    """TFDS ``speech_commands``, its labels mapped to ours by name.

    Never downloads unless ``download`` (the archive is 2.3 GB and needs internet). TFDS
    gives no random access to an example, so each split is streamed once into an int16 cache
    (:func:`_tfds_cache`) and read from there like files; ``_unknown_`` is capped like the
    other sources.
    """
    import tensorflow_datasets as tfds

    out = {}
    for split in splits:
        split = canonical_split(split)
        try:
            result = tfds.load(TFDS_NAME, split=split, data_dir=data_dir, with_info=True,
                               download=download)
        except Exception as err:  # tfds raises many types; all mean "not available here"
            text = str(err).strip()
            first = text.splitlines()[0].split(". ")[0] if text else type(err).__name__
            where = data_dir or "the default TFDS data_dir"
            raise UserError(
                f"tfds {TFDS_NAME} ({split}) is not available in {where} ({first[:160]}); "
                "prepare it with `tfds build speech_commands` where there is internet, or use "
                "a local folder (`tinyspeech dataset synth --out DIR`)") from None
        ds, info = result if isinstance(result, tuple) else (result, None)
        names = TFDS_LABELS
        if info is not None:
            try:
                names = tuple(info.features["label"].names)
            except (AttributeError, KeyError, TypeError):
                pass
        lut = np.array([LABELS.index(word_to_label(n)) for n in names], dtype=np.int32)
        waves, labels = _tfds_cache(ds, info, data_dir, split, lut)
        paths = [f"tfds:{TFDS_NAME}/{split}[{i}]" for i in range(len(labels))]
        loaded = Split(waves, labels, LABELS, paths, split)
        keep = cap_unknown(loaded.labels, unknown_fraction, _split_seed(seed, split))
        out[split] = _subset(loaded, keep) if len(keep) != len(loaded) else loaded
    if out and not any(len(s) for s in out.values()):
        raise UserError(f"tfds {TFDS_NAME}: the requested splits hold no examples")
    noise, noise_paths = _resolve_noise([], noise_dir)
    root = f"tfds:{data_dir}" if data_dir else "tfds"
    return Source(KIND_TFDS, root, out, noise, noise_paths)


def load(source: str | os.PathLike, *, splits: tuple[str, ...] = SPLITS, seed: int = 0,
         unknown_fraction: float | None = 0.1, silence_fraction: float = 0.1,
         noise_dir: str | os.PathLike | None = None, download: bool = False,
         words: tuple[str, ...] | None = None) -> Source:
    """Load any supported source; ``tfds`` / ``tfds:DATA_DIR`` or a folder (kind detected).

    ``words`` (custom keywords) needs the full archive layout, where every word has a folder;
    the other layouts hold only the ten protocol words.

    ``seed`` only drives which unknown clips are kept and where silence is cut, so it can stay
    fixed while training seeds vary. ``noise_dir`` overrides where background noise comes from
    (default: the source's ``_background_noise_``, else ``../shared``'s official clips).
    """
    text = os.fspath(source)
    if words is not None and tuple(words) != WORDS:
        kind = "tfds" if text == "tfds" or text.startswith("tfds:") else detect(text)
        if kind != KIND_ARCHIVE:
            raise UserError(f"{text}: custom --words need the full Speech Commands archive "
                            "layout (one folder per word, e.g. speech_commands_v0.01_mini); "
                            "this source holds only the ten protocol words")
        return load_archive(text, splits=splits, seed=seed, unknown_fraction=unknown_fraction,
                            silence_fraction=silence_fraction, noise_dir=noise_dir, words=words)
    if text == "tfds" or text.startswith("tfds:"):
        data_dir = text[len("tfds:"):] or None
        return load_tfds(data_dir, splits=splits, seed=seed, unknown_fraction=unknown_fraction,
                         noise_dir=noise_dir, download=download)
    kind = detect(text)
    if kind == KIND_ARCHIVE:
        return load_archive(text, splits=splits, seed=seed, unknown_fraction=unknown_fraction,
                            silence_fraction=silence_fraction, noise_dir=noise_dir)
    return load_12class(text, splits=splits, seed=seed, unknown_fraction=unknown_fraction,
                        noise_dir=noise_dir)
