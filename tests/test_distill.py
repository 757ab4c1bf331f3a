"""Knowledge distillation: the loss, teachers of every kind, and a student that follows one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_one_line, require_shared
from tiny_export import write_tone_set

from tinyspeech_tf import quantize
from tinyspeech_tf._compat import keras, tf
from tinyspeech_tf.data import LABELS, write_labels
from tinyspeech_tf.features import DEFAULT_CONFIG
from tinyspeech_tf.train import TrainConfig, distill, train

SHAPE = (*DEFAULT_CONFIG.feature_shape, 1)
# The constant teacher's order: LABELS reversed, so a wrong column mapping shows.
TEACHER_ORDER = tuple(reversed(LABELS))
FAVOURITE = "left"


def _constant_teacher(probs: dict[str, float]) -> keras.Model:
    """A model whose output is the same distribution for every input (in TEACHER_ORDER)."""
    p = np.array([probs.get(n, 0.0) for n in TEACHER_ORDER], np.float64)
    p = (p + 1e-4) / (p + 1e-4).sum()
    inputs = keras.Input(SHAPE)
    x = keras.layers.Flatten()(inputs)
    out = keras.layers.Dense(len(p), activation="softmax", kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(np.log(p)))(x)
    return keras.Model(inputs, out)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> Path:
    """A run directory whose model always says FAVOURITE (90%) or "yes" (10%)."""
    run = tmp_path_factory.mktemp("teacher")
    _constant_teacher({FAVOURITE: 0.9, "yes": 0.1}).save(run / "model.keras")
    write_labels(run / "labels.txt", TEACHER_ORDER)
    (run / "frontend.json").write_text(DEFAULT_CONFIG.to_json())
    return run


def test_alpha_one_is_cross_entropy_and_smoothing_matches_keras():
    rng = np.random.default_rng(0)
    p = tf.nn.softmax(rng.standard_normal((5, 4)).astype(np.float32))
    y = np.array([0, 3, 1, 2, 2])
    ce = keras.losses.sparse_categorical_crossentropy(y, p).numpy()
    got = distill.DistillationLoss(1.0, 4.0)(distill.targets(y), p).numpy()
    np.testing.assert_allclose(got, ce.mean(), rtol=1e-5)
    smooth = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(tf.one_hot(y, 4), p)
    got = distill.DistillationLoss(1.0, 1.0, 0.2)(distill.targets(y), p).numpy()
    np.testing.assert_allclose(got, smooth.numpy(), rtol=1e-5)


def test_alpha_zero_is_tau_squared_kl_of_softened_outputs():
    rng = np.random.default_rng(1)
    s = rng.standard_normal((3, 5))
    t = rng.standard_normal((3, 5))
    tau = 3.0

    def soft(z):
        e = np.exp(z / tau - (z / tau).max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    want = (tau ** 2 * (soft(t) * (np.log(soft(t)) - np.log(soft(s)))).sum(axis=1)).mean()
    student = tf.nn.softmax(s.astype(np.float32))
    teacher = tf.nn.softmax(t.astype(np.float32))
    got = distill.DistillationLoss(0.0, tau)(distill.targets([0, 1, 2], teacher), student)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)
    # A student equal to its teacher has nothing left to learn from it.
    same = distill.DistillationLoss(0.0, tau)(distill.targets([0, 1, 2], teacher), teacher)
    assert abs(float(same)) < 1e-5


def test_run_directory_teacher_speaks_in_the_students_label_order(teacher_run):
    teacher = distill.load_teacher(teacher_run, LABELS, DEFAULT_CONFIG)
    assert teacher.info.kind == "keras" and teacher.info.labels == TEACHER_ORDER
    x = np.random.default_rng(2).standard_normal((7, *SHAPE)).astype(np.float32) * 10
    probs = teacher.probabilities(x)
    assert probs.shape == (7, len(LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert set(probs.argmax(axis=1)) == {LABELS.index(FAVOURITE)}
    assert np.all(probs[:, LABELS.index("yes")] > probs[:, LABELS.index("no")])


def test_tflite_teachers_float_and_int8(teacher_run, tmp_path):
    model = keras.models.load_model(teacher_run / "model.keras")
    float_path = tmp_path / "teacher_float.tflite"
    float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    int8_path = tmp_path / "teacher_int8.tflite"
    int8_path.write_bytes(quantize.convert_int8(model, quantize.random_representative(SHAPE)))
    x = np.random.default_rng(3).standard_normal((4, *SHAPE)).astype(np.float32)
    order = ",".join(TEACHER_ORDER)
    for path, kind in ((float_path, "tflite-float"), (int8_path, "tflite-int8")):
        teacher = distill.load_teacher(path, LABELS, DEFAULT_CONFIG, labels=order)
        assert teacher.info.kind == kind
        probs = teacher.probabilities(x)
        assert set(probs.argmax(axis=1)) == {LABELS.index(FAVOURITE)}, kind
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_mlperf_reference_teacher_scores_real_clips():
    """The MLPerf float model, given its label order, is a ~90% teacher on the real val clips."""
    shared = require_shared("models", "mlperf_tiny_kws_ref_float32.tflite")
    data = require_shared("data", "speech_commands_v0.02_real")
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf.train import features_of, recipes

    val = data_mod.load(str(data)).split("validation")
    teacher = distill.load_teacher(shared, val.label_names, DEFAULT_CONFIG,
                                   labels=recipes.MLPERF_TEACHER_LABELS)
    probs = teacher.probabilities(features_of(val.waveforms[:160], DEFAULT_CONFIG))
    assert np.mean(probs.argmax(axis=1) == val.labels[:160]) > 0.8


@pytest.mark.parametrize("case,fragment", [
    ("missing", "no such run directory or .tflite file"),
    ("text", "not a readable .tflite model"),
    ("nolabels", "its label order is unknown; give it with --teacher-labels"),
    ("fewlabels", "12 outputs but 3 labels"),
    ("notstudent", "has no output for the student's label(s) yes"),
])
def test_bad_teachers_are_one_line(case, fragment, teacher_run, tmp_path, capsys):
    model = keras.models.load_model(teacher_run / "model.keras")
    lone = tmp_path / "lone" / "t.tflite"
    lone.parent.mkdir()
    lone.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    (tmp_path / "text.tflite").write_text("not a model")
    teacher, labels = {
        "missing": (tmp_path / "nope.tflite", None),
        "text": (tmp_path / "text.tflite", None),
        "nolabels": (lone, None),
        "fewlabels": (lone, "a,b,c"),
        "notstudent": (lone, ",".join(n if n != "yes" else "maybe" for n in TEACHER_ORDER)),
    }[case]
    argv = ["train", "--data", "nowhere", "--teacher", str(teacher), "--epochs", "1"]
    if labels:
        argv += ["--teacher-labels", labels]
    tones = write_tone_set(tmp_path / "tones", train_per_label=1)
    argv[2] = str(tones)
    argv += ["--out", str(tmp_path / "run"), "--max-steps-per-epoch", "1", "--qat-epochs", "0"]
    fails_one_line(argv, capsys, fragment)


def _distilled_share(tones: Path, teacher: Path, out: Path, alpha: float) -> tuple[float, dict]:
    """Train a student on ``tones`` with ``teacher`` at ``alpha``; the share of val clips it
    labels FAVOURITE, and its metrics."""
    config = TrainConfig(model="tinyspeech_m", data=str(tones), out=str(out), epochs=6,
                         batch_size=16, learning_rate=0.05, qat_epochs=0,
                         calibration_examples=16, teacher=str(teacher),
                         distill_alpha=alpha, distill_temperature=1.0)
    metrics = train(config, verbose=0)
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf.train import features_of

    val = data_mod.load(str(tones)).split("validation")
    model = keras.models.load_model(out / "model.keras")
    predicted = model.predict(features_of(val.waveforms, DEFAULT_CONFIG), verbose=0)
    return float(np.mean(predicted.argmax(axis=1) == LABELS.index(FAVOURITE))), metrics


def test_alpha_zero_student_follows_the_teacher_not_the_labels(teacher_run, tmp_path):
    """With alpha = 0 the labels carry no weight: a student distilled from a teacher that
    always says FAVOURITE ends up saying FAVOURITE for clips of every class; with alpha = 1
    the same run follows the labels instead."""
    tones = write_tone_set(tmp_path / "tones", train_per_label=4)
    share, metrics = _distilled_share(tones, teacher_run, tmp_path / "run", 0.0)
    assert share > 0.9, share
    labels_share, _ = _distilled_share(tones, teacher_run, tmp_path / "labels", 1.0)
    assert labels_share < 0.5, labels_share
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["distillation"]["teacher"] == str(teacher_run)
    assert saved["distillation"]["teacher_kind"] == "keras"
    # The constant teacher is right only on FAVOURITE's clips.
    assert saved["distillation"]["teacher_val_accuracy"] < 0.2
    assert "Distilled from" in (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert metrics["distillation"]["alpha"] == 0.0
