"""Knowledge distillation: a larger model's softened outputs as a second training target.

Why: a 4.7K-parameter network trained on a few thousand clips learns little about how the
classes resemble each other; a teacher trained on far more speech (the MLPerf Tiny reference,
85K clips) knows that "off" sounds like "up" and a cough like silence, and its soft outputs
carry that to the student (Hinton et al., 2015). The loss is

    alpha * CE(labels, student) + (1 - alpha) * tau^2 * KL(teacher_tau || student_tau)

where ``x_tau = softmax(log(x) / tau)``; tau^2 keeps the soft term's gradients on the scale
of the hard one. The teacher scores the very batch the student sees (after augmentation and
the front-end), so it also labels what augmentation did to the clip.

Every teacher, a run directory's Keras model or a ``.tflite`` file (float or int8), is run as
a TFLite model: one code path, callable from ``tf.data`` through ``tf.numpy_function``, and
cheap (the MLPerf float DS-CNN costs ~5 ms per batch of 64 on one core).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyspeech_tf._compat import keras, tf
from tinyspeech_tf.data.protocol import canonical_label, read_labels
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.features import FrontendConfig
from tinyspeech_tf.features import quantize as quantize_features

# Student probabilities are clipped here before the log: a float32 softmax can underflow to 0.
_LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class TeacherInfo:
    """What a run records about its teacher (config.json holds the source and labels)."""

    source: str
    kind: str  # "keras" (a run directory), "tflite-float" or "tflite-int8"
    labels: tuple[str, ...]


class Teacher:
    """A trained model's class probabilities, in the student's label order.

    Build with :func:`load_teacher`. :meth:`probabilities` takes float features
    ``[N, frames, mfcc, 1]`` (what the student sees) and returns ``[N, len(student_labels)]``;
    teacher classes the student lacks are dropped and the rest renormalised.
    """

    def __init__(self, tflite_bytes: bytes, info: TeacherInfo,
                 student_labels: tuple[str, ...]):
        self.info = info
        missing = [n for n in student_labels if n not in info.labels]
        if missing:
            raise UserError(f"teacher {info.source}: has no output for the student's label(s) "
                            f"{', '.join(missing)} (its labels: {', '.join(info.labels)}); "
                            "give its order with --teacher-labels")
        self._columns = np.array([info.labels.index(n) for n in student_labels])
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self._interp = tf.lite.Interpreter(model_content=tflite_bytes, num_threads=1)
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._batch = None
        self._lock = threading.Lock()

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if self._batch != len(x):
            self._interp.resize_tensor_input(self._in["index"], [len(x), *x.shape[1:]])
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"]).copy()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """float32 ``[N, C_student]``: the teacher's probabilities for these features."""
        x = np.asarray(features, np.float32)
        if not len(x):
            return np.zeros((0, len(self._columns)), np.float32)
        if self.info.kind == "tflite-int8":
            scale, zero = self._in["quantization"]
            x = quantize_features(x, scale, zero)
        with self._lock:
            y = self._invoke(x)
        if self.info.kind == "tflite-int8":
            scale, zero = self._out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        y = np.clip(y.astype(np.float32), 0.0, None)[:, self._columns]
        total = y.sum(axis=1, keepdims=True)
        uniform = np.full_like(y, 1.0 / y.shape[1])
        return np.where(total > 0, y / np.maximum(total, 1e-30), uniform).astype(np.float32)

    def tf_probabilities(self, features):
        """:meth:`probabilities` as a TF op (for ``tf.data`` maps)."""
        probs = tf.numpy_function(self.probabilities, [features], tf.float32, stateful=False)
        probs.set_shape([None, len(self._columns)])
        return probs


def _teacher_labels(labels: str | list | tuple | None, beside: Path | None,
                    outputs: int, source: str) -> tuple[str, ...]:
    """The teacher's output order: given, or its run's labels.txt."""
    if labels is None:
        if beside is None or not beside.exists():
            raise UserError(f"teacher {source}: its label order is unknown; give it with "
                            "--teacher-labels (e.g. down,go,left,no,off,on,right,stop,up,yes,"
                            "silence,unknown for the MLPerf Tiny reference)")
        names = read_labels(beside)
    elif isinstance(labels, str):
        names = (read_labels(labels) if os.path.isfile(labels)
                 else tuple(n.strip() for n in labels.split(",") if n.strip()))
    else:
        names = tuple(labels)
    names = tuple(canonical_label(n) for n in names)
    if len(set(names)) != len(names):
        raise UserError(f"teacher {source}: duplicate names in its labels {', '.join(names)}")
    if len(names) != outputs:
        raise UserError(f"teacher {source}: {outputs} outputs but {len(names)} labels "
                        f"({', '.join(names)}); fix --teacher-labels")
    return names


def _keras_to_tflite(model) -> bytes:
    """A float TFLite copy of a Keras model (the teacher is only ever run, never trained)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return converter.convert()


def load_teacher(source: str | os.PathLike, student_labels: tuple[str, ...],
                 frontend: FrontendConfig, labels: str | list | tuple | None = None
                 ) -> Teacher:
    """A :class:`Teacher` from a run directory (its ``model.keras``) or a ``.tflite`` file.

    The teacher must take the student's input: a run directory's ``frontend.json`` must equal
    ``frontend``; a ``.tflite`` file must take ``[1, frames, mfcc, 1]`` features of that
    front-end (its shape is checked; what front-end made it cannot be, so that is the user's
    word).
    """
    from tinyspeech_tf import quantize, runs

    path = Path(source)
    shape = [*frontend.feature_shape, 1]
    if path.is_dir():
        model_path = path / "model.keras"
        if not model_path.is_file():
            raise UserError(f"teacher {path}: not a run directory (no model.keras); give a "
                            "run directory or a .tflite file")
        theirs = runs.frontend_beside(path)
        if theirs is not None and theirs != frontend:
            raise UserError(f"teacher {path}: trained on another front-end "
                            f"({path / runs.FRONTEND}); a teacher must see the student's "
                            "features")
        import tinyspeech_tf.layers  # noqa: F401  (registers the custom layers)

        try:
            model = keras.models.load_model(model_path, compile=False)
        except (OSError, ValueError) as err:
            raise UserError(f"teacher {model_path}: cannot load ({err})") from None
        if list(model.input_shape[1:]) != shape:
            raise UserError(f"teacher {path}: input {list(model.input_shape[1:])}, the student "
                            f"takes {shape}")
        names = _teacher_labels(labels, path / runs.LABELS, int(model.output_shape[-1]),
                                str(path))
        return Teacher(_keras_to_tflite(model), TeacherInfo(str(path), "keras", names),
                       student_labels)
    if not path.is_file():
        raise UserError(f"teacher {path}: no such run directory or .tflite file")
    data = path.read_bytes()
    try:
        io = quantize.io_quantization(data)
    except Exception as err:  # any parse failure of a foreign file is the user's input
        raise UserError(f"teacher {path}: not a readable .tflite model ({err})") from None
    if io["input_shape"][1:] != shape:
        raise UserError(f"teacher {path}: input shape {io['input_shape']}, the student takes "
                        f"[1, {', '.join(map(str, shape))}]")
    kind = "tflite-int8" if io["input_scale"] else "tflite-float"
    names = _teacher_labels(labels, path.with_name(runs.LABELS), io["output_shape"][-1],
                            str(path))
    return Teacher(data, TeacherInfo(str(path), kind, names), student_labels)


def targets(labels, teacher_probs=None):
    """Training targets for :class:`DistillationLoss`: ``[N, 1]`` labels, plus the teacher's
    ``[N, C]`` probabilities after them when distilling."""
    y = tf.cast(tf.reshape(labels, [-1, 1]), tf.float32)
    return y if teacher_probs is None else tf.concat([y, teacher_probs], axis=1)


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
class DistillationLoss(keras.losses.Loss):
    """Cross-entropy on the labels (optionally smoothed), plus the distillation term when the
    targets carry teacher probabilities (see :func:`targets`).

    ``y_pred`` are the student's softmax probabilities (the zoo's models end in softmax);
    ``log(p) / tau`` gives the same softened distribution as ``logits / tau``.
    """

    def __init__(self, alpha: float = 1.0, temperature: float = 1.0,
                 label_smoothing: float = 0.0, name: str = "distillation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = tf.shape(y_pred)[-1]
        labels = tf.cast(y_true[:, 0], tf.int32)
        log_p = tf.math.log(tf.clip_by_value(y_pred, _LOG_FLOOR, 1.0))
        onehot = tf.one_hot(labels, classes)
        if self.label_smoothing:
            onehot = (onehot * (1.0 - self.label_smoothing)
                      + self.label_smoothing / tf.cast(classes, tf.float32))
        hard = -tf.reduce_sum(onehot * log_p, axis=-1)
        if y_true.shape[-1] == 1 or self.alpha >= 1.0:
            return hard
        tau = self.temperature
        teacher = tf.clip_by_value(y_true[:, 1:], _LOG_FLOOR, 1.0)
        t_log = tf.nn.log_softmax(tf.math.log(teacher) / tau, axis=-1)
        s_log = tf.nn.log_softmax(log_p / tau, axis=-1)
        soft = tf.reduce_sum(tf.exp(t_log) * (t_log - s_log), axis=-1) * tau * tau
        return self.alpha * hard + (1.0 - self.alpha) * soft

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "temperature": self.temperature,
                "label_smoothing": self.label_smoothing}


@keras.utils.register_keras_serializable(package="tinyspeech_tf")
def label_accuracy(y_true, y_pred):
    """Accuracy against the label column of :func:`targets` (teacher columns ignored)."""
    labels = tf.cast(y_true[:, 0], tf.int64)
    return tf.cast(tf.equal(tf.argmax(y_pred, axis=-1), labels), tf.float32)
