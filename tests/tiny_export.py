"""An export of an untrained model, for firmware tests that need real generated headers.

Same recipe as tests/test_export.py: a seeded zoo model int8-converted on random calibration
data, the run files `tinyspeech train` would leave, a 440 Hz tone as the golden clip, and
`tinyspeech export-tflite --no-copy` into a temporary directory (never into the repository).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TONE_HZ = 440.0


def tone(freq: float = TONE_HZ, amplitude: float = 0.3, samples: int = 16000) -> np.ndarray:
    t = np.arange(samples) / 16000.0
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_tone_set(root: Path, train_per_label: int, val_per_label: int = 2) -> Path:
    """12 classes told apart by pitch (silence is quiet noise): a 12-class layout folder that a
    model learns in a few steps, with no tools or downloads."""
    from tinyspeech_tf.audio import write_wav
    from tinyspeech_tf.data import LABELS

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    for split, count in (("train", train_per_label), ("val", val_per_label)):
        for i, label in enumerate(LABELS):
            (root / split / label).mkdir(parents=True)
            for k in range(count):
                pitch = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) if i else 0 * t
                clip = pitch + 0.01 * rng.standard_normal(16000)
                write_wav(root / split / label / f"{label}_{k}.wav", clip.astype(np.float32))
    return root


def make_run(root: Path, model: str = "tinyspeech_m", **model_kwargs) -> Path:
    """A run directory as `tinyspeech train` leaves it, minus the training: ``root/runs/MODEL``.

    ``model_kwargs`` go to the zoo builder and into config.json, as `--model-arg` would.
    """
    from tinyspeech_tf import data, quantize, zoo
    from tinyspeech_tf._compat import keras
    from tinyspeech_tf.features import DEFAULT_CONFIG

    run = root / "runs" / model
    run.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    tflite = quantize.convert_int8(zoo.get(model, **model_kwargs),
                                   quantize.random_representative((49, 10, 1)))
    (run / "model_int8.tflite").write_bytes(tflite)
    data.write_labels(run / "labels.txt", data.LABELS)
    (run / "frontend.json").write_text(DEFAULT_CONFIG.to_json())
    (run / "config.json").write_text(json.dumps({"model": model, "data": "no/such/dataset",
                                                 "model_kwargs": model_kwargs}))
    (run / "metrics.json").write_text("{}")
    return run


def make_export(root: Path, model: str = "tinyspeech_m", golden_frames: int | None = None) -> Path:
    """Write run/ and out/ under ``root``; returns the export directory (out/). ``golden_frames``
    (default: the exporter's) sets how much of the golden clip's PCM golden.h holds."""
    from tinyspeech_tf import cli
    from tinyspeech_tf.audio import write_wav

    run = make_run(root, model)
    wav = root / "tone.wav"
    write_wav(wav, tone())
    out = root / "out"
    argv = ["export-tflite", str(run), "--out", str(out), "--golden-wav", str(wav), "--no-copy"]
    if golden_frames is not None:
        argv += ["--golden-frames", str(golden_frames)]
    if cli.main(argv) != 0:
        raise RuntimeError("export-tflite failed")
    return out
