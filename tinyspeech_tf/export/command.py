"""``tinyspeech export-tflite RUN``: a trained run -> the C/C++ files a TFLM firmware compiles.

Reads the run directory written by ``tinyspeech train`` and writes ``build/<run name>/``:
``model_data.{h,cc}``, ``model_settings.h``, ``op_resolver.h``, ``golden.h`` and the manifest
``export.json``; then copies the C/C++ files into the firmware projects (Arduino and Zephyr).
Every value is measured from the run's own files (the arena in TFLM, the golden scores in
TFLM on the golden features), so the firmware never carries a number typed in by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.export import headers as H
from tinyspeech_tf.io import write_atomic as _write_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
# Firmware projects that compile the exported files (relative to the repository root).
DEFAULT_COPY_DIRS: tuple[str, ...] = ("firmware/arduino/TinySpeechM", "firmware/zephyr/src/model")
DEFAULT_ARENA_MARGIN = 1024
ARENA_ALIGN = 16
MANIFEST = "export.json"
RUN_FILES = ("model_int8.tflite", "labels.txt", "frontend.json")


# ---- paths shown to people (never an absolute path of this machine) ------------------------
def display_path(path: str | os.PathLike) -> str:
    """A path for banners and the manifest: as given if relative, else relative to the working
    directory or the repository, else only its name, so no file records this machine's layout.
    """
    text = os.fspath(path)
    if not os.path.isabs(text):
        return Path(os.path.normpath(text)).as_posix()
    p = Path(text).resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (REPO_ROOT, ""), (REPO_ROOT.parent, "../")):
        if base.parent != base and p.is_relative_to(base):  # never relative to "/"
            return prefix + p.relative_to(base).as_posix()
    return p.name



# ---- reading the run --------------------------------------------------------------------------
@dataclass
class Run:
    """The parts of a run directory the export needs."""

    path: Path
    tflite: bytes
    labels: tuple[str, ...]
    frontend: object  # FrontendConfig
    config: dict | None  # config.json (None if absent: then --golden-wav is required)


def read_run(run_dir: str | os.PathLike) -> Run:
    """Load and check a run directory; every problem is a UserError saying what to do."""
    from tinyspeech_tf.data import read_labels
    from tinyspeech_tf.features import FrontendConfig

    path = Path(run_dir)
    hint = "train one with `make train` (or `tinyspeech train --out DIR`)"
    if not path.is_dir():
        raise UserError(f"{run_dir}: no such run directory; {hint}")
    for name in RUN_FILES:
        if not (path / name).is_file():
            raise UserError(f"{run_dir}: {name} is missing, so this is not a finished training "
                            f"run; {hint}")
    tflite = (path / "model_int8.tflite").read_bytes()
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise UserError(f"{run_dir}/model_int8.tflite: not a TFLite flatbuffer (no TFL3 "
                        "identifier); re-run training to regenerate it")
    labels = read_labels(path / "labels.txt")
    frontend = FrontendConfig.from_json((path / "frontend.json").read_text())
    config = None
    if (path / "config.json").is_file():
        try:
            config = json.loads((path / "config.json").read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{run_dir}/config.json: not valid JSON ({err})") from None
        if not isinstance(config, dict):
            raise UserError(f"{run_dir}/config.json: expected a JSON object")
    return Run(path, tflite, labels, frontend, config)


def _model_io(run: Run) -> dict:
    """I/O quantization of the model, checked against labels and front-end."""
    from tinyspeech_tf._compat import tf
    from tinyspeech_tf.quantize import io_quantization

    where = f"{display_path(run.path)}/model_int8.tflite"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            io = io_quantization(run.tflite)
            interp = tf.lite.Interpreter(model_content=run.tflite)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"{where}: TFLite cannot load it ({err})") from None
    dtypes = (interp.get_input_details()[0]["dtype"], interp.get_output_details()[0]["dtype"])
    if any(d != np.int8 for d in dtypes) or io["input_scale"] <= 0 or io["output_scale"] <= 0:
        raise UserError(f"{where}: input and output must be int8 with a quantization scale "
                        f"(got {dtypes[0].__name__}/{dtypes[1].__name__}); export the "
                        "full-integer model that `tinyspeech train` writes")
    shape = io["input_shape"]
    if len(shape) not in (3, 4) or shape[0] != 1 or (len(shape) == 4 and shape[3] != 1):
        raise UserError(f"{where}: input shape {shape}, expected [1, frames, coefficients, 1]")
    if tuple(shape[1:3]) != tuple(run.frontend.feature_shape):
        raise UserError(f"{where}: input is {shape[1]} frames x {shape[2]} coefficients but "
                        f"frontend.json gives {run.frontend.feature_shape[0]} x "
                        f"{run.frontend.feature_shape[1]}; the run is inconsistent, retrain")
    if io["output_shape"] != [1, len(run.labels)]:
        raise UserError(f"{where}: output shape {io['output_shape']} does not match the "
                        f"{len(run.labels)} labels of labels.txt; the run is inconsistent")
    return io


# ---- the golden clip --------------------------------------------------------------------------
def _dataset_path(run: Run) -> str:
    from tinyspeech_tf.train import SYNTHETIC_DIR

    where = display_path(run.path)
    if run.config is None or not isinstance(run.config.get("data"), str):
        raise UserError(f"{where}: config.json (naming the dataset) is missing, so the golden "
                        "clip cannot be chosen from it; pass --golden-wav WAV (a 1 s clip)")
    data = run.config["data"]
    if data == "synthetic":
        data = SYNTHETIC_DIR
    if data == "tfds" or data.startswith("tfds:"):
        return data
    if not os.path.isabs(data) and not os.path.exists(data) \
            and (REPO_ROOT / data).exists():
        data = os.fspath(REPO_ROOT / data)
    if not os.path.isdir(data):
        raise UserError(f"{where}: its dataset {run.config['data']!r} is not available here, "
                        "so the golden clip cannot be chosen from it; pass --golden-wav WAV "
                        "(a 1 s 16 kHz clip of a keyword)")
    return data


def dataset_golden_clip(run: Run) -> tuple[np.ndarray, str, str]:
    """(samples, clip path, label) of the first validation clip, by path, of the first keyword.

    The first label that is neither silence nor unknown is a real word, so the self-test
    exercises a keyword, not noise; sorting by path makes the choice reproducible.
    """
    from tinyspeech_tf import data as data_mod

    target = next((lab for lab in run.labels if lab not in (data_mod.SILENCE, data_mod.UNKNOWN)),
                  None)
    if target is None:
        raise UserError(f"{display_path(run.path)}/labels.txt has no keyword label; pass "
                        "--golden-wav WAV")
    source = _dataset_path(run)
    try:
        split = data_mod.load(source, splits=("validation",)).split("validation")
    except (UserError, OSError, ImportError) as err:
        raise UserError(f"cannot read the validation split of {source!r} ({err}); pass "
                        "--golden-wav WAV instead") from None
    names = split.label_names
    candidates = [i for i in range(len(split)) if names[split.labels[i]] == target]
    if not candidates:
        raise UserError(f"{source}: no validation clip labelled {target!r}; pass "
                        "--golden-wav WAV")
    best = min(candidates, key=lambda i: split.paths[i])
    return split.waveforms[best], split.paths[best], target


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
    else:
        if label is not None:
            raise UserError("--golden-label needs --golden-wav (dataset clips have labels)")
        samples, path, label = dataset_golden_clip(run)
        clip, source = display_path(path), "dataset"
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
           command: str | None = None) -> dict:
    """Write the firmware files of ``run_dir`` into ``out_dir`` (and copies); the manifest.

    ``copy_to`` directories receive the C/C++ files (relative ones are taken from the
    repository root); ``command`` is what the banners say generated the files.
    """
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf import quantize, tflm
    from tinyspeech_tf.frontend_c import fnv1a32

    if isinstance(arena_margin, bool) or not isinstance(arena_margin, int) or arena_margin < 0:
        raise UserError(f"--arena-margin must be a whole number of bytes >= 0, "
                        f"got {arena_margin!r}")
    run = read_run(run_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    ops = quantize.check_ops(run.tflite, what=f"{display_path(run.path)}/model_int8.tflite")
    io = _model_io(run)
    arena_measured = tflm.arena_bytes(run.tflite)
    arena_size = _round_up(arena_measured + arena_margin, ARENA_ALIGN)
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
        silence_index=(run.labels.index(data_mod.SILENCE)
                       if data_mod.SILENCE in run.labels else -1),
        unknown_index=(run.labels.index(data_mod.UNKNOWN)
                       if data_mod.UNKNOWN in run.labels else -1))
    files = {
        H.MODEL_DATA_H: H.model_data_h(prov),
        H.MODEL_DATA_CC: H.model_data_cc(run.tflite, prov),
        H.MODEL_SETTINGS_H: H.model_settings_h(settings, prov),
        H.OP_RESOLVER_H: H.op_resolver_h(ops, prov),
        H.GOLDEN_H: H.golden_h(golden, prov),
    }
    # The manifest last: its presence means the export is complete.
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        manifest_path.unlink()
    for name, text in files.items():
        _write_atomic(out / name, text)
    copies = []
    for target in copy_to:
        target = Path(target)
        if not target.is_absolute():
            target = REPO_ROOT / target
        if target.resolve() == out.resolve():
            continue
        if target.exists() and not target.is_dir():
            raise UserError(f"copy target {display_path(target)}: exists and is not a directory")
        for name, text in files.items():
            _write_atomic(target / name, text)
        copies.append(display_path(target))

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
        "arena_note": "measured on a 64-bit host (TFLM Python interpreter); a 32-bit board "
                      "needs no more",
        "labels": list(run.labels),
        "input": {k: io[k] for k in ("input_shape", "input_scale", "input_zero_point")},
        "output": {k: io[k] for k in ("output_shape", "output_scale", "output_zero_point")},
        "frontend": run.frontend.to_dict(),
        "golden": {"clip": golden.clip, "label": golden.label,
                   "label_index": golden.label_index, "label_source": golden.label_source,
                   "predicted_index": golden.predicted_index,
                   "predicted_label": run.labels[golden.predicted_index]},
        "warnings": [w for w in (_tables_mismatch(run.frontend),) if w],
    }
    _write_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---- CLI --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="training run directory, e.g. "
                        "runs/tinyspeech_m (made by `tinyspeech train`)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: build/<name of RUN>)")
    parser.add_argument("--golden-wav", default=None, metavar="WAV",
                        help="the clip for golden.h (default: the first validation clip of "
                             "the run's dataset labelled with the first keyword)")
    parser.add_argument("--golden-label", default=None, metavar="LABEL",
                        help="the label of --golden-wav (default: its folder's name if that "
                             "is a label, else the model's prediction)")
    parser.add_argument("--arena-margin", type=int, default=DEFAULT_ARENA_MARGIN,
                        metavar="BYTES", help="bytes added to the measured minimum arena "
                        f"(default {DEFAULT_ARENA_MARGIN}); the sum is rounded up to 16")
    parser.add_argument("--copy-to", action="append", default=None, metavar="DIR",
                        help="copy the C/C++ files into DIR (repeatable; relative to the "
                             f"repository; default: {', '.join(DEFAULT_COPY_DIRS)})")
    parser.add_argument("--no-copy", action="store_true",
                        help="write only the output directory")


def _command_line(args: argparse.Namespace) -> str:
    """The command as banners show it: the options that change the output, no local paths."""
    parts = ["tinyspeech", "export-tflite", display_path(args.run)]
    if args.golden_wav:
        parts += ["--golden-wav", display_path(args.golden_wav)]
    if args.golden_label:
        parts += ["--golden-label", args.golden_label]
    if args.arena_margin != DEFAULT_ARENA_MARGIN:
        parts += ["--arena-margin", str(args.arena_margin)]
    return shlex.join(parts)


def default_out_dir(run_dir: str | os.PathLike) -> Path:
    """``build/<name of the run directory>``, relative to the working directory."""
    name = Path(os.path.normpath(os.fspath(run_dir))).resolve().name
    return Path("build") / name


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else default_out_dir(args.run)
    copy_to = () if args.no_copy else tuple(args.copy_to or DEFAULT_COPY_DIRS)
    manifest = export(args.run, out, golden_wav=args.golden_wav,
                      golden_label=args.golden_label, arena_margin=args.arena_margin,
                      copy_to=copy_to, command=_command_line(args))
    for warning in manifest["warnings"]:
        print(f"tinyspeech export-tflite: warning: {warning}", file=sys.stderr)
    g = manifest["golden"]
    print(f"{manifest['out']}: {len(manifest['files'])} files from {manifest['run']} "
          f"({manifest['tflite_bytes']} bytes, {manifest['op_count']} ops, arena "
          f"{manifest['arena_header_bytes']} = {manifest['arena_measured_bytes']} measured + "
          f"{manifest['arena_margin_bytes']} margin); golden clip {g['clip']} "
          f"({g['label']}, predicted {g['predicted_label']})")
    for target in manifest["copied_to"]:
        print(f"  copied to {target}/")
    return 0
