"""The shipped models: Keras-applications weights, intact files, and accuracy as recorded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import fails_one_line, require_shared

from tinyspeech_tf import bundles, cli, zoo
from tinyspeech_tf.errors import UserError

SHIPPED = zoo.pretrained_names()


def test_tinyspeech_m_ships_and_every_bundle_is_intact():
    assert "tinyspeech_m" in SHIPPED
    for name in SHIPPED:
        bundles.verify(zoo.PRETRAINED_DIR / name)
        # the self-test clip travels with the model: export needs no dataset
        assert (zoo.PRETRAINED_DIR / name / "golden.wav").is_file(), name


def test_weights_load_keras_applications_style_and_refuse_other_shapes():
    model = zoo.tinyspeech_m(weights="speech_commands")
    again = zoo.get("tinyspeech_m", weights="speech_commands")
    x = np.random.default_rng(0).standard_normal((4, 49, 10, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    fresh = zoo.tinyspeech_m()
    assert not np.allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(UserError, match="does not fit tinyspeech_m"):
        zoo.tinyspeech_m(num_classes=5, weights="speech_commands")
    with pytest.raises(UserError, match="no shipped 'speech_commands' weights"):
        zoo.tiny_conv(weights="speech_commands")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_score_what_their_metrics_say(name):
    """On the real val split: the int8 model in TFLM and the Keras weights give exactly the
    accuracies recorded in the bundle's metrics.json."""
    val = require_shared("data", "speech_commands_v0.02_real")
    from tinyspeech_tf.evaluate import ValSet, accuracy_report, int8_accuracy
    from tinyspeech_tf.runs import read_run

    run = read_run(zoo.PRETRAINED_DIR / name)
    metrics = run.metrics
    assert metrics["data_kind"] and metrics["val_examples"] == 487
    data = ValSet(str(val))
    acc, why = int8_accuracy(run.tflite, data, run.labels, run.frontend)
    assert why == "" and acc == metrics["int8_tflm"]["accuracy"]
    model = zoo.get(name, weights="speech_commands")
    predicted = model.predict(data.features(run.frontend), verbose=0).argmax(axis=1)
    report = accuracy_report(data.labels_for(run.labels), predicted, run.labels)
    assert report["accuracy"] == pytest.approx(metrics["float"]["accuracy"], abs=1 / 487)


def test_pretrained_command_lists_and_a_changed_file_is_refused(tmp_path, capsys):
    assert cli.main(["pretrained"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((zoo.PRETRAINED_DIR / "tinyspeech_m" / "metrics.json").read_text())
    assert f"| tinyspeech_m | {metrics['int8_tflm']['accuracy']:.2%} |" in out
    copy = tmp_path / "pretrained"
    shutil.copytree(zoo.PRETRAINED_DIR / "tinyspeech_m", copy / "tinyspeech_m")
    with (copy / "tinyspeech_m" / "labels.txt").open("a") as f:
        f.write("extra\n")
    fails_one_line(["pretrained", "--into", str(copy)], capsys, "labels.txt",
                   "changed since it was bundled")


def test_bundling_refuses_a_spec_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(zoo.PRETRAINED_DIR / "tinyspeech_m", run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model_kwargs": {"f_mode": "x"}}))
    with pytest.raises(UserError, match="default arguments"):
        bundles.write_bundle(run, tmp_path / "out")
