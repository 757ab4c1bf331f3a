"""The one reader of a run directory (what ``tinyspeech train`` writes) and of bare models.

A run directory holds ``model_int8.tflite``, ``labels.txt``, ``frontend.json``, ``config.json``
and ``metrics.json``. Export, stream, evaluate, bench, compress, explore and train itself read
runs only through :func:`read_run`, so a run is parsed and checked in one place: model, labels
and front-end must agree (a silent mismatch would score or ship garbage), and every problem is
one :class:`~tinyspeech_tf.errors.UserError` saying what to do.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinyspeech_tf.errors import UserError

MODEL = "model_int8.tflite"
LABELS = "labels.txt"
FRONTEND = "frontend.json"
CONFIG = "config.json"
# The configuration of a run in progress (what --resume continues); config.json beside the
# model is written only with the finished files, so a failed run never changes a finished one.
TRAINING_CONFIG = "checkpoints/config.json"
METRICS = "metrics.json"
# The detector settings `tinyspeech stream-tune` chose for the run (export and stream use them).
DETECTOR_FILE = "detector.json"
# The self-test clip fixed when the run was made (export replays it; no dataset needed later).
GOLDEN_WAV = "golden.wav"
GOLDEN_JSON = "golden.json"
# What makes a directory a finished run.
FINISHED = (MODEL, LABELS, FRONTEND)
TRAIN_HINT = "train one with `make train` (or `tinyspeech train --out DIR`)"


@dataclass
class Run:
    """A finished run (or a bare ``.tflite`` with what lies beside it), read and checked."""

    path: Path  # the run directory, or the .tflite file given
    tflite_path: Path
    tflite: bytes
    labels: tuple[str, ...]
    frontend: object  # FrontendConfig
    config: dict | None  # config.json, None when absent (a bare model)
    metrics: dict | None  # metrics.json, None when absent
    detector: DetectorSettings | None = None  # detector.json (stream-tune), None when absent
    _io: dict | None = field(default=None, repr=False)
    _golden: GoldenClip | None | bool = field(default=False, repr=False)  # False: not read yet

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir()

    @property
    def golden(self) -> GoldenClip | None:
        """golden.wav + golden.json of a run directory, None when absent; read on first use
        (only export and bundling need it, not every command that reads a run)."""
        if self._golden is False:
            self._golden = read_golden(self.path, self.labels) if self.is_dir else None
        return self._golden

    @property
    def io(self) -> dict:
        """The model's I/O quantization, checked against the labels and the front-end."""
        if self._io is None:
            self._io = check_io(self.tflite, self.tflite_path, self.labels, self.frontend)
        return self._io


def read_json_object(path: str | os.PathLike, *, required: bool = False) -> dict | None:
    """A JSON object file of a run; None when absent (unless ``required``); bad JSON is a
    UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        if required:
            raise UserError(f"{path}: missing; the run is incomplete, re-run training")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); re-run training to rewrite it") \
            from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object")
    return value


def training_config(out: str | os.PathLike) -> dict | None:
    """The configuration --resume continues: the run in progress, else the finished run's (runs
    made before the two were kept apart); None when there is none."""
    out = Path(out)
    return read_json_object(out / TRAINING_CONFIG) or read_json_object(out / CONFIG)


def is_finished(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run directory ``tinyspeech train`` has finished."""
    path = Path(path)
    return all((path / name).is_file() for name in (MODEL, LABELS))


def read_run(path: str | os.PathLike, labels: str | list | tuple | None = None, *,
             allow_file: bool = False) -> Run:
    """Read run directory ``path`` (or, with ``allow_file``, a bare ``.tflite`` whose labels
    come from ``labels`` or labels.txt beside it and whose front-end is frontend.json beside it,
    else the MLPerf default). ``labels`` (a labels.txt path, a comma-separated string or a
    sequence) overrides the run's own."""
    from tinyspeech_tf.features import DEFAULT_CONFIG

    path = Path(path)
    if path.is_dir():
        for name in FINISHED:
            if not (path / name).is_file():
                raise UserError(f"{path}: {name} is missing, so this is not a finished "
                                f"training run; {TRAIN_HINT}")
        tflite_path = path / MODEL
    elif path.is_file() and allow_file:
        tflite_path = path
    elif allow_file:
        raise UserError(f"{path}: no such run directory or .tflite file")
    else:
        raise UserError(f"{path}: no such run directory (no {MODEL} there); {TRAIN_HINT}")
    tflite = read_tflite(tflite_path)
    names = model_labels(tflite_path, labels)
    frontend = frontend_beside(tflite_path) or DEFAULT_CONFIG
    beside = tflite_path.parent
    config = read_json_object(beside / CONFIG) if path.is_dir() else None
    metrics = read_json_object(beside / METRICS) if path.is_dir() else None
    detector = read_settings(beside) if path.is_dir() else None
    return Run(path, tflite_path, tflite, names, frontend, config, metrics, detector)


def frontend_beside(path: Path):
    """The FrontendConfig of the run holding ``path`` (a run directory or a file in one):
    its frontend.json, None when there is none."""
    from tinyspeech_tf.features import FrontendConfig

    fe_path = (path if path.is_dir() else path.parent) / FRONTEND
    if not fe_path.is_file():
        return None
    try:
        return FrontendConfig.from_json(fe_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{fe_path}: cannot read it ({err})") from None
    except UserError as err:
        raise UserError(f"{fe_path}: {err}") from None


def read_tflite(path: Path) -> bytes:
    """The bytes of a ``.tflite`` file, refused in one line unless it is a TFLite flatbuffer."""
    try:
        tflite = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    if len(tflite) < 8 or tflite[4:8] != b"TFL3":
        raise UserError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier); re-run training "
                        "to regenerate it")
    import struct

    from tinyspeech_tf.quantize.flatbuffer import parse_flatbuffer

    try:  # walk every table: a truncated or damaged file fails here, not deep in a command
        parse_flatbuffer(tflite)
        types = _io_types(tflite)
    except (struct.error, IndexError, KeyError, TypeError, ValueError, OverflowError):
        raise UserError(f"{path}: a damaged or truncated TFLite file ({len(tflite):,} bytes); "
                        "copy it again or re-run training to regenerate it") from None
    if types != ("int8", "int8"):
        raise UserError(f"{path}: a {types[0]}-in/{types[1]}-out model; every command here "
                        "runs full-integer int8 models in TFLM: give the model_int8.tflite "
                        "`tinyspeech train` writes")
    return tflite


def model_labels(model_path: Path, labels: str | list | tuple | None) -> tuple[str, ...]:
    """The model's output label order: ``labels`` (a labels.txt path, a comma-separated list
    or a sequence), else labels.txt beside the model."""
    from tinyspeech_tf.data import read_labels
    from tinyspeech_tf.data.protocol import canonical_label

    if labels is None:
        beside = model_path.with_name(LABELS)
        if not beside.exists():
            raise UserError(f"{model_path}: no labels.txt beside it; give the model's label "
                            "order with --labels (a file or a comma-separated list)")
        names = read_labels(beside)
    elif isinstance(labels, list | tuple):
        names = tuple(labels)
    elif os.path.exists(labels):
        names = read_labels(labels)
    else:
        names = tuple(n.strip() for n in labels.split(",") if n.strip())
    names = tuple(canonical_label(n) for n in names)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{labels if isinstance(labels, str) else model_path}: label(s) "
                        f"{', '.join(twice)} given twice; one label per model output")
    return names


def _io_types(tflite: bytes) -> tuple[str, str]:
    """Element types of the model's first input and output (``int8``, ``float32``, ...), read
    from the flatbuffer so models only TFLM can run (LUT-compressed ones) are checked too."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    sub = schema.Model.GetRootAsModel(bytearray(tflite), 0).Subgraphs(0)
    return (names.get(sub.Tensors(int(sub.Inputs(0))).Type(), "unknown"),
            names.get(sub.Tensors(int(sub.Outputs(0))).Type(), "unknown"))


def check_io(tflite: bytes, where: Path, labels: tuple[str, ...], frontend) -> dict:
    """I/O quantization of an int8 model, checked: int8 in and out with a scale, input
    ``[1, frames, coefficients(, 1)]`` of ``frontend``, one output per label."""
    import warnings

    from tinyspeech_tf.quantize import io_quantization

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            io = io_quantization(tflite)
            types = _io_types(tflite)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"{where}: TFLite cannot load it ({err})") from None
    if types != ("int8", "int8") or io["input_scale"] <= 0 or io["output_scale"] <= 0:
        # A uint8 or float model with a scale would be fed and read with the wrong types.
        raise UserError(f"{where}: input and output must be int8 with a quantization scale "
                        f"(got {types[0]}/{types[1]}); give the full-integer model "
                        "`tinyspeech train` writes")
    shape = io["input_shape"]
    if len(shape) not in (3, 4) or shape[0] != 1 or (len(shape) == 4 and shape[3] != 1) \
            or tuple(shape[1:3]) != tuple(frontend.feature_shape):
        raise UserError(f"{where}: input shape {shape} does not take "
                        f"{frontend.feature_shape[0]} x {frontend.feature_shape[1]} MFCC "
                        "frames of the front-end; give the matching frontend.json")
    if io["output_shape"] != [1, len(labels)]:
        raise UserError(f"{where}: output shape {io['output_shape']} does not match the "
                        f"{len(labels)} labels given; fix labels.txt or --labels")
    return io


@dataclass(frozen=True)
class DetectorSettings:
    """What a board needs to turn the model's scores into detections, and where it came from."""

    stride_ms: int
    threshold: int
    window_ms: int
    min_count: int
    suppression_ms: int
    chosen_on: str  # the validation stream's audio
    max_false_alarms_per_hour: float
    hit_rate: float  # on that stream
    false_alarms_per_hour: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def read_settings(run_dir: str | os.PathLike) -> DetectorSettings | None:
    """The run's chosen detector settings, or None when it has none yet."""
    data = read_json_object(Path(run_dir) / DETECTOR_FILE)
    if data is None:
        return None
    try:
        return DetectorSettings(**data)
    except TypeError as err:
        raise UserError(f"{Path(run_dir) / DETECTOR_FILE}: not detector settings ({err}); "
                        "re-run `tinyspeech stream-tune`") from None


@dataclass(frozen=True)
class GoldenClip:
    """The run's self-test clip: 1 s of int16 PCM, its label and the clip it was cut from."""

    samples: object  # np.ndarray, int16
    label: str
    clip: str  # where it came from (a dataset path), for the record


def write_golden(run_dir: str | os.PathLike, samples, label: str, clip: str,
                 data: str | None = None) -> None:
    """Store the self-test clip in the run (each file atomic; golden.json, written last, is
    what makes the pair count), so export never needs the training data again. ``clip`` is
    recorded relative to its dataset ``data`` when given (no path of this machine goes into
    a run), else by name only if it lies elsewhere."""
    from tinyspeech_tf.audio import write_wav

    if data is not None:
        try:
            inside = os.path.relpath(clip, data)
        except ValueError:  # another drive
            inside = ".."
        clip = (os.path.basename(clip) if inside.startswith("..") else inside).replace(os.sep, "/")
    run_dir = Path(run_dir)
    (run_dir / GOLDEN_JSON).unlink(missing_ok=True)
    write_wav(run_dir / GOLDEN_WAV, samples)
    tmp = run_dir / f".{GOLDEN_JSON}.tmp{os.getpid()}"
    tmp.write_text(json.dumps({"label": label, "clip": clip}, indent=2) + "\n",
                   encoding="utf-8")
    os.replace(tmp, run_dir / GOLDEN_JSON)


def read_golden(run_dir: str | os.PathLike, labels: tuple[str, ...]) -> GoldenClip | None:
    """The run's self-test clip, None when the run has none (runs made before it existed)."""
    from tinyspeech_tf.audio import read_wav, to_int16

    run_dir = Path(run_dir)
    meta = read_json_object(run_dir / GOLDEN_JSON)
    if meta is None:
        return None
    label = meta.get("label")
    if label not in labels:
        raise UserError(f"{run_dir / GOLDEN_JSON}: label {label!r} is not one of the run's "
                        f"labels ({', '.join(labels)}); delete golden.json and golden.wav to "
                        "export with a generated clip, or pass --golden-wav")
    wav = run_dir / GOLDEN_WAV
    if not wav.is_file():
        raise UserError(f"{wav}: missing though {GOLDEN_JSON} names it; delete {GOLDEN_JSON} "
                        "or pass --golden-wav")
    samples, _ = read_wav(wav)
    return GoldenClip(to_int16(samples), str(label), str(meta.get("clip", "")))
