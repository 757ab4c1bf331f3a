"""int8 accuracy in the TFLM interpreter: the one code path every model is scored with.

Works for our run directories' models and for foreign ones (the MLPerf Tiny and MicroNet
models), given their label order: data labels are mapped to the model's by name, with
``silence``/``unknown`` accepted for ``_silence_``/``_unknown_``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError


def features_of(waveforms, frontend) -> np.ndarray:
    """[N, frames, mfcc, 1] float32 model inputs for 1 s waveforms: an array, or clips read a
    chunk at a time (a whole split is featurised without holding its audio)."""
    from tinyspeech_tf.data.clips import Clips
    from tinyspeech_tf.features import features_from_samples

    if not isinstance(waveforms, Clips):
        return features_from_samples(waveforms, frontend)[..., None]
    out = np.zeros((len(waveforms), *frontend.feature_shape, 1), dtype=np.float32)
    done = 0
    for chunk in waveforms.chunks():
        out[done:done + len(chunk)] = features_from_samples(chunk, frontend)[..., None]
        done += len(chunk)
    return out


def accuracy_report(labels: np.ndarray, predicted: np.ndarray, names: tuple[str, ...]) -> dict:
    """Accuracy, per-class accuracy (None for a class without examples) and the confusion."""
    n = len(names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum()
                        else None) for i, name in enumerate(names)}
    return {"accuracy": float(np.mean(labels == predicted)) if len(labels) else 0.0,
            "examples": int(len(labels)), "per_class": per_class,
            "confusion": confusion.tolist()}


def evaluate_int8(tflite_bytes: bytes, features: np.ndarray, labels: np.ndarray,
                  names: tuple[str, ...]) -> dict:
    """Accuracy of an int8 model in the TFLM interpreter on float features."""
    from tinyspeech_tf import quantize, tflm
    from tinyspeech_tf.features import quantize as quantize_features

    io = quantize.io_quantization(tflite_bytes)
    q = quantize_features(features, io["input_scale"], io["input_zero_point"])
    scores = tflm.run_tflm(tflite_bytes, q)
    return accuracy_report(labels, scores.argmax(axis=1), names)


class ValSet:
    """The validation split, loaded once; features cached per front-end config."""

    def __init__(self, data: str):
        from tinyspeech_tf import data as data_mod

        self.data = data
        self.split = data_mod.load(data, splits=("validation",)).split("validation")
        self._features: dict[str, np.ndarray] = {}

    def features(self, frontend) -> np.ndarray:
        key = frontend.digest()
        if key not in self._features:
            self._features[key] = features_of(self.split.waveforms, frontend)
        return self._features[key]

    def labels_for(self, names: tuple[str, ...]) -> np.ndarray:
        from tinyspeech_tf import data as data_mod

        return data_mod.remap_labels(self.split, names).labels


NO_VAL_DATA = "no validation data on this machine (give --data)"


def int8_accuracy(tflite_bytes: bytes, val: ValSet | None, names: tuple[str, ...],
                  frontend) -> tuple[float | None, str]:
    """(accuracy, "") or (None, why not) of a model on ``val`` (None: no data here)."""
    from tinyspeech_tf import quantize
    from tinyspeech_tf.data.protocol import canonical_label

    if val is None:
        return None, NO_VAL_DATA

    io = quantize.io_quantization(tflite_bytes)
    expected = [1, *frontend.feature_shape, 1]
    if io["input_shape"] != expected:
        return None, (f"input {io['input_shape']} is not {expected} "
                      f"({frontend.feature_shape[0]}x{frontend.feature_shape[1]} MFCC)")
    names = tuple(canonical_label(n) for n in names)
    if len(names) != io["output_shape"][-1]:
        return None, f"{io['output_shape'][-1]} outputs but {len(names)} labels known"
    report = evaluate_int8(tflite_bytes, val.features(frontend), val.labels_for(names), names)
    return report["accuracy"], ""


def evaluate(model_path: str | os.PathLike, data: str, split: str = "validation",
             labels: str | None = None) -> dict:
    """Score an int8 model (a ``.tflite`` or a run directory) on a dataset split in TFLM;
    returns accuracy, per class, confusion. The front-end is the model's frontend.json when it
    has one beside it, else the MLPerf default."""
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf.runs import read_run

    path = Path(model_path)
    if not path.exists():
        raise UserError(f"{path}: no such model file")
    model = read_run(path, labels, allow_file=True)
    names = model.labels
    model.io  # noqa: B018 - checks I/O against labels and front-end, one line if they differ
    from tinyspeech_tf.data.sources import canonical_split, load_12class

    folder = Path(data)
    wanted = canonical_split(split)
    if folder.is_dir() and any((folder / label).is_dir() for label in data_mod.LABELS):
        # A flat <label>/*.wav folder is the set to score, whatever its name.
        source = load_12class(folder, splits=(wanted,), single_split=wanted)
    else:  # only the split scored is read: a bad clip elsewhere does not block it
        source = data_mod.load(data, splits=(wanted,))
    chosen = source.split(wanted)
    missing = [n for n in chosen.label_names if n not in names]
    if missing:
        raise UserError(f"data labels {missing} are not among the model's labels {names}")
    mapped = data_mod.remap_labels(chosen, names)
    features = features_of(mapped.waveforms, model.frontend)
    report = evaluate_int8(model.tflite, features, mapped.labels, names)
    report.update(model=str(path), data=str(data), split=split, labels=list(names))
    return report
