"""Every command against every class of bad input: one line on stderr and exit 2, never a
traceback, and nothing half-written. New cases go here.

Classes: damaged model files (empty, text, random bytes, truncated, a float32 model) given to
each command that reads a model; output paths that cannot be written (the parent is a file,
the output is a folder) given to each command that writes one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_one_line
from tiny_export import make_run

from tinyspeech_tf import cli
from tinyspeech_tf.audio import write_wav


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bad_input")
    run = make_run(root)
    val = root / "val"
    rng = np.random.default_rng(0)
    from tinyspeech_tf.data import LABELS

    for label in LABELS:
        (val / label).mkdir(parents=True)
        write_wav(val / label / "a.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32))
    audio = root / "stream.wav"
    write_wav(audio, (0.05 * rng.standard_normal(16000 * 3)).astype(np.float32))
    return {"root": root, "run": run, "val": val, "audio": audio}


def _float_model(path: Path) -> None:
    from tinyspeech_tf import zoo
    from tinyspeech_tf._compat import tf

    model = zoo.tinyspeech_m()
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


BAD_MODELS = {
    "empty": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("this is not a model\n"),
    "random": lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)),
    "truncated": None,  # the good model cut in half
    "float32": _float_model,
}


def _bad_run(good: dict, tmp_path: Path, kind: str) -> Path:
    run = tmp_path / f"run_{kind}"
    shutil.copytree(good["run"], run)
    target = run / "model_int8.tflite"
    if kind == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        BAD_MODELS[kind](target)
    return run


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_damaged_models_are_one_line_in_every_command(good, tmp_path, capsys, kind):
    run = _bad_run(good, tmp_path, kind)
    model = run / "model_int8.tflite"
    fails_one_line(["evaluate", str(model), "--data", str(good["val"])], capsys, str(model))
    fails_one_line(["evaluate", str(run), "--data", str(good["val"])], capsys)
    fails_one_line(["stream", str(good["audio"]), "--model", str(run)], capsys)
    out = tmp_path / "export"
    fails_one_line(["export-tflite", str(run), "--out", str(out), "--no-copy"], capsys)
    assert not out.exists()
    fails_one_line(["compress", str(run), "--data", str(good["val"])], capsys)
    fails_one_line(["bench", "--models", "tinyspeech_m", "--runs", str(run), "--no-readme",
                    "--out", str(tmp_path / "bench"), "--data", str(good["val"]),
                    "--peers", str(tmp_path / "none"), "--rounds", "1", "--warmup", "0",
                    "--no-frontend", "--no-probe"], capsys)


@pytest.mark.parametrize("where", ["parent_is_file", "is_folder"])
def test_unwritable_outputs_are_one_line(good, tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    if where == "parent_is_file":
        blocker.write_text("a file")
        target = blocker / "out"
    else:
        blocker.mkdir()
        (blocker / "keep").write_text("x")
        target = blocker
    run, val, audio = str(good["run"]), str(good["val"]), str(good["audio"])
    why = "is a file, not a folder" if where == "parent_is_file" else "is a folder"
    fails_one_line(["evaluate", run, "--data", val, "--json", str(target)], capsys, why)
    fails_one_line(["stream", audio, "--model", run, "--json", str(target)], capsys, why)
    fails_one_line(["stream", audio, "--model", run, "--markdown", str(target)], capsys, why)
    if where == "parent_is_file":
        wav = str(target / "s.wav")
        fails_one_line(["stream-make", wav, "--data", val, "--minutes", "0.5"], capsys, why)
        fails_one_line(["export-tflite", run, "--out", str(target), "--no-copy"], capsys, why)
        fails_one_line(["export-tflite", run, "--out", str(tmp_path / "e"), "--copy-to",
                        str(target)], capsys, why)
        # the files go as one set: a copy target that fails leaves --out untouched too
        assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
        fails_one_line(["dataset", "synth", "--out", str(target), "--per-word", "1"], capsys,
                       why)
    assert not list(tmp_path.rglob("*.tmp*"))


# ---- bad audio, labels and specs ---------------------------------------------------------------
def _wav_folder(good: dict, tmp_path: Path, name: str, content: bytes | None) -> Path:
    folder = tmp_path / name
    shutil.copytree(good["val"], folder)
    target = folder / "yes" / "a.wav"
    if content is None:  # header claims a second, data holds 500 samples
        data = target.read_bytes()
        target.write_bytes(data[:44 + 1000])
    else:
        target.write_bytes(content)
    return folder


@pytest.mark.parametrize("content, fragment", [
    (None, "truncated"), (b"", "empty"), (b"RIFF\x00\x00", "not a readable PCM wav")])
def test_damaged_wavs_are_one_line(good, tmp_path, capsys, content, fragment):
    folder = _wav_folder(good, tmp_path, "val", content)
    err = fails_one_line(["evaluate", str(good["run"]), "--data", str(folder)], capsys,
                         "a.wav", fragment)
    assert "()" not in err
    fails_one_line(["dataset", "info", str(folder)], capsys, "a.wav", fragment)


def test_labels_and_specs_are_checked(good, tmp_path, capsys):
    labels = ",".join(["yes"] * 12)
    fails_one_line(["evaluate", str(good["run"] / "model_int8.tflite"), "--data",
                    str(good["val"]), "--labels", labels], capsys, "twice")
    spec = tmp_path / "spec.json"
    spec.write_bytes(np.random.default_rng(2).bytes(300))
    fails_one_line(["train", "--spec", str(spec), "--out", str(tmp_path / "r")], capsys,
                   "spec.json")


def test_broken_resume_states_are_one_line(good, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "state.json").write_text("{not json")
    (run / "config.json").write_text(json.dumps({"model": "tinyspeech_m", "data": "synthetic",
                                                 "out": str(run), "epochs": 2}))
    fails_one_line(["train", "--out", str(run), "--resume"], capsys, "state.json")
    (run / "checkpoints" / "state.json").write_text(json.dumps({"epoch": 1, "best": {},
                                                                "history": {}}))
    (run / "checkpoints" / "last.keras").write_bytes(b"PK\x03\x04 truncated")
    fails_one_line(["train", "--out", str(run), "--resume", "--data", str(good["val"])], capsys,
                   "last.keras")
    (run / "config.json").unlink()
    (run / "checkpoints" / "config.json").unlink()
    fails_one_line(["train", "--out", str(run), "--resume"], capsys, "config.json")


def test_evaluate_reads_only_the_split_it_scores(good, tmp_path, capsys):
    """A damaged train clip does not block scoring the validation split, and a flat
    <label>/*.wav folder of any name is the set scored."""
    data = tmp_path / "data"
    shutil.copytree(good["val"], data / "val")
    shutil.copytree(good["val"], data / "train")
    (data / "train" / "yes" / "a.wav").write_bytes(b"")
    assert cli.main(["evaluate", str(good["run"]), "--data", str(data)]) == 0
    shutil.copytree(good["val"], tmp_path / "my_clips")
    assert cli.main(["evaluate", str(good["run"]), "--data", str(tmp_path / "my_clips")]) == 0
    assert "validation examples" in capsys.readouterr().out
