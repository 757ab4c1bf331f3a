"""Trained models shipped in the package (``tinyspeech_tf/pretrained/<name>/``).

Why: a user who clones the repository should be able to flash a board that hears real speech
without training first, as micro_speech, ML-zoo and Keras applications allow. A bundle is a
finished run reduced to what users need: ``weights.npz`` (Keras weights for
``zoo.<name>(weights="speech_commands")``), ``model_int8.tflite``, ``labels.txt``,
``frontend.json``, ``config.json``, ``metrics.json`` (the data it saw and its accuracy),
``detector.json`` when the run has one, the self-test clip ``golden.wav`` + ``golden.json``
(so export needs no dataset), a model card with the data's attribution, and
``SHA256SUMS`` over all of them. ``make pretrained`` regenerates the bundles from runs trained
by the ``real`` recipe; any bundle is also a run directory every command accepts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from tinyspeech_tf.errors import UserError

SUMS = "SHA256SUMS"
COPIED = ("model_int8.tflite", "labels.txt", "frontend.json", "config.json", "metrics.json")
OPTIONAL = ("detector.json", "golden.wav", "golden.json")
ATTRIBUTION = """
## Data and licence

Trained on the real clips of Speech Commands v0.02 (Warden, "Speech Commands: A Dataset for
Limited-Vocabulary Speech Recognition", 2018), released by Google under the Creative Commons
Attribution 4.0 International licence (CC BY 4.0): the 12-class split in
`speech_commands_v0.02_real/{train,val}` of this project's shared data. Accuracy figures are on
its validation speakers, who are not among the training speakers.
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(run_dir: str | os.PathLike, into: str | os.PathLike) -> Path:
    """Bundle finished run ``run_dir`` as ``into/<model name>/`` (replaced as a whole)."""
    from tinyspeech_tf._compat import keras
    from tinyspeech_tf.runs import read_run

    run = read_run(run_dir)
    name = (run.config or {}).get("model")
    if not name or (run.config or {}).get("spec") or (run.config or {}).get("model_kwargs"):
        raise UserError(f"{run_dir}: only zoo models with their default arguments can ship "
                        "as pretrained weights (the builder must rebuild them)")
    keras_path = Path(run_dir) / "model.keras"
    if not keras_path.is_file():
        raise UserError(f"{keras_path}: missing; bundle a run that `tinyspeech train` finished")
    target = Path(into) / name
    staging = Path(into) / f".{name}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        import tinyspeech_tf.layers  # noqa: F401  (registers the custom layers)
        from tinyspeech_tf.zoo import WEIGHTS_FILE, save_weights

        save_weights(keras.models.load_model(keras_path, compile=False), staging / WEIGHTS_FILE)
        for part in COPIED + OPTIONAL:
            if (Path(run_dir) / part).is_file():
                shutil.copyfile(Path(run_dir) / part, staging / part)
        if run.golden is None:
            # A run made before training stored its self-test clip: fix it now, from its data.
            from tinyspeech_tf.export.bundle import dataset_golden_clip
            from tinyspeech_tf.runs import write_golden

            samples, path, label = dataset_golden_clip(run)
            write_golden(staging, samples, label, path, (run.config or {}).get("data"))
        card = (Path(run_dir) / "MODEL_CARD.md").read_text(encoding="utf-8")
        (staging / "MODEL_CARD.md").write_text(card.rstrip() + "\n" + ATTRIBUTION,
                                               encoding="utf-8")
        files = sorted(p.name for p in staging.iterdir())
        (staging / SUMS).write_text("".join(f"{_sha256(staging / f)}  {f}\n" for f in files))
        old = Path(into) / f".{name}.old{os.getpid()}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def verify(bundle: str | os.PathLike) -> None:
    """Raise UserError unless every file of ``bundle`` matches its SHA256SUMS line."""
    bundle = Path(bundle)
    sums = bundle / SUMS
    if not sums.is_file():
        raise UserError(f"{bundle}: no {SUMS}; regenerate it with `make pretrained`")
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = bundle / name
        if not path.is_file() or _sha256(path) != digest:
            raise UserError(f"{path}: missing or changed since it was bundled (sha256 differs); "
                            "restore it from git or regenerate with `make pretrained`")


def listing(root: str | os.PathLike) -> list[dict]:
    """One row per bundle under ``root``: name, int8 accuracy, bytes, arena, data, checked."""
    from tinyspeech_tf.runs import read_run

    rows = []
    for bundle in sorted(p for p in Path(root).glob("*") if (p / SUMS).is_file()):
        verify(bundle)
        run = read_run(bundle)
        metrics = run.metrics or {}
        rows.append({"name": bundle.name, "path": bundle.as_posix(),
                     "int8_accuracy": (metrics.get("int8_tflm") or {}).get("accuracy"),
                     "val_examples": metrics.get("val_examples"),
                     "tflite_bytes": len(run.tflite), "arena_bytes": metrics.get("arena_bytes"),
                     "data": metrics.get("data"), "labels": list(run.labels),
                     "detector": run.detector is not None})
    return rows
