"""The training pipeline end to end on a tiny generated set: run directory, resume, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_export import write_tone_set

from tinyspeech_tf import cli
from tinyspeech_tf.data import LABELS
from tinyspeech_tf.train import Interrupted, TrainConfig, train

RUN_FILES = ["model.keras", "model_int8.tflite", "labels.txt", "frontend.json", "metrics.json",
             "confusion_int8.png", "curves.png", "MODEL_CARD.md", "config.json", "golden.wav",
             "golden.json"]


@pytest.fixture(scope="module")
def tone_set(tmp_path_factory) -> Path:
    """12 classes told apart by pitch: learnable in a few steps, no tools or downloads needed."""
    return write_tone_set(tmp_path_factory.mktemp("tones"), train_per_label=6)


def _config(data: Path, out: Path, epochs: int = 2) -> TrainConfig:
    """Two float epochs, then two QAT epochs."""
    return TrainConfig(model="tinyspeech_m", data=str(data), out=str(out), epochs=epochs,
                       batch_size=8, max_steps_per_epoch=3, calibration_examples=16,
                       qat_epochs=2, lr_schedule="cosine")


@pytest.fixture(scope="module")
def straight_run(tone_set, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "straight"
    return out, train(_config(tone_set, out), verbose=0)


def test_run_directory_is_complete(straight_run):
    out, metrics = straight_run
    for name in RUN_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert (out / "labels.txt").read_text().split() == list(LABELS)
    assert 0.0 <= metrics["int8_tflm"]["accuracy"] <= 1.0
    assert metrics["ops"] and metrics["arena_bytes"] > 0
    assert metrics["qat_epochs"] == 2 and metrics["quantization"].startswith("QAT")
    assert "QUANTIZE" not in metrics["ops"] and "DEQUANTIZE" not in metrics["ops"]
    assert metrics["tflite_bytes"] == (out / "model_int8.tflite").stat().st_size
    assert "int8 (TFLM)" in (out / "MODEL_CARD.md").read_text()
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*tmp*"))


def test_run_fixes_its_self_test_clip(straight_run, tone_set):
    """The golden clip is stored when the run is made: the first val clip, by path, of the
    first keyword, named relative to its dataset (no path of this machine in the run)."""
    from tinyspeech_tf.audio import read_wav

    out, _ = straight_run
    golden = json.loads((out / "golden.json").read_text())
    word = next(label for label in LABELS if label not in ("_silence_", "_unknown_"))
    first = sorted((tone_set / "val" / word).glob("*.wav"))[0]
    assert golden == {"label": word, "clip": f"val/{word}/{first.name}"}
    np.testing.assert_array_equal(read_wav(out / "golden.wav")[0], read_wav(first)[0])


def test_resume_matches_uninterrupted_run(straight_run, tone_set, tmp_path):
    """Killed once in the float phase and once in the QAT phase, resumed each time: the same
    weights, the same int8 flatbuffer byte for byte, the same metrics."""
    out = tmp_path / "resumed"
    with pytest.raises(Interrupted):
        train(_config(tone_set, out), verbose=0, stop_after=1)
    with pytest.raises(Interrupted):
        train(_config(tone_set, out), resume=True, verbose=0, stop_after=3)
    resumed = train(_config(tone_set, out), resume=True, verbose=0)
    straight_dir, straight = straight_run
    from tinyspeech_tf._compat import keras

    a = keras.models.load_model(straight_dir / "checkpoints" / "last.keras")
    b = keras.models.load_model(out / "checkpoints" / "last.keras")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-6)
    assert (out / "model_int8.tflite").read_bytes() == (
        straight_dir / "model_int8.tflite").read_bytes()
    for key in ("float", "qat", "int8_tflm", "int8_ptq_tflm"):
        assert resumed[key]["accuracy"] == straight[key]["accuracy"], key


def test_evaluate_scores_the_run(straight_run, tone_set, capsys):
    out, metrics = straight_run
    assert cli.main(["evaluate", str(out / "model_int8.tflite"), "--data",
                     str(tone_set / "val")]) == 0
    text = capsys.readouterr().out
    assert f"{100 * metrics['int8_tflm']['accuracy']:.2f}%" in text


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nope", "--data", "x"], "unknown model 'nope'"),
    (["evaluate", "missing.tflite", "--data", "x"], "missing.tflite: no such model file"),
])
def test_bad_arguments_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_finished_run_counts_only_for_todays_architecture(straight_run, tone_set, monkeypatch):
    """A run records its full architecture: once the zoo preset changes, a run trained before
    is no longer taken for a finished run of that model (it would be stale)."""
    from tinyspeech_tf import zoo
    from tinyspeech_tf.train import finished_metrics
    from tinyspeech_tf.zoo.tinyspeech import PRESETS

    out, metrics = straight_run
    assert metrics["architecture"] == zoo.architecture("tinyspeech_m")
    config = _config(tone_set, out)
    assert finished_metrics(config) is not None
    # A run recorded before the builder had an option counts at that option's default ...
    recorded = {k: v for k, v in metrics["architecture"].items() if k != "share"}
    assert zoo.same_architecture(recorded, "tinyspeech_m")
    assert not zoo.same_architecture({**recorded, "share": "block"}, "tinyspeech_m")
    # ... but not when today's preset sets it otherwise.
    assert not zoo.same_architecture({k: v for k, v in recorded.items()
                                      if k != "global_pool"}, "tinyspeech_m")
    monkeypatch.setitem(PRESETS, "tinyspeech_m", {**PRESETS["tinyspeech_m"], "head_channels": 24})
    assert finished_metrics(config) is None


def test_spec_naming_a_preset_is_stale_once_the_preset_changes(tone_set, tmp_path,
                                                               monkeypatch):
    """A spec that names a zoo preset builds another model when the preset changes: the run
    records what its spec built, so it no longer counts as finished for that spec."""
    import dataclasses

    from tinyspeech_tf import zoo
    from tinyspeech_tf.train import finished_metrics
    from tinyspeech_tf.zoo.tinyspeech import PRESETS

    spec = {"builder": "tinyspeech_m", "name": "m_spec", "per_channel": False,
            "kwargs": {"embed_widths": [4], "head_channels": 8}}
    config = dataclasses.replace(_config(tone_set, tmp_path / "spec_run"), model="m_spec",
                                 spec=spec, qat_epochs=0, epochs=1, max_steps_per_epoch=1)
    metrics = train(config, verbose=0)
    assert metrics["architecture"] == zoo.architecture("tinyspeech_m", **spec["kwargs"])
    assert finished_metrics(config) is not None
    monkeypatch.setitem(PRESETS, "tinyspeech_m", {**PRESETS["tinyspeech_m"], "stem_channels": 6})
    assert finished_metrics(config) is None


def test_frontend_option_trains_and_ships_that_resolution(tone_set, tmp_path, capsys):
    """`--frontend honk_40x98` (the paper's input) reaches the model, the int8 file and the
    run's frontend.json, which export and the C front-end read; unknown names are one line."""
    from tinyspeech_tf import quantize
    from tinyspeech_tf.features import FRONTENDS, FrontendConfig

    out = tmp_path / "honk"
    assert cli.main(["train", "--data", str(tone_set), "--out", str(out), "--frontend",
                     "honk_40x98", "--epochs", "1", "--qat-epochs", "0", "--batch-size", "8",
                     "--max-steps-per-epoch", "2"]) == 0
    fe = FrontendConfig.from_json((out / "frontend.json").read_text())
    assert fe == FRONTENDS["honk_40x98"] and fe.feature_shape == (98, 40)
    io = quantize.io_quantization((out / "model_int8.tflite").read_bytes())
    assert list(io["input_shape"]) == [1, 98, 40, 1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frontend"] == {"name": "honk_40x98", "feature_shape": [98, 40]}
    assert "98 frames x 40 coefficients" in (out / "MODEL_CARD.md").read_text()
    capsys.readouterr()
    assert cli.main(["train", "--data", str(tone_set), "--out", str(tmp_path / "x"),
                     "--frontend", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown front-end 'bogus'" in err and "\n" not in err


def test_resume_keeps_the_runs_length_and_refuses_fewer_epochs(tone_set, tmp_path, capsys):
    """`--resume` without --epochs keeps the run's own length (not the default 50); fewer
    epochs than done is one line."""
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train(_config(tone_set, out, epochs=3), verbose=0, stop_after=2)
    common = ["train", "--data", str(tone_set), "--out", str(out), "--resume"]
    assert cli.main([*common, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--epochs 1" in err and "has done 2 epochs" in err and "\n" not in err
    assert cli.main(common) == 0
    assert json.loads((out / "config.json").read_text())["epochs"] == 3
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 3


@pytest.mark.parametrize("argv, message", [
    (["--lr", "nan"], "--lr nan: a learning rate must be a finite number > 0"),
    (["--lr", "-0.1"], "--lr -0.1: a learning rate must be a finite number > 0"),
    (["--max-steps-per-epoch", "-2"], "--max-steps-per-epoch -2: at least 1"),
])
def test_bad_numbers_are_one_line(argv, message, tone_set, tmp_path, capsys):
    assert cli.main(["train", "--data", str(tone_set), "--out", str(tmp_path / "r"),
                     *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_a_diverging_run_stops_without_a_model(tone_set, tmp_path, capsys, monkeypatch):
    """Weights that turn NaN (here: an optimizer stepping by NaN) stop the run at the end of
    the epoch, with one line and no model."""
    from tinyspeech_tf.train import loop

    original = loop._optimizer
    monkeypatch.setattr(loop, "_optimizer",
                        lambda rate, *rest: original(float("nan"), *rest))
    out = tmp_path / "nan"
    assert cli.main(["train", "--data", str(tone_set), "--out", str(out),
                     "--epochs", "2", "--qat-epochs", "0", "--batch-size", "8",
                     "--max-steps-per-epoch", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the loss is not finite" in err and "\n" not in err
    assert not (out / "model_int8.tflite").exists() and not (out / "model.keras").exists()


def test_a_failed_run_leaves_a_finished_one_intact(straight_run, tone_set, tmp_path, capsys,
                                                  monkeypatch):
    """Training into a finished run that then fails (here: the loss turns NaN) changes none of
    the files a reader uses (config.json, the model, labels, metrics); --resume would continue
    the failed attempt, whose configuration lives in checkpoints/."""
    import shutil

    from tinyspeech_tf.train import loop

    out = tmp_path / "finished"
    shutil.copytree(straight_run[0], out)
    kept = {name: (out / name).read_bytes() for name in
            ("config.json", "model_int8.tflite", "labels.txt", "metrics.json", "golden.json")}
    original = loop._optimizer
    monkeypatch.setattr(loop, "_optimizer",
                        lambda rate, *rest: original(float("nan"), *rest))
    assert cli.main(["train", "--data", str(tone_set), "--out", str(out), "--epochs", "5",
                     "--qat-epochs", "0", "--batch-size", "8", "--max-steps-per-epoch", "3"]) == 2
    capsys.readouterr()
    for name, data in kept.items():
        assert (out / name).read_bytes() == data, name
    assert json.loads((out / "checkpoints" / "config.json").read_text())["epochs"] == 5


def test_one_populated_class_is_refused(tmp_path, capsys):
    from tinyspeech_tf.audio import write_wav

    for split in ("train", "val"):
        for label in LABELS:
            (tmp_path / "one" / split / label).mkdir(parents=True)
        for k in range(3):
            write_wav(tmp_path / "one" / split / "yes" / f"y{k}.wav",
                      np.zeros(16000, np.float32))
    assert cli.main(["train", "--data", str(tmp_path / "one"), "--out",
                     str(tmp_path / "r"), "--epochs", "1"]) == 2
    assert "a classifier needs at least two" in capsys.readouterr().err


def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_model(tmp_path):
    """A real `kill -9` in the middle of an epoch of the streamed pipeline (clips read per
    batch), then `--resume`: the int8 model is byte for byte that of a run never killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = write_tone_set(tmp_path / "tones", train_per_label=16)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])

    def argv(out: Path) -> list[str]:
        return [sys.executable, "-m", "tinyspeech_tf.cli", "train", "--data", str(data),
                "--out", str(out), "--epochs", "4", "--qat-epochs", "0", "--batch-size", "4",
                "--lr-schedule", "cosine"]

    straight = tmp_path / "straight"
    subprocess.run(argv(straight), env=env, check=True, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(argv(killed), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    # Each epoch prints a line when it ends; killed a moment into the epoch after the first.
    for line in proc.stdout:
        if line.startswith("epoch 1/4"):
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((killed / "checkpoints" / "state.json").read_text())
    assert 1 <= state["epoch"] < 4 and not (killed / "metrics.json").exists()
    subprocess.run([*argv(killed), "--resume"], env=env, check=True, capture_output=True,
                   timeout=600)
    assert (killed / "model_int8.tflite").read_bytes() == (
        straight / "model_int8.tflite").read_bytes()
