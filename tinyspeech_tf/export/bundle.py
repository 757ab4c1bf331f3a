"""A trained run -> the C/C++ files a TFLM firmware compiles (``tinyspeech export-tflite``).

Reads the run directory written by ``tinyspeech train`` (through :func:`tinyspeech_tf.runs.
read_run`) and writes ``build/<run name>/``: ``model_data.{h,cc}``, ``model_settings.h``,
``op_resolver.h``, ``golden.h`` and the manifest ``export.json``; then copies the C/C++ files
into the firmware projects (Arduino and Zephyr) that exist in the working directory. Every value
is measured from the run's own files (the arena in TFLM, the golden scores in TFLM on the golden
features), so the firmware never carries a number typed in by hand.

Paths are relative to the working directory, never to this package: after ``pip install .`` the
package lives in site-packages, which export must never write into.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.export import headers as H
from tinyspeech_tf.io import display_path, replace_files
from tinyspeech_tf.io import write_atomic as _write_atomic
from tinyspeech_tf.runs import MODEL, Run, read_run

# Firmware projects that compile the exported files (relative to the working directory: a
# checkout of the repository). Copied into by default only where they exist.
DEFAULT_COPY_DIRS: tuple[str, ...] = ("firmware/arduino/TinySpeechM", "firmware/zephyr/src/model")
# Added to each arena minimum: room for another TFLM version's bookkeeping. The 32-bit figure
# is itself an upper bound (tinyspeech_tf.board_arena), so the margin need not cover it.
DEFAULT_ARENA_MARGIN = 256
ARENA_ALIGN = 16
MANIFEST = "export.json"

__all__ = ["ARENA_ALIGN", "DEFAULT_ARENA_MARGIN", "DEFAULT_COPY_DIRS", "MANIFEST", "Run",
           "dataset_golden_clip", "default_copy_dirs", "default_out_dir", "display_path",
           "export", "make_golden", "read_run"]


def default_copy_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(present, absent) :data:`DEFAULT_COPY_DIRS` in the working directory, by their firmware
    project (``firmware/arduino/TinySpeechM``, ``firmware/zephyr``: the model folder itself is
    generated, so a fresh checkout does not have it yet).

    Only present projects are copied into by default: outside a checkout (e.g. an installed
    package run from anywhere) there is no firmware project to update, and creating one would
    scatter files where nobody compiles them.
    """
    present = tuple(d for d in DEFAULT_COPY_DIRS
                    if Path(d).is_dir() or (Path(d).parent.name == "src"
                                            and Path(d).parent.parent.is_dir()))
    return present, tuple(d for d in DEFAULT_COPY_DIRS if d not in present)


def default_out_dir(run_dir: str | os.PathLike) -> Path:
    """``build/<name of the run directory>``, relative to the working directory."""
    name = Path(os.path.normpath(os.fspath(run_dir))).resolve().name
    return Path("build") / name


# ---- the golden clip --------------------------------------------------------------------------
class DatasetAbsent(UserError):
    """The run's dataset is not on this machine (e.g. a shipped model on a user's clone)."""


GENERATED_CLIP = "generated test signal (the run's dataset is not here)"


def generated_golden_clip(sample_rate: int, samples: int) -> np.ndarray:
    """A fixed 1 s test signal (a rising then falling chirp with harmonics over faint seeded
    noise): the self-test checks that the board's front-end and model compute exactly what
    Python does, which any audio shows; this needs no dataset and copies none."""
    t = np.arange(samples) / sample_rate
    freq = 300.0 + 1700.0 * np.sin(np.pi * t / t[-1])
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    envelope = np.sin(np.pi * t / t[-1]) ** 2
    tone = 0.25 * envelope * (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase))
    noise = 0.003 * np.random.default_rng(0).standard_normal(samples)
    return (tone + noise).astype(np.float32)


def _dataset_path(run: Run) -> str:
    from tinyspeech_tf.train.config import SYNTHETIC_DIR

    where = display_path(run.path)
    if run.config is None or not isinstance(run.config.get("data"), str):
        raise DatasetAbsent(f"{where}: config.json (naming the dataset) is missing, so the golden "
                        "clip cannot be chosen from it; pass --golden-wav WAV (a 1 s clip)")
    data = run.config["data"]
    if data == "synthetic":
        data = SYNTHETIC_DIR
    if data == "tfds" or data.startswith("tfds:"):
        return data
    # A relative path (as training records it) is relative to the working directory.
    if not os.path.isdir(data):
        raise DatasetAbsent(f"{where}: its dataset {run.config['data']!r} is not available here, "
                        "so the golden clip cannot be chosen from it; pass --golden-wav WAV "
                        "(a 1 s 16 kHz clip of a keyword)")
    return data


def dataset_golden_clip(run: Run) -> tuple[np.ndarray, str, str]:
    """(samples, clip path, label) of the golden clip in the run's dataset, for runs made
    before training stored it (see :func:`~tinyspeech_tf.data.protocol.golden_index`)."""
    from tinyspeech_tf import data as data_mod

    source = _dataset_path(run)
    try:
        words = (run.config or {}).get("words")
        split = data_mod.load(source, splits=("validation",),
                              words=tuple(words) if words else None).split("validation")
    except (UserError, OSError, ImportError) as err:
        raise UserError(f"cannot read the validation split of {source!r} ({err}); pass "
                        "--golden-wav WAV instead") from None
    from tinyspeech_tf.data.protocol import golden_index

    best = golden_index(split.labels, split.label_names, split.paths)
    if best is None or split.label_names[split.labels[best]] not in run.labels:
        raise UserError(f"{source}: no validation clip of a keyword of the model; pass "
                        "--golden-wav WAV")
    return split.waveforms[best], split.paths[best], split.label_names[split.labels[best]]


def make_golden(run: Run, io: dict, wav: str | None = None,
                label: str | None = None) -> H.Golden:
    """The golden clip through the Python front-end and TFLM, as the board must reproduce it."""
    from tinyspeech_tf.audio import fit_length, read_wav, to_int16
    from tinyspeech_tf.features import features_from_samples, quantize
    from tinyspeech_tf.tflm import run_tflm

    fe = run.frontend
    if label is not None and label not in run.labels:
        raise UserError(f"--golden-label {label!r} is not a label of the model; expected one "
                        f"of {', '.join(run.labels)}")
    if wav is not None:
        samples, _ = read_wav(wav, sample_rate=fe.sample_rate)
        if samples.size == 0:
            raise UserError(f"{wav}: empty clip (no audio samples); give a 1 s recording")
        clip = display_path(wav)
        folder = Path(wav).resolve().parent.name
        if label is not None:
            source = "option"
        elif folder in run.labels:
            label, source = folder, "folder"
        else:
            source = "prediction"
    elif label is not None:
        raise UserError("--golden-label needs --golden-wav (dataset clips have labels)")
    elif run.golden is not None:
        samples = run.golden.samples.astype(np.float32) / 32768.0
        label, clip, source = run.golden.label, f"{run.golden.clip} (golden.wav of the run)", "run"
    else:
        try:
            samples, path, label = dataset_golden_clip(run)
            clip, source = display_path(path), "dataset"
        except DatasetAbsent:
            samples = generated_golden_clip(fe.sample_rate, fe.clip_samples)
            label, clip, source = None, GENERATED_CLIP, "prediction"
    # The board sees int16 PCM: compute features from exactly those samples.
    pcm = to_int16(fit_length(samples, fe.clip_samples))
    features = features_from_samples(pcm.astype(np.float32) / 32768.0, fe)
    q = quantize(features, io["input_scale"], io["input_zero_point"])
    model_input = q.reshape(1, *io["input_shape"][1:])
    scores = np.asarray(run_tflm(run.tflite, model_input)[0], np.int8).ravel()
    predicted = int(np.argmax(scores))
    if label is None:
        label = run.labels[predicted]
    return H.Golden(samples=pcm, features=q, scores=scores, label_index=run.labels.index(label),
                    label=label, label_source=source, predicted_index=predicted, clip=clip)


# ---- the export -------------------------------------------------------------------------------
def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _tables_mismatch(frontend) -> str | None:
    """Why firmware/common's tables header differs from the run's front-end, or None."""
    from tinyspeech_tf import frontend_c

    try:
        committed = frontend_c.HEADER_PATH.read_text()
    except OSError:
        return None
    if committed != frontend_c.generate_header(frontend):
        return (f"{display_path(frontend_c.HEADER_PATH)} was not generated from this run's "
                "frontend.json; the firmware will compute different features unless you "
                "regenerate it from that config")
    return None


def export(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
           golden_wav: str | None = None, golden_label: str | None = None,
           arena_margin: int = DEFAULT_ARENA_MARGIN,
           copy_to: tuple[str | os.PathLike, ...] | list[str | os.PathLike] = (),
           command: str | None = None, golden_frames: int = H.DEFAULT_GOLDEN_FRAMES) -> dict:
    """Write the firmware files of ``run_dir`` into ``out_dir`` (and copies); the manifest.

    ``copy_to`` directories receive the C/C++ files (relative ones are taken from the working
    directory); ``command`` is what the banners say generated the files.
    """
    from tinyspeech_tf import board_arena, quantize
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf.frontend_c import fnv1a32

    if isinstance(arena_margin, bool) or not isinstance(arena_margin, int) or arena_margin < 0:
        raise UserError(f"--arena-margin must be a whole number of bytes >= 0, "
                        f"got {arena_margin!r}")
    run = read_run(run_dir)
    if isinstance(golden_frames, bool) or not isinstance(golden_frames, int) \
            or not 1 <= golden_frames <= run.frontend.num_frames:
        raise UserError(f"--golden-frames must be 1..{run.frontend.num_frames} (the clip's "
                        f"front-end frames), got {golden_frames!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    ops = quantize.check_ops(run.tflite, what=f"{display_path(run.path)}/{MODEL}")
    io = run.io  # int8 in and out with a scale, shapes of the labels and the front-end
    board = board_arena.board_arena_bytes(run.tflite)
    arena_measured, arena_32bit = board["host_arena"], board["arena"]
    arena_size = _round_up(arena_measured + arena_margin, ARENA_ALIGN)
    arena_32bit_size = _round_up(arena_32bit + arena_margin, ARENA_ALIGN)
    golden = make_golden(run, io, golden_wav, golden_label)

    sha = hashlib.sha256(run.tflite).hexdigest()
    prov = H.Provenance(
        command=command or f"tinyspeech export-tflite {display_path(run.path)}",
        run=display_path(run.path), tflite_bytes=len(run.tflite), tflite_sha256=sha,
        model_fnv1a32=fnv1a32(run.tflite))
    settings = H.Settings(
        labels=run.labels, frontend=run.frontend,
        input_frames=io["input_shape"][1], input_coefficients=io["input_shape"][2],
        input_scale=io["input_scale"], input_zero_point=io["input_zero_point"],
        output_scale=io["output_scale"], output_zero_point=io["output_zero_point"],
        arena_measured=arena_measured, arena_margin=arena_margin, arena_size=arena_size,
        arena_32bit=arena_32bit, arena_32bit_size=arena_32bit_size,
        detector=run.detector,
        silence_index=(run.labels.index(data_mod.SILENCE)
                       if data_mod.SILENCE in run.labels else -1),
        unknown_index=(run.labels.index(data_mod.UNKNOWN)
                       if data_mod.UNKNOWN in run.labels else -1))
    files = {
        H.MODEL_DATA_H: H.model_data_h(prov),
        H.MODEL_DATA_CC: H.model_data_cc(run.tflite, prov),
        H.MODEL_SETTINGS_H: H.model_settings_h(settings, prov),
        H.OP_RESOLVER_H: H.op_resolver_h(ops, prov),
        H.GOLDEN_H: H.golden_h(golden, prov, run.frontend.frame_length,
                               run.frontend.frame_step, golden_frames),
    }
    # The manifest last: its presence means the export is complete.
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()
    targets = [out]
    for target in map(Path, copy_to):
        if target.exists() and not target.is_dir():
            raise UserError(f"copy target {display_path(target)}: exists and is not a directory")
        if all(target.resolve() != t.resolve() for t in targets):
            targets.append(target)
    # Every file of every target as one set: all written, then all renamed.
    replace_files({folder / name: text for folder in targets for name, text in files.items()})
    copies = [display_path(t) for t in targets[1:]]

    manifest = {
        "generated_by": prov.command,
        "run": prov.run,
        "model": (run.config or {}).get("model"),
        "out": display_path(out),
        "files": list(files),
        "copied_to": copies,
        "tflite_bytes": len(run.tflite),
        "tflite_sha256": sha,
        "model_fnv1a32": f"0x{prov.model_fnv1a32:08x}",
        "ops": ops,
        "op_count": len(ops),
        "arena_measured_bytes": arena_measured,
        "arena_margin_bytes": arena_margin,
        "arena_header_bytes": arena_size,
        "arena_32bit_bytes": arena_32bit,
        "arena_32bit_header_bytes": arena_32bit_size,
        "arena_note": "measured on a 64-bit host (TFLM Python interpreter); the 32-bit figure "
                      "is an upper bound computed from it for a Cortex-M with CMSIS-NN "
                      "(tinyspeech_tf.board_arena); model_settings.h picks by pointer size",
        "labels": list(run.labels),
        "input": {k: io[k] for k in ("input_shape", "input_scale", "input_zero_point")},
        "output": {k: io[k] for k in ("output_shape", "output_scale", "output_zero_point")},
        "frontend": run.frontend.to_dict(),
        "golden": {"clip": golden.clip, "label": golden.label,
                   "label_index": golden.label_index, "label_source": golden.label_source,
                   "predicted_index": golden.predicted_index, "frames": golden_frames,
                   "predicted_label": run.labels[golden.predicted_index]},
        "warnings": [w for w in (_tables_mismatch(run.frontend),) if w],
    }
    _write_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return manifest
