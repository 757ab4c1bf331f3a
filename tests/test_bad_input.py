"""Every command against every class of bad input: one line on stderr and exit 2, never a
traceback, and nothing half-written. New cases go here.

Classes: damaged model files (empty, text, random bytes, truncated, a float32 model) given to
each command that reads a model; output paths that cannot be written (the parent is a file,
the output is a folder) given to each command that writes one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_one_line
from tiny_export import make_run

from tinyspeech_tf.audio import write_wav


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bad_input")
    run = make_run(root)
    val = root / "val"
    rng = np.random.default_rng(0)
    for label in ("yes", "no", "_silence_"):
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
    fails_one_line(["evaluate", run, "--data", val, "--json", str(target)], capsys)
    fails_one_line(["stream", audio, "--model", run, "--json", str(target)], capsys)
    fails_one_line(["stream", audio, "--model", run, "--markdown", str(target)], capsys)
    fails_one_line(["stream-make", str(target), "--data", val, "--minutes", "0.05"], capsys)
    if where == "parent_is_file":
        fails_one_line(["export-tflite", run, "--out", str(target), "--no-copy"], capsys)
        fails_one_line(["export-tflite", run, "--out", str(tmp_path / "e"), "--copy-to",
                        str(target)], capsys)
        # the files go as one set: a copy target that fails leaves --out untouched too
        assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
        fails_one_line(["dataset", "synth", "--out", str(target), "--per-word", "1"], capsys)
    assert not list(tmp_path.rglob("*.tmp*"))
