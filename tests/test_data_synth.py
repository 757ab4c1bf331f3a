"""`tinyspeech dataset synth`: a tiny espeak-ng set, caching, resume, regeneration, refusal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyspeech_tf import cli
from tinyspeech_tf.audio import read_wav
from tinyspeech_tf.data import load, synth
from tinyspeech_tf.data.protocol import LABELS


@pytest.fixture(autouse=True)
def only_dataset_command(monkeypatch):
    """Build the CLI with just our command so other commands' work in progress cannot break it."""
    monkeypatch.setattr(cli, "COMMANDS", {"dataset": cli.COMMANDS["dataset"]})


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "set"
    assert cli.main(["dataset", "synth", "--out", str(out), "--per-word", "2", "--seed", "1"]) == 0
    return out


def _wavs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.wav"))}


def test_layout_counts_and_metadata(tiny_set: Path) -> None:
    meta = json.loads((tiny_set / "dataset.json").read_text())
    assert meta["synthetic"] is True and meta["complete"] is True
    assert meta["params"]["per_word"] == 2 and meta["params"]["seed"] == 1
    assert "SYNTHETIC" in (tiny_set / "SYNTHETIC.txt").read_text()
    assert (tiny_set / "labels.txt").read_text().split() == list(LABELS)
    assert not (tiny_set / synth.PARTIAL_MARKER).exists()
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        for label in LABELS:
            assert len(list((tiny_set / split / label).glob("*.wav"))) == n, (split, label)
    train_voices, val_voices = set(meta["voices"]["train"]), set(meta["voices"]["val"])
    assert train_voices and val_voices and not train_voices & val_voices
    for path in (tiny_set / "val").rglob("*.wav"):
        if "silence" not in path.name:  # file names carry the voice: accent_variant
            voice = "_".join(path.stem.split("_")[1:-1]).replace("_", "+", 1)
            assert voice in val_voices, path.name


def test_clips_are_one_second_16k_with_speech(tiny_set: Path) -> None:
    src = load(tiny_set)
    assert src.kind == "12class"
    assert {k: len(v) for k, v in src.splits.items()} == {"train": 24, "validation": 12,
                                                          "test": 12}
    train = src.split("train")
    speech = train.waveforms[train.labels >= 1]
    rms = np.sqrt(np.mean(speech ** 2, axis=1))
    assert np.all(rms > 0.005), rms  # every keyword/unknown clip holds audible speech
    samples, rate = read_wav(next((tiny_set / "train" / "yes").glob("*.wav")))
    assert rate == 16000 and len(samples) == 16000
    # words are placed at random offsets, not all at the start
    onsets = [int(np.argmax(np.abs(w) > 0.3 * np.abs(w).max())) for w in speech]
    assert len(set(onsets)) > 5


def test_info_says_synthetic(tiny_set: Path, capsys) -> None:
    assert cli.main(["dataset", "info", str(tiny_set)]) == 0
    out = capsys.readouterr().out
    assert "kind: 12class" in out and "synthetic: yes" in out
    assert "total             24         12         12" in out


def test_second_run_is_cached(tiny_set: Path, capsys) -> None:
    before = _wavs(tiny_set)
    assert cli.main(["dataset", "synth", "--out", str(tiny_set), "--per-word", "2",
                     "--seed", "1"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert _wavs(tiny_set) == before


def test_interrupted_run_resumes_with_identical_files(tiny_set: Path, tmp_path, capsys) -> None:
    out = tmp_path / "copy"
    shutil.copytree(tiny_set, out)
    original = _wavs(out)
    meta = json.loads((out / "dataset.json").read_text())
    # simulate a kill: no completion marker, the progress marker, 3 clips missing, a temp file
    (out / "dataset.json").unlink()
    (out / synth.PARTIAL_MARKER).write_text(json.dumps({"params": meta["params"]}))
    removed = sorted(original)[5:8]
    for rel in removed:
        (out / rel).unlink()
    (out / "train" / "yes" / "half.wav.tmp123").write_bytes(b"RIFF")
    assert cli.main(["dataset", "synth", "--out", str(out), "--per-word", "2",
                     "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "resuming" in text and "generating 3 of 48" in text
    assert _wavs(out) == original  # deterministic per clip: same bytes as the first run
    assert not list(out.rglob("*.tmp*")) and (out / "dataset.json").exists()


def test_changed_parameters_regenerate(tiny_set: Path, tmp_path, capsys) -> None:
    out = tmp_path / "copy"
    shutil.copytree(tiny_set, out)
    assert cli.main(["dataset", "synth", "--out", str(out), "--per-word", "1",
                     "--seed", "2"]) == 0
    assert "regenerating" in capsys.readouterr().out
    assert len(list((out / "train" / "yes").glob("*.wav"))) == 1
    assert json.loads((out / "dataset.json").read_text())["params"]["seed"] == 2


def test_generated_noise_when_none_is_available(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(synth, "default_noise_dir", lambda: None)
    report = synth.synthesize(tmp_path / "s", per_word=1, seed=0, log=lambda _: None)
    assert report.noise == "generated" and report.clips == 36
    assert len(list((tmp_path / "s" / "_background_noise_").glob("*.wav"))) == 3
    assert len(load(tmp_path / "s").background_noise) == 3


def test_refuses_foreign_folder_and_bad_arguments(tmp_path, capsys) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert cli.main(["dataset", "synth", "--out", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert cli.main(["dataset", "synth", "--out", str(tmp_path / "x"), "--per-word", "0"]) == 2
    assert "--per-word" in capsys.readouterr().err
    (tmp_path / "empty_noise").mkdir()
    assert cli.main(["dataset", "synth", "--out", str(tmp_path / "y"), "--per-word", "1",
                     "--noise-dir", str(tmp_path / "empty_noise")]) == 2
    assert "empty_noise" in capsys.readouterr().err


def test_pip_only_machine_speaks_without_the_espeak_ng_program(tmp_path) -> None:
    """No `espeak-ng` on PATH, no system library path: the wheel's libespeak-ng speaks."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PATH")}
    env["PATH"] = str(Path(sys.executable).parent)  # the venv only: no /usr/bin
    script = ("import shutil, sys; assert shutil.which('espeak-ng') is None; "
              "from tinyspeech_tf import cli; "
              "sys.exit(cli.main(['dataset', 'synth', '--out', sys.argv[1], '--per-word', '1']))")
    out = tmp_path / "set"
    proc = subprocess.run([sys.executable, "-c", script, str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["params"]["espeak_ng"].endswith("(espeakng-loader)")
    samples, _ = read_wav(next((out / "train" / "yes").glob("*.wav")))
    assert np.abs(samples).max() > 0.05


def test_no_engine_is_one_line_with_the_install_hint(monkeypatch) -> None:
    import builtins

    from tinyspeech_tf.data import espeak
    from tinyspeech_tf.errors import UserError

    real_import = builtins.__import__

    def no_wheel(name, *args, **kwargs):
        if name == "espeakng_loader":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    monkeypatch.setattr(espeak, "_engine", None)
    monkeypatch.setattr(espeak.shutil, "which", lambda _name: None)
    with pytest.raises(UserError, match="pip install espeakng-loader"):
        espeak.engine()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng program here (the "
                    "wheel's library is the default engine; the program is the fallback)")
def test_the_program_fallback_speaks() -> None:
    from tinyspeech_tf.data.espeak import Command

    speaker = Command(shutil.which("espeak-ng"))
    pcm = speaker.speak("yes", "en-us+f3", 150, 50, 100)
    assert pcm.dtype == np.int16 and len(pcm) > speaker.rate // 10
    assert "(command)" in speaker.version
