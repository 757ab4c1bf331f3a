"""The 12-class keyword-spotting protocol and the label order that travels with the data.

Why a single module: a model trained with one label order and evaluated with another silently
scores garbage, so the order is one constant here, every loader returns it, and trained models
ship a ``labels.txt`` written and read by the helpers below.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyspeech_tf.errors import UserError

SILENCE = "_silence_"
UNKNOWN = "_unknown_"

#: The ten keywords of the TF speech_commands example / MLPerf Tiny KWS.
WORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

#: Canonical label order (the TF speech_commands example's): index i is logit i.
LABELS: tuple[str, ...] = (SILENCE, UNKNOWN, *WORDS)

#: Label order of the MLPerf Tiny reference and ARM MicroNet models (see ../shared/README.md);
#: use with :func:`tinyspeech_tf.data.sources.remap_labels` to score those models.
MLPERF_LABELS: tuple[str, ...] = ("down", "go", "left", "no", "off", "on", "right", "stop", "up",
                                  "yes", "silence", "unknown")

#: Other Speech Commands words (v0.01 + v0.02): the pool the ``_unknown_`` class is drawn from.
UNKNOWN_WORDS: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four",
    "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three",
    "tree", "two", "visual", "wow", "zero",
)

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000

# Canonical names of the splits and the folder names accepted for them on disk.
SPLITS: tuple[str, ...] = ("train", "validation", "test")
SPLIT_DIRS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("val", "validation"),
    "test": ("test",),
}

_ALIASES = {"silence": SILENCE, "unknown": UNKNOWN}


def canonical_label(name: str) -> str:
    """Map spellings used by other projects (``silence``, ``unknown``) to ours."""
    return _ALIASES.get(name, name)


def word_to_label(word: str, words: tuple[str, ...] = WORDS) -> str:
    """Label of a Speech Commands word folder: keywords keep their name, others are unknown.

    ``_background_noise_`` is not a word and must be handled by the caller.
    """
    word = canonical_label(word)
    if word in words or word in (SILENCE, UNKNOWN):
        return word
    return UNKNOWN


def labels_for(words: tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """The label order of a model of ``words`` (None: the ten Speech Commands keywords):
    ``_silence_, _unknown_``, then the words as given. Bad word lists fail in one line."""
    if words is None:
        return LABELS
    words = tuple(words)
    bad = [w for w in words if not w or w in (SILENCE, UNKNOWN, "silence", "unknown")
           or not all(c.isalnum() or c in "_-" for c in w)]
    if not words or bad or len(set(words)) != len(words) or len(words) > 30:
        raise UserError(f"--words {','.join(words)}: give 1 to 30 distinct word folder names "
                        "(letters, digits, _ or -), e.g. --words marvin,sheila,bed")
    return (SILENCE, UNKNOWN, *words)


def label_index(name: str, labels: tuple[str, ...] = LABELS) -> int:
    """Index of ``name`` in ``labels``; a UserError names the valid labels if it is absent."""
    try:
        return labels.index(name)
    except ValueError:
        raise UserError(f"unknown label {name!r}; expected one of {', '.join(labels)}") from None


def write_labels(path: str | os.PathLike, labels: tuple[str, ...] = LABELS) -> None:
    """Write one label per line, in logit order, atomically (the order is the contract)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in labels))
    os.replace(tmp, path)


def read_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """Read a ``labels.txt``; refuses empty files and duplicates, which would shift logits."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such labels file; check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read labels file ({err})") from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels:
        raise UserError(f"{path}: labels file is empty; write one label per line")
    dupes = sorted({name for name in labels if labels.count(name) > 1})
    if dupes:
        raise UserError(f"{path}: duplicate labels {', '.join(dupes)}; each label once per line")
    return labels


def golden_index(labels, label_names: tuple[str, ...], paths: list[str]) -> int | None:
    """The clip a board's self-test replays: the first, by path, of the first keyword.

    A keyword (neither silence nor unknown) makes the self-test exercise a word, not noise;
    sorting by path makes the choice reproducible. None when no keyword clip is there.
    """
    import numpy as np

    labels = np.asarray(labels)
    target = next((i for i, name in enumerate(label_names)
                   if name not in (SILENCE, UNKNOWN) and np.any(labels == i)), None)
    if target is None:
        return None
    return int(min(np.flatnonzero(labels == target), key=lambda i: paths[i]))
